//! The C surface of one implementation behind one table type, [`Api`], and
//! the library's table, [`LIB`]; `vmm-gpt-impls` makes the tables of the
//! renamed copies (the originals, the kernel objects, the release
//! staticlib).

use std::ffi::c_uint;

use vmm_gpt::abi::{
    pfn_t, uint_t, vmm_gpt_entry_t, vmm_gpt_iter_entry_t, vmm_gpt_iter_t, vmm_gpt_t,
};
use vmm_gpt::abi_impl::vmm_pte_impl;

/// The C surface of one implementation (the 19 functions of
/// `<sys/vmm_gpt.h>`), with the kmem domain its allocations are charged to
/// and whether it is a DEBUG build (the original's `ASSERT`s checked).
pub struct Api {
    pub name: &'static str,
    pub domain: c_uint,
    pub debug: bool,
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

/// kmem domain of the implementation under test's allocations.
pub const LIB_DOMAIN: c_uint = 1;
/// kmem domain of the original's allocations.
pub const REF_DOMAIN: c_uint = 2;

/// The Rust library.
pub static LIB: Api = {
    use vmm_gpt::ffi::*;
    Api {
        name: "library",
        domain: LIB_DOMAIN,
        // The library is a DEBUG build (`cfg(vmm_gpt_debug)`) by its own
        // rule, which build.rs follows: VMM_GPT_DEBUG, else the profile's
        // debug assertions.
        debug: cfg!(vmm_gpt_library_debug),
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
