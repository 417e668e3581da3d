//! The two implementations behind one table of C functions each, and the
//! kernel stand-in's test hooks (`ctest/c/ktest.h`).
//!
//! The library's functions are its own `vmm_gpt::ffi` exports; the
//! original's are the `ref_`-prefixed symbols that build.rs made of
//! `vmm_gpt.c` (present with `cfg(vmm_gpt_reference)`); the kernel
//! object's (illumos-build/build.sh) the `kobj_`-prefixed ones (present
//! with `cfg(vmm_gpt_kernel_object)`), which can take the library's place
//! ([`compare_kernel_object`]).

use std::ffi::c_uint;

use vmm_gpt::abi::{
    pfn_t, uint_t, vmm_gpt_entry_t, vmm_gpt_iter_entry_t, vmm_gpt_iter_t, vmm_gpt_t,
};
use vmm_gpt::abi_impl::vmm_pte_impl;

/// `kmem_stats_t` of `ktest.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmemStats {
    pub live_allocs: u64,
    pub live_bytes: u64,
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

/// The C surface of one implementation (the 19 functions of
/// `<sys/vmm_gpt.h>`), with the kmem domain its allocations are charged to.
pub struct Api {
    pub name: &'static str,
    pub domain: c_uint,
    pub init: unsafe extern "C" fn(*const vmm_pte_impl) -> bool,
    pub fini: unsafe extern "C" fn(),
    pub alloc: unsafe extern "C" fn() -> *mut vmm_gpt_t,
    pub free: unsafe extern "C" fn(*mut vmm_gpt_t),
    pub walk: unsafe extern "C" fn(*mut vmm_gpt_t, u64, *mut *mut vmm_gpt_entry_t, c_uint) -> u64,
    pub iter_init: unsafe extern "C" fn(*mut vmm_gpt_iter_t, *mut vmm_gpt_t, u64, u64),
    pub iter_next: unsafe extern "C" fn(*mut vmm_gpt_iter_t, *mut vmm_gpt_iter_entry_t) -> bool,
    pub populate_region: unsafe extern "C" fn(*mut vmm_gpt_t, u64, u64),
    pub map_at:
        unsafe extern "C" fn(*mut vmm_gpt_t, *mut vmm_gpt_entry_t, pfn_t, uint_t, u8) -> bool,
    pub vacate_region: unsafe extern "C" fn(*mut vmm_gpt_t, u64, u64),
    pub unmap: unsafe extern "C" fn(*mut vmm_gpt_t, u64) -> bool,
    pub unmap_region: unsafe extern "C" fn(*mut vmm_gpt_t, u64, u64) -> usize,
    pub get_pmtp: unsafe extern "C" fn(*mut vmm_gpt_t, bool) -> u64,
    pub is_mapped: unsafe extern "C" fn(*const vmm_gpt_entry_t, *mut pfn_t, *mut uint_t) -> bool,
    pub reset_accessed: unsafe extern "C" fn(*mut vmm_gpt_entry_t, bool) -> bool,
    pub reset_dirty: unsafe extern "C" fn(*mut vmm_gpt_entry_t, bool) -> bool,
    pub query_accessed: unsafe extern "C" fn(*const vmm_gpt_entry_t) -> bool,
    pub query_dirty: unsafe extern "C" fn(*const vmm_gpt_entry_t) -> bool,
    pub can_track_dirty: unsafe extern "C" fn(*mut vmm_gpt_t) -> bool,
}

/// kmem domain of the library's allocations.
pub const LIB_DOMAIN: c_uint = 1;
/// kmem domain of the original's allocations.
pub const REF_DOMAIN: c_uint = 2;

/// The Rust library.
pub static LIB: Api = {
    use vmm_gpt::ffi::*;
    Api {
        name: "library",
        domain: LIB_DOMAIN,
        init: vmm_gpt_init,
        fini: vmm_gpt_fini,
        alloc: vmm_gpt_alloc,
        free: vmm_gpt_free,
        walk: vmm_gpt_walk,
        iter_init: vmm_gpt_iter_init,
        iter_next: vmm_gpt_iter_next,
        populate_region: vmm_gpt_populate_region,
        map_at: vmm_gpt_map_at,
        vacate_region: vmm_gpt_vacate_region,
        unmap: vmm_gpt_unmap,
        unmap_region: vmm_gpt_unmap_region,
        get_pmtp: vmm_gpt_get_pmtp,
        is_mapped: vmm_gpte_is_mapped,
        reset_accessed: vmm_gpte_reset_accessed,
        reset_dirty: vmm_gpte_reset_dirty,
        query_accessed: vmm_gpte_query_accessed,
        query_dirty: vmm_gpte_query_dirty,
        can_track_dirty: vmm_gpt_can_track_dirty,
    }
};

#[cfg(vmm_gpt_reference)]
mod original {
    use super::*;

