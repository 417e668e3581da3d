//! One safe face of a GPT of any implementation of the C surface ([`Api`]):
//! [`Gpt`] and its entries, [`Pte`].  The caller holds [`crate::exclusive`]
//! with the format installed in the implementation meanwhile, and charges
//! allocations to the implementation's kmem domain as it needs.

use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};

use vmm_gpt::abi::{vmm_gpt_entry_t, vmm_gpt_t, LEVEL1, LEVEL4, MAX_GPT_LEVEL};

use crate::api::Api;

/// Entry pointers of a walk, one per level.
pub type Entries = [*mut vmm_gpt_entry_t; MAX_GPT_LEVEL];

/// What [`Gpt::walk`] fills the entries with before the walk.
pub fn walk_poison() -> *mut vmm_gpt_entry_t {
    ptr::dangling_mut()
}

/// One GPT of one implementation, freed when dropped (unless
/// [`Gpt::free`] was called), so a failing check does not leak it.
pub struct Gpt {
    api: &'static Api,
    ptr: *mut vmm_gpt_t,
}

impl Gpt {
    /// `vmm_gpt_alloc()`.
    pub fn alloc(api: &'static Api) -> Gpt {
        // SAFETY: the caller installed a format in `api`; alloc has no
        // other precondition.
        let ptr = unsafe { (api.alloc)() };
        assert!(!ptr.is_null(), "{}: vmm_gpt_alloc returned NULL", api.name);
        Gpt { api, ptr }
    }

    /// The C handle, for calls the [`Api`] table does not hold (the
    /// opt-in extension's).  Valid while `self` is.
    pub fn as_ptr(&self) -> *mut vmm_gpt_t {
        self.ptr
    }

    /// `vmm_gpt_free()`, whatever is still populated or mapped.
    pub fn free(mut self) {
        let gpt = std::mem::replace(&mut self.ptr, ptr::null_mut());
        // SAFETY: our live GPT, not used again (self.ptr is NULL now).
        unsafe { (self.api.free)(gpt) }
    }

    /// The entry at `ptep`, which the caller got from a walk or the
    /// iterator of this GPT (or found in one of its live tables).
    #[inline]
    pub fn pte(&self, ptep: *mut vmm_gpt_entry_t) -> Option<Pte> {
        NonNull::new(ptep).map(|ptep| Pte {
            api: self.api,
            gpt: self.ptr,
            ptep,
        })
    }

    /// `vmm_gpt_walk(gpa, entries, depth)`: the entries and the returned GPA.
    #[inline]
    pub fn walk(&self, gpa: u64, depth: u32) -> (Entries, u64) {
        // Poisoned: the walk must write every entry up to `depth`, and
        // none past it.
        let mut entries: Entries = [walk_poison(); MAX_GPT_LEVEL];
        // SAFETY: a live GPT and an array of MAX_GPT_LEVEL entry pointers;
        // depth is at most LEVEL1 (the callers' contract, checked by the
        // library).
        let r = unsafe { (self.api.walk)(self.ptr, gpa, entries.as_mut_ptr(), depth) };
        (entries, r)
    }

    /// The leaf entry of `gpa`, if its leaf table exists.
    #[inline]
    pub fn leaf(&self, gpa: u64) -> Option<Pte> {
        self.pte(self.walk(gpa, LEVEL1).0[LEVEL1 as usize])
    }

    /// The kernel address of the root table (from a walk's `LEVEL4` entry).
    pub fn root_addr(&self) -> usize {
        self.walk(0, LEVEL4).0[0] as usize & !0xfff
    }

    /// Iterates `[addr, addr + len)`, calling `f` on every entry the
    /// iterator yields.
    #[inline]
    pub fn for_each_leaf(&self, addr: u64, len: u64, mut f: impl FnMut(u64, Pte)) {
        let mut it = crate::iter_zeroed();
        let mut e = crate::iter_entry_zeroed();
        // SAFETY: a live GPT, our iterator; the range is one the
        // implementation accepts (the callers' contract).
        unsafe { (self.api.iter_init)(&mut it, self.ptr, addr, len) };
        // SAFETY: the iterator this implementation initialized, over its
        // live GPT, and our entry to fill.
        while unsafe { (self.api.iter_next)(&mut it, &mut e) } {
            if let Some(pte) = self.pte(e.vgie_ptep) {
                f(e.vgie_gpa, pte);
            }
        }
    }

