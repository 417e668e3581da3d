//! The userland kernel stand-in (`c/`, compiled by build.rs) and its Rust
//! face: the kmem statistics and test hooks of `c/ktest.h`, the two test
//! PTE formats, the one process-wide lock of the state they share, the
//! table type of an implementation of the C surface ([`api::Api`], and the
//! library's, [`LIB`]), one safe GPT and entry wrapper ([`Gpt`], [`Pte`]),
//! and the bhyve-like guest of the demo and the benchmarks.
//!
//! Everything here is process-global (the hot-patched stubs, the installed
//! format, the stand-in's accounting and hooks): whoever installs a format
//! or reads the accounting holds [`exclusive`] meanwhile.

pub mod api;
pub mod gpt;
pub mod valgrind;

pub use api::{Api, LIB, LIB_DOMAIN, REF_DOMAIN};
pub use gpt::{Gpt, Pte};

use std::ffi::c_uint;
use std::ptr;
use std::sync::{Mutex, MutexGuard};

use vmm_gpt::abi::{vmm_gpt_iter_entry_t, vmm_gpt_iter_t, MAX_GPT_LEVEL};
use vmm_gpt::abi_impl::vmm_pte_impl;

/// The guest page size (`PAGESIZE`).
pub const PAGE: u64 = 4096;
pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
bitflags::bitflags! {
    /// A mapping's protection: `PROT_READ`, `PROT_WRITE`, `PROT_EXEC` of
    /// `<sys/mman.h>`, as `vmm_gpt_map_at` takes it (`.bits()` at the C
    /// surface).  A value with other bits keeps them
    /// (`Prot::from_bits_retain`), so a hostile one prints as it is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Prot: u32 {
        const READ = 1;
        const WRITE = 2;
        const EXEC = 4;
    }
}

impl Prot {
    /// Read and write.
    pub const RW: Prot = Prot::READ.union(Prot::WRITE);
}

bitflags::bitflags! {
    /// The flags of `vmm_gpt_harvest_dirty` (`VMM_GPT_HARVEST_*` of
    /// `include/sys/vmm_gpt_ext.h`, the library's opt-in extension, which
    /// the test crates' own link of the library leaves out), also those of
    /// [`Gpt::bits_operate`]: reset (`VBO_RESET_DIRTY`, else
    /// `VBO_GET_DIRTY`), bitmap in, bitmap out.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct HarvestFlags: u32 {
        const RESET = 1;
        const BITMAP_IN = 2;
        const BITMAP_OUT = 4;
    }
}
/// `MTRR_TYPE_UC` and `MTRR_TYPE_WB`, the memory types both formats accept.
pub const MTRR_UC: u8 = 0;
pub const MTRR_WB: u8 = 6;

/// `kmem_stats_t` of `ktest.h`: the stand-in's allocation accounting.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmemStats {
    pub live_allocs: u64,
    pub live_bytes: u64,
    /// Live allocations of exactly `PAGESIZE`: the tables.
    pub live_pages: u64,
    pub total_allocs: u64,
    pub total_frees: u64,
}

/// `ktest_panic_hook_t`.
pub type PanicHook = Option<unsafe extern "C" fn()>;

extern "C" {
    /// The test formats (`pte_ept.c`, `pte_rvi.c`).
    pub static ept_pte_impl: vmm_pte_impl;
    pub static rvi_pte_impl: vmm_pte_impl;

    pub fn ktest_kmem_stats(ks: *mut KmemStats);
    pub fn ktest_kmem_set_domain(domain: c_uint);
    pub fn ktest_kmem_domain() -> c_uint;
    pub fn ktest_kmem_domain_stats(domain: c_uint, ks: *mut KmemStats);
    pub fn ktest_kmem_domain_reclaim(domain: c_uint) -> u64;
    pub fn ktest_set_panic_hook(hook: PanicHook) -> PanicHook;
    pub fn ktest_set_hw_ad_supported(on: bool);
    pub fn ktest_hw_ad_supported() -> bool;
}

/// The stand-in's allocation counters now, over every domain.
pub fn kmem() -> KmemStats {
    let mut ks = KmemStats::default();
    // SAFETY: the stand-in fills the struct, whose layout mirrors ktest.h.
    unsafe { ktest_kmem_stats(&mut ks) };
    ks
}

/// The allocation counters of one kmem domain (below `KTEST_KMEM_DOMAINS`).
pub fn domain_stats(domain: c_uint) -> KmemStats {
    let mut ks = KmemStats::default();
    // SAFETY: `ks` is a valid kmem_stats_t to write; the stand-in checks
    // the domain.
    unsafe { ktest_kmem_domain_stats(domain, &mut ks) };
    ks
}

/// Charges this thread's allocations to `domain` from now on.
pub fn set_domain(domain: c_uint) {
    // SAFETY: a plain setter of the stand-in, which checks the domain.
    unsafe { ktest_kmem_set_domain(domain) }
}

/// Sets what the formats' `vpi_hw_ad_supported()` answers.
pub fn set_hw_ad_supported(on: bool) {
    // SAFETY: a plain setter of the stand-in (an atomic store).
    unsafe { ktest_set_hw_ad_supported(on) }
}

/// What the formats' `vpi_hw_ad_supported()` answers now.
pub fn hw_ad_supported() -> bool {
    // SAFETY: a plain getter of the stand-in (an atomic load).
    unsafe { ktest_hw_ad_supported() }
}

