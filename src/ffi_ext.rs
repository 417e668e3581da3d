//! The C surface of the extension (the cargo feature `harvest-dirty`,
//! `illumos-build/build.sh --harvest`): `vmm_gpt_harvest_dirty()` and its
//! flags, declared in `include/sys/vmm_gpt_ext.h`.  Not part of the
//! original's interface: the default staticlib and kernel objects export
//! exactly the original's 21 symbols, and only an opt-in build adds this
//! one (`illumos-build/exports-harvest.txt`).
//!
//! The consumer side is `illumos-build/patches/vmm_vm-harvest-dirty.patch`:
//! `vmspace_bits_operate()` calls this for `VBO_GET_DIRTY` and
//! `VBO_RESET_DIRTY`, mapping `VBO_FLAG_BITMAP_IN` / `_OUT` to the flags
//! below.

#![allow(clippy::missing_safety_doc)]

use crate::abi::{uint_t, vmm_gpt_t};
use crate::{ffi, harvest, kernel};

/// Clear the dirty bits found (`VBO_RESET_DIRTY`); without it, only read
/// them (`VBO_GET_DIRTY`).
pub const VMM_GPT_HARVEST_RESET: uint_t = 1 << 0;
/// Visit only the pages whose bit is set in the bitmap
/// (`VBO_FLAG_BITMAP_IN`).
pub const VMM_GPT_HARVEST_BITMAP_IN: uint_t = 1 << 1;
/// Write each visited page's result into its bit (`VBO_FLAG_BITMAP_OUT`).
pub const VMM_GPT_HARVEST_BITMAP_OUT: uint_t = 1 << 2;

/// Reads, and with `VMM_GPT_HARVEST_RESET` clears, the dirty bits of the
/// pages of `[gpa, gpa + len)` in one call, exactly as
/// `vmspace_bits_operate()`'s loop of `vmm_gpt_iter_next()` and
/// `vmm_gpte_query_dirty()` / `vmm_gpte_reset_dirty(ptep, false)` does,
/// bitmap included (bit `i % 8` of byte `i / 8` is the page at
/// `gpa + i * PAGESIZE`); returns how many pages it found dirty.  Pages
/// without a leaf table are not visited.  Runs concurrently with the
/// hardware, faults, page releases and other harvests; allocates nothing.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_harvest_dirty(
    gpt: *mut vmm_gpt_t,
    gpa: u64,
    len: usize,
    bitmap: *mut u8,
    flags: uint_t,
) -> usize {
    // The caller keeps the GPT's tables (the VM's read lock) across the
    // call, as for the iterator.
    let g = ffi::gpt(c"vmm_gpt_harvest_dirty", gpt);
    // SAFETY: the bitmap is the caller's, as the C contract says.
    kernel::no_tail(unsafe { harvest::harvest_dirty(g, gpa, len as u64, bitmap, flags) })
}