    /// Every `(gpa, entry)` the iterator yields over `[addr, addr + len)`.
    pub fn iter(&self, addr: u64, len: u64) -> Vec<(u64, Pte)> {
        let mut out = Vec::new();
        self.for_each_leaf(addr, len, |gpa, pte| out.push((gpa, pte)));
        out
    }

    /// `vmspace_bits_operate()`'s loop (vmm_vm.c) for `VBO_GET_DIRTY` /
    /// `VBO_RESET_DIRTY` with `flags` ([`crate::HarvestFlags`]), over this implementation's iterator and A/D
    /// functions: what `vmm_gpt_harvest_dirty` replaces.  `bitmap` starts at
    /// the bitmap; an index the C loop would write out of bounds panics
    /// here instead.  Returns the pages whose value was true.
    #[inline]
    pub fn bits_operate(
        &self,
        gpa: u64,
        len: u64,
        bitmap: &mut [u8],
        flags: crate::HarvestFlags,
    ) -> usize {
        let bit_input = flags.contains(crate::HarvestFlags::BITMAP_IN);
        let bit_output = flags.contains(crate::HarvestFlags::BITMAP_OUT);
        let mut found = 0;
        self.for_each_leaf(gpa, len, |entry_gpa, pte| {
            let pfn_offset = entry_gpa.wrapping_sub(gpa) >> 12;
            let bit_offset = (pfn_offset / 8) as usize;
            let bit_mask = 1u8 << (pfn_offset % 8);
            if bit_input && bitmap[bit_offset] & bit_mask == 0 {
                return;
            }
            let value = if flags.contains(crate::HarvestFlags::RESET) {
                pte.reset_dirty(false)
            } else {
                pte.query_dirty()
            };
            found += usize::from(value);
            if bit_output {
                if value {
                    bitmap[bit_offset] |= bit_mask;
                } else {
                    bitmap[bit_offset] &= !bit_mask;
                }
            }
        });
        found
    }

    /// `vmm_gpt_populate_region()`.
    pub fn populate(&self, addr: u64, len: u64) {
        // SAFETY: a live GPT, used by this thread only.
        unsafe { (self.api.populate_region)(self.ptr, addr, len) }
    }

    /// `vmm_gpt_vacate_region()`.  Entries of the tables it frees must not
    /// be used afterwards.
    pub fn vacate(&self, addr: u64, len: u64) {
        // SAFETY: a live GPT, used by this thread only.
        unsafe { (self.api.vacate_region)(self.ptr, addr, len) }
    }

    /// `vmm_gpt_map_at()`.
    pub fn map_at(&self, pte: Pte, pfn: u64, prot: crate::Prot, attr: u8) -> bool {
        pte.map_at(pfn, prot, attr)
    }

    /// `vmm_gpt_unmap()`.
    pub fn unmap(&self, gpa: u64) -> bool {
        // SAFETY: a live GPT.
        unsafe { (self.api.unmap)(self.ptr, gpa) }
    }

    /// `vmm_gpt_unmap_region()`.
    pub fn unmap_region(&self, addr: u64, len: u64) -> usize {
        // SAFETY: a live GPT; the range is one the implementation accepts
        // (the callers' contract).
        unsafe { (self.api.unmap_region)(self.ptr, addr, len) }
    }

    /// `vmm_gpt_get_pmtp()`.
    pub fn get_pmtp(&self, track_dirty: bool) -> u64 {
        // SAFETY: a live GPT.
        unsafe { (self.api.get_pmtp)(self.ptr, track_dirty) }
    }

    /// `vmm_gpt_can_track_dirty()`.
    pub fn can_track_dirty(&self) -> bool {
        // SAFETY: a live GPT.
        unsafe { (self.api.can_track_dirty)(self.ptr) }
    }
}

impl Drop for Gpt {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: our live GPT, not used again.
            unsafe { (self.api.free)(self.ptr) }
        }
    }
}