    // vmm_gpt_t is the library's opaque Rust struct; only pointers to it
    // cross, never dereferenced here (the original's GPT is its own).
    #[allow(improper_ctypes)]
    extern "C" {
        pub fn ref_vmm_gpt_init(imp: *const vmm_pte_impl) -> bool;
        pub fn ref_vmm_gpt_fini();
        pub fn ref_vmm_gpt_alloc() -> *mut vmm_gpt_t;
        pub fn ref_vmm_gpt_free(gpt: *mut vmm_gpt_t);
        pub fn ref_vmm_gpt_walk(
            gpt: *mut vmm_gpt_t,
            gpa: u64,
            entries: *mut *mut vmm_gpt_entry_t,
            depth: c_uint,
        ) -> u64;
        pub fn ref_vmm_gpt_iter_init(
            iter: *mut vmm_gpt_iter_t,
            gpt: *mut vmm_gpt_t,
            addr: u64,
            len: u64,
        );
        pub fn ref_vmm_gpt_iter_next(
            iter: *mut vmm_gpt_iter_t,
            entry: *mut vmm_gpt_iter_entry_t,
        ) -> bool;
        pub fn ref_vmm_gpt_populate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
        pub fn ref_vmm_gpt_map_at(
            gpt: *mut vmm_gpt_t,
            ptep: *mut vmm_gpt_entry_t,
            pfn: pfn_t,
            prot: uint_t,
            attr: u8,
        ) -> bool;
        pub fn ref_vmm_gpt_vacate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
        pub fn ref_vmm_gpt_unmap(gpt: *mut vmm_gpt_t, gpa: u64) -> bool;
        pub fn ref_vmm_gpt_unmap_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64) -> usize;
        pub fn ref_vmm_gpt_get_pmtp(gpt: *mut vmm_gpt_t, track_dirty: bool) -> u64;
        pub fn ref_vmm_gpte_is_mapped(
            ptep: *const vmm_gpt_entry_t,
            pfnp: *mut pfn_t,
            protp: *mut uint_t,
        ) -> bool;
        pub fn ref_vmm_gpte_reset_accessed(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
        pub fn ref_vmm_gpte_reset_dirty(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
        pub fn ref_vmm_gpte_query_accessed(ptep: *const vmm_gpt_entry_t) -> bool;
        pub fn ref_vmm_gpte_query_dirty(ptep: *const vmm_gpt_entry_t) -> bool;
        pub fn ref_vmm_gpt_can_track_dirty(gpt: *mut vmm_gpt_t) -> bool;
    }

    /// The original `vmm_gpt.c`.
    pub static REF: Api = Api {
        name: "original",
        domain: REF_DOMAIN,
        init: ref_vmm_gpt_init,
        fini: ref_vmm_gpt_fini,
        alloc: ref_vmm_gpt_alloc,
        free: ref_vmm_gpt_free,
        walk: ref_vmm_gpt_walk,
        iter_init: ref_vmm_gpt_iter_init,
        iter_next: ref_vmm_gpt_iter_next,
        populate_region: ref_vmm_gpt_populate_region,
        map_at: ref_vmm_gpt_map_at,
        vacate_region: ref_vmm_gpt_vacate_region,
        unmap: ref_vmm_gpt_unmap,
        unmap_region: ref_vmm_gpt_unmap_region,
        get_pmtp: ref_vmm_gpt_get_pmtp,
        is_mapped: ref_vmm_gpte_is_mapped,
        reset_accessed: ref_vmm_gpte_reset_accessed,
        reset_dirty: ref_vmm_gpte_reset_dirty,
        query_accessed: ref_vmm_gpte_query_accessed,
        query_dirty: ref_vmm_gpte_query_dirty,
        can_track_dirty: ref_vmm_gpt_can_track_dirty,
    };
}

#[cfg(vmm_gpt_kernel_object)]
mod kernel_object {
    use super::*;

