//! The Rust side of the ABI, as the `ctest` crate reads it.
//!
//! ctest expands this file on its own (`rustc -Zunpretty=expanded`, in a
//! crate without dependencies, with `--cfg ctest_expand`; see build.rs) and
//! generates a check for every type alias, struct, constant and
//! `extern "C"` item it finds.  It does not see Rust enums or the library's
//! `#[no_mangle] extern "C" fn` definitions, so this file gives it
//!
//! - the real type definitions, `src/abi.rs` and `src/abi_impl.rs` of the
//!   library, compiled in as modules (`abi_impl.rs` imports
//!   `crate::abi`, which is why they sit at this crate's root).  The level
//!   enum is seen through its forms in `abi.rs`: the `vmm_gpt_node_level_t`
//!   alias, the raw `vmm_gpt_node_level_raw` the functions take, and the
//!   `LEVEL*` / `MAX_GPT_LEVEL` constants;
//! - an `extern "C"` block declaring the library's 21 global symbols, with
//!   the exact signatures of their definitions in `src/ffi.rs` and
//!   `src/hotpatch.rs`.
//!
//! The test target (`tests/abi.rs`) includes this file as a module too,
//! without `ctest_expand`: the types are then the library's own, and the
//! test checks at compile time that every declaration below has the
//! signature of the library's definition, and build.rs that the block
//! declares every `#[no_mangle]` item of the library.

// `vmm_gpt` is opaque to C (only pointers to it cross the boundary), and
// the library does not make it `#[repr(C)]`.
#![allow(improper_ctypes)]

#[cfg(ctest_expand)]
#[path = "../../../src/abi.rs"]
mod abi;
#[cfg(ctest_expand)]
#[path = "../../../src/abi_impl.rs"]
mod abi_impl;

#[cfg(ctest_expand)]
pub use abi::*;
#[cfg(ctest_expand)]
pub use abi_impl::*;

#[cfg(not(ctest_expand))]
pub use ::vmm_gpt::abi::*;
#[cfg(not(ctest_expand))]
pub use ::vmm_gpt::abi_impl::*;

extern "C" {
    // The 19 functions of <sys/vmm_gpt.h> (src/ffi.rs), in header order.
    pub fn vmm_gpt_init(target_impl: *const vmm_pte_impl) -> bool;
    pub fn vmm_gpt_fini();
    pub fn vmm_gpt_alloc() -> *mut vmm_gpt_t;
    pub fn vmm_gpt_free(g: *mut vmm_gpt_t);
    pub fn vmm_gpt_walk(
        g: *mut vmm_gpt_t,
        gpa: u64,
        entries: *mut *mut vmm_gpt_entry_t,
        depth: vmm_gpt_node_level_raw,
    ) -> u64;
    pub fn vmm_gpt_iter_init(iter: *mut vmm_gpt_iter_t, g: *mut vmm_gpt_t, addr: u64, len: u64);
    pub fn vmm_gpt_iter_next(iter: *mut vmm_gpt_iter_t, entry: *mut vmm_gpt_iter_entry_t) -> bool;
    pub fn vmm_gpt_populate_region(g: *mut vmm_gpt_t, addr: u64, len: u64);
    pub fn vmm_gpt_map_at(
        g: *mut vmm_gpt_t,
        ptep: *mut vmm_gpt_entry_t,
        pfn: pfn_t,
        prot: uint_t,
        attr: u8,
    ) -> bool;
    pub fn vmm_gpt_vacate_region(g: *mut vmm_gpt_t, addr: u64, len: u64);
    pub fn vmm_gpt_unmap(g: *mut vmm_gpt_t, gpa: u64) -> bool;
    pub fn vmm_gpt_unmap_region(g: *mut vmm_gpt_t, addr: u64, len: u64) -> usize;
    pub fn vmm_gpt_get_pmtp(g: *mut vmm_gpt_t, track_dirty: bool) -> u64;
    pub fn vmm_gpte_is_mapped(
        ptep: *const vmm_gpt_entry_t,
        pfnp: *mut pfn_t,
        protp: *mut uint_t,
    ) -> bool;
    pub fn vmm_gpte_reset_accessed(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
    pub fn vmm_gpte_reset_dirty(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
    pub fn vmm_gpte_query_accessed(ptep: *const vmm_gpt_entry_t) -> bool;
    pub fn vmm_gpte_query_dirty(ptep: *const vmm_gpt_entry_t) -> bool;
    pub fn vmm_gpt_can_track_dirty(g: *mut vmm_gpt_t) -> bool;

    // The other two global symbols of vmm_gpt.o (src/hotpatch.rs); no
    // illumos header declares them (the C side gets them from
    // include/vmm_gpt_abi_extra.h).
    pub fn vmm_gpt_impl_panic();
    pub static vmm_pte_uninit_impl: vmm_pte_impl;
}
