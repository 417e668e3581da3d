//! The C types of `<sys/vmm_gpt_impl.h>`: the interface a PTE format (Intel
//! EPT in `vmm_sol_ept.c`, AMD nested paging in `vmm_sol_rvi.c`) implements.
//!
//! cbindgen generates `include/sys/vmm_gpt_impl.h` from this file alone; the
//! `ctest` crate checks it against that header.  It must compile on its own,
//! without external crates.

#![allow(non_camel_case_types)]

use crate::abi::{pfn_t, uint_t};

/// The operations and bits of one nested page-table entry format.
///
/// Every function pointer must be non-NULL; `vmm_gpt_init()` checks that.
/// The first three are not called through these pointers on the hot path:
/// `vmm_gpt_init()` hot-patches the `vmm_gpti_*` stubs to jump straight to
/// them (see [`crate::hotpatch`]).
#[repr(C)]
pub struct vmm_pte_impl {
    /// PTE that links the next-level table at that host PFN.
    pub vpi_map_table: Option<unsafe extern "C" fn(pfn_t) -> u64>,
    /// Leaf PTE for a host PFN with `PROT_*` protection and a memory type.
    pub vpi_map_page: Option<unsafe extern "C" fn(pfn_t, uint_t, u8) -> u64>,
    /// False if the PTE maps nothing; else fills the PFN and the protection
    /// where the pointers are not NULL.
    pub vpi_pte_parse: Option<unsafe extern "C" fn(u64, *mut pfn_t, *mut uint_t) -> bool>,
    /// The accessed bit of this format.
    pub vpi_bit_accessed: u64,
    /// The dirty bit of this format.
    pub vpi_bit_dirty: u64,
    /// EPTP / nCR3 value for a root table PFN, with or without A/D tracking.
    pub vpi_get_pmtp: Option<unsafe extern "C" fn(pfn_t, bool) -> u64>,
    /// Does the hardware keep accessed/dirty bits?
    pub vpi_hw_ad_supported: Option<unsafe extern "C" fn() -> bool>,
}

/// The C name of [`vmm_pte_impl`].
pub type vmm_pte_impl_t = vmm_pte_impl;