static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// The process-wide lock of the hot-patched stubs and the stand-in's
/// global state.  A poisoned lock is taken anyway (a failed test must not
/// fail every later one; whoever held it restored the state).
pub fn exclusive() -> MutexGuard<'static, ()> {
    EXCLUSIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A PTE format of the stand-in (`c/pte_ept.c`, `c/pte_rvi.c`; bits in
/// docs/pte-formats.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Intel EPT (`ept_pte_impl`).
    Ept,
    /// AMD nested paging (`rvi_pte_impl`).
    Rvi,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Ept, Format::Rvi];

    /// The format's `struct vmm_pte_impl`.
    pub fn pte_impl(self) -> &'static vmm_pte_impl {
        // SAFETY: both are immutable C statics of the stand-in, linked into
        // every dependent, alive for the whole process.
        unsafe {
            match self {
                Format::Ept => &*ptr::addr_of!(ept_pte_impl),
                Format::Rvi => &*ptr::addr_of!(rvi_pte_impl),
            }
        }
    }

    /// The MTRR memory types bhyve maps with (UC, WC, WT, WP, WB) that the
    /// format accepts: every one for EPT, UC and WB for AMD.
    pub fn memory_types(self) -> &'static [u8] {
        match self {
            Format::Ept => &[0, 1, 4, 5, 6],
            Format::Rvi => &[MTRR_UC, MTRR_WB],
        }
    }

    /// Whether the format accepts memory type `attr`: EPT takes any value
    /// (its low three bits go into the entry); AMD panics on anything but
    /// `MTRR_TYPE_UC` and `MTRR_TYPE_WB`.
    pub fn accepts_attr(self, attr: u8) -> bool {
        match self {
            Format::Ept => true,
            Format::Rvi => attr == MTRR_UC || attr == MTRR_WB,
        }
    }

    /// The entry that links a table at `pfn` (the format's `vpi_map_table`).
    pub fn map_table(self, pfn: u64) -> u64 {
        let f = self.pte_impl().vpi_map_table.expect("vpi_map_table");
        // SAFETY: a pure function of the stand-in's format.
        unsafe { f(pfn) }
    }

    /// The leaf entry mapping `pfn` (the format's `vpi_map_page`).
    pub fn map_page(self, pfn: u64, prot: Prot, attr: u8) -> u64 {
        let f = self.pte_impl().vpi_map_page.expect("vpi_map_page");
        // SAFETY: a pure function of the stand-in's format; callers pass a
        // memory type it accepts.
        unsafe { f(pfn, prot.bits(), attr) }
    }

    /// The PFN and protection an entry maps, if it maps anything (the
    /// format's `vpi_pte_parse`).
    pub fn parse(self, pte: u64) -> Option<(u64, Prot)> {
        let f = self.pte_impl().vpi_pte_parse.expect("vpi_pte_parse");
        let (mut pfn, mut prot) = (0, 0);
        // SAFETY: a pure function of the stand-in's format, writing only
        // through the two pointers, which point at our locals.
        unsafe { f(pte, &mut pfn, &mut prot) }.then_some((pfn, Prot::from_bits_retain(prot)))
    }

    /// The EPTP / nCR3 for a root table at `pfn` (the format's
    /// `vpi_get_pmtp`).
    pub fn get_pmtp(self, root_pfn: u64, track_dirty: bool) -> u64 {
        let f = self.pte_impl().vpi_get_pmtp.expect("vpi_get_pmtp");
        // SAFETY: a pure function of the stand-in's format.
        unsafe { f(root_pfn, track_dirty) }
    }

    pub fn bit_accessed(self) -> u64 {
        self.pte_impl().vpi_bit_accessed
    }

    pub fn bit_dirty(self) -> u64 {
        self.pte_impl().vpi_bit_dirty
    }
}

/// A guest-physical region, as vmspace maps one.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub name: &'static str,
    pub gpa: u64,
    pub len: u64,
    pub mmio: bool,
}

/// The bhyve-like guest of the demo and the benchmarks, with `ram` bytes
/// of RAM: low RAM below the 32-bit PCI hole, high RAM above 4 GiB, a
/// framebuffer BAR, and a few device pages up in the hole.
pub fn layout(ram: u64) -> Vec<Region> {
    let low = ram.min(3 * GIB);
    let mut v = vec![Region {
        name: "lowmem",
        gpa: 0,
        len: low,
        mmio: false,
    }];
    if ram > low {
        v.push(Region {
            name: "highmem",
            gpa: 4 * GIB,
            len: ram - low,
            mmio: false,
        });
    }
    for (name, gpa, len) in [
        ("framebuffer", 0xc000_0000, 16 * MIB),
        ("ioapic", 0xfec0_0000, PAGE),
        ("hpet", 0xfed0_0000, PAGE),
        ("bootrom", 0xffe0_0000, 2 * MIB),
    ] {
        v.push(Region {
            name,
            gpa,
            len,
            mmio: true,
        });
    }
    v
}

/// A small deterministic generator (xorshift64*), for reproducible runs.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// An iterator for `vmm_gpt_iter_init` to fill.
pub fn iter_zeroed() -> vmm_gpt_iter_t {
    vmm_gpt_iter_t {
        vgi_gpt: ptr::null_mut(),
        vgi_addr: 0,
        vgi_end: 0,
        vgi_current: 0,
        vgi_entries: [ptr::null_mut(); MAX_GPT_LEVEL],
    }
}

/// An entry for `vmm_gpt_iter_next` to fill.
pub fn iter_entry_zeroed() -> vmm_gpt_iter_entry_t {
    vmm_gpt_iter_entry_t {
        vgie_gpa: 0,
        vgie_ptep: ptr::null_mut(),
    }
}
