//! The system under test: the library's C surface, the kernel stand-in's
//! hooks and the two test PTE formats, behind safe wrappers.
//!
//! Everything here is process-global (the hot-patched stubs, the installed
//! format, the kernel stand-in's accounting), so the tests hold
//! [`Session`], which serializes them, for as long as they use the library.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;

use vmm_gpt::abi::{vmm_gpt_entry_t, vmm_gpt_t};
use vmm_gpt::ffi;

pub use vmm_gpt_harness::{
    hw_ad_supported, kmem, set_hw_ad_supported, Format, KmemStats, MTRR_UC, MTRR_WB, PROT_ALL,
};

/// Exclusive use of the library with one format installed: holds the
/// global lock, `vmm_gpt_init()`s the format and `vmm_gpt_fini()`s it when
/// dropped (also when a failing check unwinds).
pub struct Session {
    format: Format,
    _lock: MutexGuard<'static, ()>,
}

impl Session {
    pub fn new(format: Format) -> Session {
        // A failed test (a panic) poisons the lock; the state it protects is
        // restored by Drop all the same.
        let lock = vmm_gpt_harness::exclusive();
        set_hw_ad_supported(true);
        // SAFETY: a format of the harness; none is installed (every Session
        // uninstalls its format when dropped, and this one holds the lock).
        let ok = unsafe { ffi::vmm_gpt_init(format.pte_impl()) };
        assert!(ok, "vmm_gpt_init({format:?}) refused the format");
        Session {
            format,
            _lock: lock,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        ffi::vmm_gpt_fini();
        set_hw_ad_supported(true);
    }
}

/// Entry pointers of a walk, one per level.
pub type Entries = [*mut vmm_gpt_entry_t; 4];

/// What [`Gpt::walk`] fills the entries with before the walk.
pub fn walk_poison() -> *mut vmm_gpt_entry_t {
    ptr::dangling_mut()
}

/// A GPT of the library, freed when dropped (unless [`Gpt::free`] was
/// called), so a failing check does not leak it into the next case.
pub struct Gpt<'s> {
    gpt: *mut vmm_gpt_t,
    _session: &'s Session,
}

