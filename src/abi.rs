//! The C types of `<sys/vmm_gpt.h>`.
//!
//! Everything here is part of the ABI that illumos' `vmm` driver compiles
//! against: cbindgen generates `include/sys/vmm_gpt.h` from this file (and
//! the prototypes in [`crate::ffi`]), and the `ctest` crate checks these
//! definitions against that header.  The layouts must stay exactly as
//! `docs/abi.md` describes them.
//!
//! This file must compile on its own, without external crates: the `ctest`
//! crate expands it in a crate of its own.

#![allow(non_camel_case_types)]

/// Host page frame number: the kernel's `pfn_t` (`unsigned long`).
///
/// cbindgen:no-export
pub type pfn_t = core::ffi::c_ulong;

/// The kernel's `uint_t` (`unsigned int`).
///
/// cbindgen:no-export
pub type uint_t = core::ffi::c_uint;

/// Levels of the page-table tree: the root table is `LEVEL4`, the leaf
/// tables (whose entries map 4 KiB guest pages) are `LEVEL1`.
///
/// A plain C enum (4 bytes).  C callers may pass any `int`, so the library
/// never receives this type by value as a Rust enum: the functions take the
/// raw [`vmm_gpt_node_level_t`] and check it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum vmm_gpt_node_level {
    LEVEL4 = 0,
    LEVEL3,
    LEVEL2,
    LEVEL1,
    MAX_GPT_LEVEL,
}

/// The C name of the level enum (`typedef enum vmm_gpt_node_level
/// vmm_gpt_node_level_t;`), for the header.
pub type vmm_gpt_node_level_t = vmm_gpt_node_level;

/// How the functions receive a `vmm_gpt_node_level_t`: as its raw 4 bytes.
/// A C caller can pass any `int`, and a Rust enum holding a value outside
/// its variants would be undefined behaviour, so the library takes the raw
/// value and checks it.  The header spells it `vmm_gpt_node_level_t` (a
/// rename in `cbindgen.toml`).
///
/// cbindgen:no-export
pub type vmm_gpt_node_level_raw = core::ffi::c_uint;

/// `LEVEL4` as the raw value the functions receive.
pub const LEVEL4: u32 = vmm_gpt_node_level::LEVEL4 as u32;
/// `LEVEL3` as the raw value the functions receive.
pub const LEVEL3: u32 = vmm_gpt_node_level::LEVEL3 as u32;
/// `LEVEL2` as the raw value the functions receive.
pub const LEVEL2: u32 = vmm_gpt_node_level::LEVEL2 as u32;
/// `LEVEL1` as the raw value the functions receive.
pub const LEVEL1: u32 = vmm_gpt_node_level::LEVEL1 as u32;
/// `MAX_GPT_LEVEL`: the number of levels.
pub const MAX_GPT_LEVEL: usize = vmm_gpt_node_level::MAX_GPT_LEVEL as usize;

/// A generic page table.  Opaque to C: its contents are
/// [`crate::node::Gpt`].
pub struct vmm_gpt {
    _opaque: [u8; 0],
}

/// The C name of [`vmm_gpt`].
pub type vmm_gpt_t = vmm_gpt;

/// A page-table entry, as C sees it.  Inside the library every access goes
/// through an atomic (see [`crate::pte`]).
pub type vmm_gpt_entry_t = u64;

/// Iteration state over the leaf entries of a range; callers allocate it on
/// their stack.
#[repr(C)]
pub struct vmm_gpt_iter {
    pub vgi_gpt: *mut vmm_gpt_t,
    pub vgi_addr: u64,
    pub vgi_end: u64,
    pub vgi_current: u64,
    pub vgi_entries: [*mut vmm_gpt_entry_t; MAX_GPT_LEVEL],
}

/// The C name of [`vmm_gpt_iter`].
pub type vmm_gpt_iter_t = vmm_gpt_iter;

/// One leaf entry produced by the iterator.
#[repr(C)]
pub struct vmm_gpt_iter_entry {
    pub vgie_gpa: u64,
    pub vgie_ptep: *mut vmm_gpt_entry_t,
}

/// The C name of [`vmm_gpt_iter_entry`].
pub type vmm_gpt_iter_entry_t = vmm_gpt_iter_entry;