    // As for the original: only pointers to vmm_gpt_t cross.
    #[allow(improper_ctypes)]
    extern "C" {
        pub fn kobj_vmm_gpt_init(imp: *const vmm_pte_impl) -> bool;
        pub fn kobj_vmm_gpt_fini();
        pub fn kobj_vmm_gpt_alloc() -> *mut vmm_gpt_t;
        pub fn kobj_vmm_gpt_free(gpt: *mut vmm_gpt_t);
        pub fn kobj_vmm_gpt_walk(
            gpt: *mut vmm_gpt_t,
            gpa: u64,
            entries: *mut *mut vmm_gpt_entry_t,
            depth: c_uint,
        ) -> u64;
        pub fn kobj_vmm_gpt_iter_init(
            iter: *mut vmm_gpt_iter_t,
            gpt: *mut vmm_gpt_t,
            addr: u64,
            len: u64,
        );
        pub fn kobj_vmm_gpt_iter_next(
            iter: *mut vmm_gpt_iter_t,
            entry: *mut vmm_gpt_iter_entry_t,
        ) -> bool;
        pub fn kobj_vmm_gpt_populate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
        pub fn kobj_vmm_gpt_map_at(
            gpt: *mut vmm_gpt_t,
            ptep: *mut vmm_gpt_entry_t,
            pfn: pfn_t,
            prot: uint_t,
            attr: u8,
        ) -> bool;
        pub fn kobj_vmm_gpt_vacate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
        pub fn kobj_vmm_gpt_unmap(gpt: *mut vmm_gpt_t, gpa: u64) -> bool;
        pub fn kobj_vmm_gpt_unmap_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64) -> usize;
        pub fn kobj_vmm_gpt_get_pmtp(gpt: *mut vmm_gpt_t, track_dirty: bool) -> u64;
        pub fn kobj_vmm_gpte_is_mapped(
            ptep: *const vmm_gpt_entry_t,
            pfnp: *mut pfn_t,
            protp: *mut uint_t,
        ) -> bool;
        pub fn kobj_vmm_gpte_reset_accessed(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
        pub fn kobj_vmm_gpte_reset_dirty(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
        pub fn kobj_vmm_gpte_query_accessed(ptep: *const vmm_gpt_entry_t) -> bool;
        pub fn kobj_vmm_gpte_query_dirty(ptep: *const vmm_gpt_entry_t) -> bool;
        pub fn kobj_vmm_gpt_can_track_dirty(gpt: *mut vmm_gpt_t) -> bool;
    }

    /// The kernel object (illumos-build/build.sh), in the library's place.
    pub static KOBJ: Api = Api {
        name: "kernel object",
        domain: LIB_DOMAIN,
        init: kobj_vmm_gpt_init,
        fini: kobj_vmm_gpt_fini,
        alloc: kobj_vmm_gpt_alloc,
        free: kobj_vmm_gpt_free,
        walk: kobj_vmm_gpt_walk,
        iter_init: kobj_vmm_gpt_iter_init,
        iter_next: kobj_vmm_gpt_iter_next,
        populate_region: kobj_vmm_gpt_populate_region,
        map_at: kobj_vmm_gpt_map_at,
        vacate_region: kobj_vmm_gpt_vacate_region,
        unmap: kobj_vmm_gpt_unmap,
        unmap_region: kobj_vmm_gpt_unmap_region,
        get_pmtp: kobj_vmm_gpt_get_pmtp,
        is_mapped: kobj_vmm_gpte_is_mapped,
        reset_accessed: kobj_vmm_gpte_reset_accessed,
        reset_dirty: kobj_vmm_gpte_reset_dirty,
        query_accessed: kobj_vmm_gpte_query_accessed,
        query_dirty: kobj_vmm_gpte_query_dirty,
        can_track_dirty: kobj_vmm_gpt_can_track_dirty,
    };
}

/// The kernel object, when build.rs linked it (`VMM_GPT_KERNEL_OBJECT`).
pub fn kernel_object() -> Option<&'static Api> {
    #[cfg(vmm_gpt_kernel_object)]
    {
        Some(&kernel_object::KOBJ)
    }
    #[cfg(not(vmm_gpt_kernel_object))]
    {
        None
    }
}

static COMPARE_KERNEL_OBJECT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// From now on in this process, compares the kernel object with the
/// original, instead of the library.  False (and no change) when the
/// kernel object is not linked.
pub fn compare_kernel_object() -> bool {
    let linked = kernel_object().is_some();
    COMPARE_KERNEL_OBJECT.store(linked, std::sync::atomic::Ordering::SeqCst);
    linked
}

/// What the runner compares with the original: the library ([`LIB`]), or
/// the kernel object after [`compare_kernel_object`].
pub fn library() -> &'static Api {
    match kernel_object() {
        Some(k) if COMPARE_KERNEL_OBJECT.load(std::sync::atomic::Ordering::SeqCst) => k,
        _ => &LIB,
    }
}

/// The original, when build.rs built it.
pub fn reference() -> Option<&'static Api> {
    #[cfg(vmm_gpt_reference)]
    {
        Some(&original::REF)
    }
    #[cfg(not(vmm_gpt_reference))]
    {
        None
    }
}

/// Live allocations of a kmem domain.
pub fn domain_stats(domain: c_uint) -> KmemStats {
    let mut ks = KmemStats::default();
    // SAFETY: `ks` is a valid kmem_stats_t to write; the domain is one of
    // the constants above (below KTEST_KMEM_DOMAINS).
    unsafe { ktest_kmem_domain_stats(domain, &mut ks) };
    ks
}

#[cfg(vmm_gpt_reference_ndebug)]
mod original_ndebug {
    use super::*;