impl<'s> Gpt<'s> {
    /// `vmm_gpt_alloc()`.
    pub fn alloc(session: &'s Session) -> Gpt<'s> {
        let gpt = ffi::vmm_gpt_alloc();
        assert!(!gpt.is_null(), "vmm_gpt_alloc returned NULL");
        Gpt {
            gpt,
            _session: session,
        }
    }

    /// `vmm_gpt_free()`, whatever is still populated or mapped.
    pub fn free(mut self) {
        let gpt = std::mem::replace(&mut self.gpt, ptr::null_mut());
        // SAFETY: our live GPT, not used again (self.gpt is NULL now).
        unsafe { ffi::vmm_gpt_free(gpt) }
    }

    /// `vmm_gpt_walk(gpa, entries, depth)`: the entries and the returned GPA.
    pub fn walk(&self, gpa: u64, depth: u32) -> (Entries, u64) {
        // Poisoned: the walk must write every entry up to `depth`, and
        // none past it.
        let mut entries: Entries = [walk_poison(); 4];
        // SAFETY: a live GPT and an array of MAX_GPT_LEVEL entry pointers;
        // depth is at most LEVEL1 (the callers' contract, checked by the
        // library).
        let r = unsafe { ffi::vmm_gpt_walk(self.gpt, gpa, entries.as_mut_ptr(), depth) };
        (entries, r)
    }

    /// The leaf entry of `gpa`, if its leaf table exists.
    pub fn leaf(&self, gpa: u64) -> Option<Pte> {
        let (e, _) = self.walk(gpa, vmm_gpt::abi::LEVEL1);
        (!e[3].is_null()).then_some(Pte(e[3]))
    }

    /// Every `(gpa, entry)` the iterator yields over `[addr, addr + len)`.
    pub fn iter(&self, addr: u64, len: u64) -> Vec<(u64, Pte)> {
        let mut it = vmm_gpt_harness::iter_zeroed();
        let mut e = vmm_gpt_harness::iter_entry_zeroed();
        let mut out = Vec::new();
        // SAFETY: a live GPT, our iterator and entry; the range is
        // page-aligned and does not wrap (the callers' contract).
        unsafe {
            ffi::vmm_gpt_iter_init(&mut it, self.gpt, addr, len);
            while ffi::vmm_gpt_iter_next(&mut it, &mut e) {
                out.push((e.vgie_gpa, Pte(e.vgie_ptep)));
            }
        }
        out
    }

    /// `vmm_gpt_populate_region()`.
    pub fn populate(&self, addr: u64, len: u64) {
        // SAFETY: a live GPT, used by this thread only.
        unsafe { ffi::vmm_gpt_populate_region(self.gpt, addr, len) }
    }

    /// `vmm_gpt_vacate_region()`.
    pub fn vacate(&self, addr: u64, len: u64) {
        // SAFETY: a live GPT, used by this thread only.
        unsafe { ffi::vmm_gpt_vacate_region(self.gpt, addr, len) }
    }

    /// `vmm_gpt_map_at()`.
    pub fn map_at(&self, pte: Pte, pfn: u64, prot: u32, attr: u8) -> bool {
        // SAFETY: a live GPT and an entry of one of its live leaf tables.
        unsafe { ffi::vmm_gpt_map_at(self.gpt, pte.0, pfn, prot, attr) }
    }

    /// `vmm_gpt_unmap()`.
    pub fn unmap(&self, gpa: u64) -> bool {
        // SAFETY: a live GPT.
        unsafe { ffi::vmm_gpt_unmap(self.gpt, gpa) }
    }

    /// `vmm_gpt_unmap_region()`.
    pub fn unmap_region(&self, addr: u64, len: u64) -> usize {
        // SAFETY: a live GPT; the range is page-aligned and does not wrap.
        unsafe { ffi::vmm_gpt_unmap_region(self.gpt, addr, len) }
    }

    /// `vmm_gpt_get_pmtp()`.
    pub fn get_pmtp(&self, track_dirty: bool) -> u64 {
        // SAFETY: a live GPT.
        unsafe { ffi::vmm_gpt_get_pmtp(self.gpt, track_dirty) }
    }

    /// `vmm_gpt_can_track_dirty()`.
    pub fn can_track_dirty(&self) -> bool {
        // SAFETY: a live GPT.
        unsafe { ffi::vmm_gpt_can_track_dirty(self.gpt) }
    }
}

impl Drop for Gpt<'_> {
    fn drop(&mut self) {
        if !self.gpt.is_null() {
            // SAFETY: our live GPT, not used again.
            unsafe { ffi::vmm_gpt_free(self.gpt) }
        }
    }
}

/// A pointer to a page-table entry inside a live table of a [`Gpt`], as a
/// walk or the iterator hands it out.  Valid only while that table lives:
/// callers use one only until the next populate, vacate or free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte(*mut vmm_gpt_entry_t);

impl Pte {
    /// An entry pointer that a walk or the hardware tree returned.  The
    /// runner checks a walk's pointers before anything reads through them.
    pub(crate) fn at(ptep: *mut vmm_gpt_entry_t) -> Pte {
        Pte(ptep)
    }

    /// The entry's address.
    pub fn addr(self) -> usize {
        self.0 as usize
    }

    /// The address of the table that holds the entry.
    pub fn table(self) -> usize {
        self.0 as usize & !0xfff
    }

    /// The index of the entry in its table.
    pub fn index(self) -> usize {
        (self.0 as usize & 0xfff) / 8
    }

