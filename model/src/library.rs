//! The system under test: the library ([`LIB`]) behind the harness's safe
//! wrappers ([`Gpt`], [`Pte`]) in a [`Session`], and the hardware's view
//! of its tables ([`hw_tree`]).
//!
//! Everything here is process-global (the hot-patched stubs, the installed
//! format, the kernel stand-in's accounting), so the tests hold
//! [`Session`], which serializes them, for as long as they use the library.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;

use vmm_gpt::ffi;

pub use vmm_gpt_harness::gpt::{walk_poison, Entries};
pub use vmm_gpt_harness::{
    hw_ad_supported, kmem, set_hw_ad_supported, Format, KmemStats, Prot, MTRR_UC, MTRR_WB,
};
pub use vmm_gpt_harness::{Gpt, Pte, LIB};

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

/// Reads the whole table tree of `gpt` as the hardware would walk it.
pub fn hw_tree(gpt: &Gpt, format: Format) -> HwTree {
    let mut tree: HwTree = Default::default();
    let root = gpt.root_addr();
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

/// GPA span of one entry of a table at each level (`LEVEL4` first).
pub const ENTRY_SPAN: [u64; 4] = [1 << 39, 1 << 30, 1 << 21, 1 << 12];

/// Reads the 512 entries of the table at `addr`.
///
/// # Safety
/// `addr` is a live table page (`hat_kpm_pfn2va` of the stand-in is the
/// identity on page addresses).
unsafe fn read_table(addr: usize, base: u64) -> HwTable {
    let entries = (0..512)
        // SAFETY: entries of a live table (the caller's contract), 8-byte
        // aligned, accessed only atomically.
        .map(|i| unsafe { AtomicU64::from_ptr((addr + i * 8) as *mut u64) }.load(Ordering::SeqCst))
        .collect();
    HwTable {
        addr,
        base,
        entries,
    }
}