    // As for the original: only pointers to vmm_gpt_t cross.
    #[allow(improper_ctypes)]
    extern "C" {
        pub fn ref_ndebug_vmm_gpt_init(imp: *const vmm_pte_impl) -> bool;
        pub fn ref_ndebug_vmm_gpt_fini();
        pub fn ref_ndebug_vmm_gpt_alloc() -> *mut vmm_gpt_t;
        pub fn ref_ndebug_vmm_gpt_free(gpt: *mut vmm_gpt_t);
        pub fn ref_ndebug_vmm_gpt_walk(
            gpt: *mut vmm_gpt_t,
            gpa: u64,
            entries: *mut *mut vmm_gpt_entry_t,
            depth: c_uint,
        ) -> u64;
        pub fn ref_ndebug_vmm_gpt_iter_init(
            iter: *mut vmm_gpt_iter_t,
            gpt: *mut vmm_gpt_t,
            addr: u64,
            len: u64,
        );
        pub fn ref_ndebug_vmm_gpt_iter_next(
            iter: *mut vmm_gpt_iter_t,
            entry: *mut vmm_gpt_iter_entry_t,
        ) -> bool;
        pub fn ref_ndebug_vmm_gpt_populate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
        pub fn ref_ndebug_vmm_gpt_map_at(
            gpt: *mut vmm_gpt_t,
            ptep: *mut vmm_gpt_entry_t,
            pfn: pfn_t,
            prot: uint_t,
            attr: u8,
        ) -> bool;
        pub fn ref_ndebug_vmm_gpt_vacate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
        pub fn ref_ndebug_vmm_gpt_unmap(gpt: *mut vmm_gpt_t, gpa: u64) -> bool;
        pub fn ref_ndebug_vmm_gpt_unmap_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64) -> usize;
        pub fn ref_ndebug_vmm_gpt_get_pmtp(gpt: *mut vmm_gpt_t, track_dirty: bool) -> u64;
        pub fn ref_ndebug_vmm_gpte_is_mapped(
            ptep: *const vmm_gpt_entry_t,
            pfnp: *mut pfn_t,
            protp: *mut uint_t,
        ) -> bool;
        pub fn ref_ndebug_vmm_gpte_reset_accessed(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
        pub fn ref_ndebug_vmm_gpte_reset_dirty(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
        pub fn ref_ndebug_vmm_gpte_query_accessed(ptep: *const vmm_gpt_entry_t) -> bool;
        pub fn ref_ndebug_vmm_gpte_query_dirty(ptep: *const vmm_gpt_entry_t) -> bool;
        pub fn ref_ndebug_vmm_gpt_can_track_dirty(gpt: *mut vmm_gpt_t) -> bool;
    }

    /// The original `vmm_gpt.c` compiled without DEBUG.
    pub static REF_NDEBUG: Api = Api {
        name: "original (non-DEBUG)",
        domain: REF_DOMAIN,
        init: ref_ndebug_vmm_gpt_init,
        fini: ref_ndebug_vmm_gpt_fini,
        alloc: ref_ndebug_vmm_gpt_alloc,
        free: ref_ndebug_vmm_gpt_free,
        walk: ref_ndebug_vmm_gpt_walk,
        iter_init: ref_ndebug_vmm_gpt_iter_init,
        iter_next: ref_ndebug_vmm_gpt_iter_next,
        populate_region: ref_ndebug_vmm_gpt_populate_region,
        map_at: ref_ndebug_vmm_gpt_map_at,
        vacate_region: ref_ndebug_vmm_gpt_vacate_region,
        unmap: ref_ndebug_vmm_gpt_unmap,
        unmap_region: ref_ndebug_vmm_gpt_unmap_region,
        get_pmtp: ref_ndebug_vmm_gpt_get_pmtp,
        is_mapped: ref_ndebug_vmm_gpte_is_mapped,
        reset_accessed: ref_ndebug_vmm_gpte_reset_accessed,
        reset_dirty: ref_ndebug_vmm_gpte_reset_dirty,
        query_accessed: ref_ndebug_vmm_gpte_query_accessed,
        query_dirty: ref_ndebug_vmm_gpte_query_dirty,
        can_track_dirty: ref_ndebug_vmm_gpt_can_track_dirty,
    };
}

/// The original compiled without DEBUG (ASSERTs off, as production
/// kernels are), when built with the `ndebug-reference` feature and
/// `ILLUMOS_GATE`: the benchmarks' reference.  Its allocations are charged
/// to `REF_DOMAIN`, like the DEBUG original's.
pub fn reference_ndebug() -> Option<&'static Api> {
    #[cfg(vmm_gpt_reference_ndebug)]
    {
        Some(&original_ndebug::REF_NDEBUG)
    }
    #[cfg(not(vmm_gpt_reference_ndebug))]
    {
        None
    }
}