    fn atomic(self) -> &'static AtomicU64 {
        // SAFETY: an entry of a live table (the type's contract), 8-byte
        // aligned; the library accesses entries only atomically.
        unsafe { AtomicU64::from_ptr(self.0) }
    }

    /// The raw entry, as the hardware reads it.
    pub fn load(self) -> u64 {
        self.atomic().load(Ordering::SeqCst)
    }

    /// Sets bits as the hardware does with accessed and dirty bits.
    pub fn hw_set(self, bits: u64) {
        self.atomic().fetch_or(bits, Ordering::SeqCst);
    }

    /// Flips bits of the entry (to corrupt it on purpose).
    pub fn flip(self, bits: u64) {
        self.atomic().fetch_xor(bits, Ordering::SeqCst);
    }

    /// `vmm_gpte_is_mapped(ptep, &pfn, &prot)`.
    pub fn is_mapped(self) -> Option<(u64, u32)> {
        let (mut pfn, mut prot) = (0, 0);
        // SAFETY: an entry of a live table; the out-pointers are our locals.
        unsafe { ffi::vmm_gpte_is_mapped(self.0, &mut pfn, &mut prot) }.then_some((pfn, prot))
    }

    /// `vmm_gpte_is_mapped(ptep, NULL, NULL)`.
    pub fn is_mapped_bare(self) -> bool {
        // SAFETY: an entry of a live table; NULL out-pointers are allowed.
        unsafe { ffi::vmm_gpte_is_mapped(self.0, ptr::null_mut(), ptr::null_mut()) }
    }

    /// `vmm_gpte_reset_accessed()`.
    pub fn reset_accessed(self, on: bool) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { ffi::vmm_gpte_reset_accessed(self.0, on) }
    }

    /// `vmm_gpte_reset_dirty()`.
    pub fn reset_dirty(self, on: bool) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { ffi::vmm_gpte_reset_dirty(self.0, on) }
    }

    /// `vmm_gpte_query_accessed()`.
    pub fn query_accessed(self) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { ffi::vmm_gpte_query_accessed(self.0) }
    }

    /// `vmm_gpte_query_dirty()`.
    pub fn query_dirty(self) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { ffi::vmm_gpte_query_dirty(self.0) }
    }
}

/// A table as the hardware sees it: its kernel address, and the GPA its
/// first entry maps.
#[derive(Clone, Debug)]
pub struct HwTable {
    pub addr: usize,
    pub base: u64,
    pub entries: Vec<u64>,
}

/// Every table of a GPT, level by level (`LEVEL4`, the root, first), found by
/// following the hardware tables from the root with the format's own
/// `vpi_pte_parse` (not the library's walk).
pub type HwTree = [Vec<HwTable>; 4];

impl Gpt<'_> {
    /// The kernel address of the root table (from a walk's `LEVEL4` entry).
    pub fn root_addr(&self) -> usize {
        let (e, _) = self.walk(0, vmm_gpt::abi::LEVEL4);
        e[0] as usize & !0xfff
    }

    /// Reads the whole table tree as the hardware would walk it.
    pub fn hw_tree(&self, format: Format) -> HwTree {
        let mut tree: HwTree = Default::default();
        let root = self.root_addr();
        // SAFETY: the root table lives as long as the GPT.
        tree[0].push(unsafe { read_table(root, 0) });
        for lvl in 0..3 {
            let span = ENTRY_SPAN[lvl];
            let mut next = Vec::new();
            for t in &tree[lvl] {
                for (i, &e) in t.entries.iter().enumerate() {
                    if let Some((pfn, _)) = format.parse(e) {
                        let addr = (pfn << 12) as usize;
                        // SAFETY: a present entry of a live interior table
                        // links a live table at that PFN (what the hardware
                        // relies on, and what the checks verify).
                        next.push(unsafe { read_table(addr, t.base + i as u64 * span) });
                    }
                }
            }
            tree[lvl + 1] = next;
        }
        tree
    }
}

/// GPA span of one entry of a table at each level (`LEVEL4` first).
pub const ENTRY_SPAN: [u64; 4] = [1 << 39, 1 << 30, 1 << 21, 1 << 12];

/// Reads the 512 entries of the table at `addr`.
///
/// # Safety
/// `addr` is a live table page (`hat_kpm_pfn2va` of the stand-in is the
/// identity on page addresses).
unsafe fn read_table(addr: usize, base: u64) -> HwTable {
    let entries = (0..512)
        .map(|i| Pte((addr + i * 8) as *mut vmm_gpt_entry_t).load())
        .collect();
    HwTable {
        addr,
        base,
        entries,
    }
}