/// A page-table entry inside a live table of a [`Gpt`], as a walk or the
/// iterator hands it out.  Valid only while that table lives: callers use
/// one only until the next vacate or free.
#[derive(Clone, Copy)]
pub struct Pte {
    api: &'static Api,
    gpt: *mut vmm_gpt_t,
    ptep: NonNull<vmm_gpt_entry_t>,
}

impl PartialEq for Pte {
    fn eq(&self, other: &Pte) -> bool {
        self.ptep == other.ptep
    }
}

impl Eq for Pte {}

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pte({:p})", self.ptep)
    }
}

impl Pte {
    /// The entry's address.
    pub fn addr(self) -> usize {
        self.ptep.as_ptr() as usize
    }

    /// The address of the table that holds the entry.
    pub fn table(self) -> usize {
        self.addr() & !0xfff
    }

    /// The index of the entry in its table.
    pub fn index(self) -> usize {
        (self.addr() & 0xfff) / 8
    }

    #[inline]
    fn atomic(self) -> &'static AtomicU64 {
        // SAFETY: an entry of a live table (the type's contract), 8-byte
        // aligned; the implementations access entries only atomically or
        // with aligned 64-bit accesses.
        unsafe { AtomicU64::from_ptr(self.ptep.as_ptr()) }
    }

    /// The raw entry, as the hardware reads it.
    pub fn load(self) -> u64 {
        self.atomic().load(Ordering::SeqCst)
    }

    /// Sets bits as the hardware does with accessed and dirty bits (an
    /// atomic OR).
    #[inline]
    pub fn hw_set(self, bits: u64) {
        self.atomic().fetch_or(bits, Ordering::SeqCst);
    }

    /// Clears bits (an atomic AND), to set up a known state.
    #[inline]
    pub fn hw_clear(self, bits: u64) {
        self.atomic().fetch_and(!bits, Ordering::SeqCst);
    }

    /// Flips bits of the entry (to corrupt it on purpose).
    pub fn flip(self, bits: u64) {
        self.atomic().fetch_xor(bits, Ordering::SeqCst);
    }

    /// `vmm_gpt_map_at()`.
    #[inline]
    pub fn map_at(self, pfn: u64, prot: crate::Prot, attr: u8) -> bool {
        // SAFETY: an entry of a live leaf table of this implementation's
        // live GPT.
        unsafe { (self.api.map_at)(self.gpt, self.ptep.as_ptr(), pfn, prot.bits(), attr) }
    }

    /// `vmm_gpte_is_mapped(ptep, &pfn, &prot)`.
    #[inline]
    pub fn is_mapped(self) -> Option<(u64, crate::Prot)> {
        let (mut pfn, mut prot) = (0, 0);
        // SAFETY: an entry of a live table; the out-pointers are our locals.
        unsafe { (self.api.is_mapped)(self.ptep.as_ptr(), &mut pfn, &mut prot) }
            .then_some((pfn, crate::Prot::from_bits_retain(prot)))
    }

    /// `vmm_gpte_is_mapped(ptep, NULL, NULL)`.
    pub fn is_mapped_bare(self) -> bool {
        // SAFETY: an entry of a live table; NULL out-pointers are allowed.
        unsafe { (self.api.is_mapped)(self.ptep.as_ptr(), ptr::null_mut(), ptr::null_mut()) }
    }

    /// `vmm_gpte_reset_accessed()`.
    pub fn reset_accessed(self, on: bool) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { (self.api.reset_accessed)(self.ptep.as_ptr(), on) }
    }

    /// `vmm_gpte_reset_dirty()`.
    #[inline]
    pub fn reset_dirty(self, on: bool) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { (self.api.reset_dirty)(self.ptep.as_ptr(), on) }
    }

    /// `vmm_gpte_query_accessed()`.
    #[inline]
    pub fn query_accessed(self) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { (self.api.query_accessed)(self.ptep.as_ptr()) }
    }

    /// `vmm_gpte_query_dirty()`.
    #[inline]
    pub fn query_dirty(self) -> bool {
        // SAFETY: an entry of a live table.
        unsafe { (self.api.query_dirty)(self.ptep.as_ptr()) }
    }
}
