//! The C surface: the 19 functions of `<sys/vmm_gpt.h>`, with the exact C
//! signatures.  Each checks its pointers, turns them into references, and
//! calls the module that holds the behaviour; a call that would be in tail
//! position returns through [`kernel::no_tail`], so every function leaves
//! through a `ret` of its own (DTrace's fbt return probe, mdb's stack).
//!
//! Thread safety is the C contract: `vmm_gpt_populate_region`,
//! `vmm_gpt_vacate_region` and `vmm_gpt_free` of one GPT are serialized by
//! the caller (vmspace's lock); walks, the iterator, mapping, unmapping and
//! the A/D operations touch only page-table entries, atomically, so they may
//! run concurrently with each other, with the hardware and with populate,
//! but not with a vacate or free of the tables they are using.

#![allow(clippy::missing_safety_doc)]

use core::ffi::CStr;

use crate::abi::{
    pfn_t, uint_t, vmm_gpt_entry_t, vmm_gpt_iter_entry_t, vmm_gpt_iter_t, vmm_gpt_node_level_raw,
    vmm_gpt_t,
};
use crate::abi_impl::vmm_pte_impl;
use crate::kernel;
use crate::node::Gpt;
use crate::pte::{self, Pte};
use crate::{hotpatch, region, walk};

/// The GPT behind a C handle; panics on NULL.
#[inline]
pub(crate) fn gpt<'a>(func: &CStr, gpt: *mut vmm_gpt_t) -> &'a Gpt {
    if gpt.is_null() {
        kernel::fail(func, c"gpt is NULL");
    }
    // SAFETY: a non-NULL vmm_gpt_t is a Gpt from vmm_gpt_alloc() that the
    // caller keeps alive across the call.
    unsafe { &*(gpt as *const Gpt) }
}

/// The entry behind a C pointer: panics on NULL (the original dereferences
/// it, or `VERIFY`s it in the resets); `None` for a misaligned pointer,
/// which no walk or iterator hands out, and which each caller serves as the
/// non-DEBUG original would (see `pte::load_misaligned`).
#[inline]
fn entry<'a>(func: &CStr, ptep: *const vmm_gpt_entry_t) -> Option<&'a Pte> {
    if ptep.is_null() {
        kernel::fail(func, c"ptep is NULL");
    }
    if !ptep.cast::<u64>().is_aligned() {
        return None;
    }
    // SAFETY: a non-NULL entry pointer comes from a walk or the iterator and
    // points into a live table (the C contract); entries are only accessed
    // atomically, so viewing it as an AtomicU64 is sound.
    Some(unsafe { pte::from_ptr(ptep as *mut vmm_gpt_entry_t) })
}

/// The value of the entry behind a C pointer, for the read-only functions.
#[inline]
fn entry_value(func: &CStr, ptep: *const vmm_gpt_entry_t) -> u64 {
    match entry(func, ptep) {
        Some(e) => pte::load(e),
        // SAFETY: the C contract: ptep points to an entry's 8 bytes.
        None => unsafe { pte::load_misaligned(ptep) },
    }
}

/// `vmm_gpte_reset_accessed` / `_dirty` of the entry behind a C pointer:
/// clears `mask`, sets `bits`; returns whether any of `mask` was set.
#[inline]
fn reset(func: &CStr, ptep: *mut vmm_gpt_entry_t, (mask, bits): (u64, u64)) -> bool {
    let old = match entry(func, ptep) {
        Some(e) => pte::reset_bits(e, mask, bits),
        // SAFETY: the C contract: ptep points to an entry's 8 bytes.
        None => unsafe { pte::reset_misaligned(func, ptep, mask, bits) },
    };
    old != 0
}

/// Installs a PTE format by hot-patching the indirection stubs.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_init(target_impl: *const vmm_pte_impl) -> bool {
    // SAFETY: the C contract: a kernel `const struct vmm_pte_impl`.
    kernel::no_tail(unsafe { hotpatch::init(target_impl) })
}

/// Restores the stubs and uninstalls the format (module unload).
#[no_mangle]
pub extern "C" fn vmm_gpt_fini() {
    hotpatch::fini();
    kernel::no_tail_here();
}

/// Allocates a GPT with an empty root table.
#[no_mangle]
pub extern "C" fn vmm_gpt_alloc() -> *mut vmm_gpt_t {
    kernel::no_tail(Gpt::alloc() as *mut vmm_gpt_t)
}

/// Frees a GPT and every table in it, including any still populated or
/// mapped (the original promises that but panics; see `Gpt::free`).
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_free(g: *mut vmm_gpt_t) {
    gpt(c"vmm_gpt_free", g);
    // SAFETY: a live GPT from vmm_gpt_alloc(), handed back for good.
    unsafe { Gpt::free(g as *mut Gpt) };
    kernel::no_tail_here();
}

/// Walks to `gpa`, filling `entries[LEVEL4..=depth]`.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_walk(
    g: *mut vmm_gpt_t,
    gpa: u64,
    entries: *mut *mut vmm_gpt_entry_t,
    depth: vmm_gpt_node_level_raw,
) -> u64 {
    const FUNC: &CStr = c"vmm_gpt_walk";
    let g = gpt(FUNC, g);
    if entries.is_null() {
        kernel::fail(FUNC, c"entries is NULL");
    }
    let depth = walk::check_depth(FUNC, depth);
    // SAFETY: the caller passes an array with room for entries[LEVEL4] up
    // to entries[depth] (vmm_vm.c passes `entries[MAX_GPT_LEVEL]`), which
    // nobody else uses during the call; nothing past depth is touched.
    let entries = unsafe { core::slice::from_raw_parts_mut(entries, depth.idx() + 1) };
    kernel::no_tail(walk::walk(g, gpa, entries, depth))
}

/// Starts iterating over the leaf entries of `[addr, addr + len)`.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_iter_init(
    iter: *mut vmm_gpt_iter_t,
    g: *mut vmm_gpt_t,
    addr: u64,
    len: u64,
) {
    const FUNC: &CStr = c"vmm_gpt_iter_init";
    let g = gpt(FUNC, g);
    if iter.is_null() {
        kernel::fail(FUNC, c"iter is NULL");
    }
    // SAFETY: the caller's iterator, exclusively ours for the call.
    walk::iter_init(unsafe { &mut *iter }, g, addr, len);
    kernel::no_tail_here();
}

/// The next leaf entry of an iteration, or false at its end.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_iter_next(
    iter: *mut vmm_gpt_iter_t,
    entry: *mut vmm_gpt_iter_entry_t,
) -> bool {
    if iter.is_null() {
        kernel::fail(c"vmm_gpt_iter_next", c"iter is NULL");
    }
    // SAFETY: the caller's iterator (set up by vmm_gpt_iter_init, so its
    // entry pointers are NULL or point into live tables), exclusively ours
    // for the call; `entry` is checked where it is first written.
    kernel::no_tail(unsafe { walk::iter_next(&mut *iter, entry) })
}

/// Makes sure the tables for `[addr, addr + len)` exist.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_populate_region(g: *mut vmm_gpt_t, addr: u64, len: u64) {
    let g = gpt(c"vmm_gpt_populate_region", g);
    // SAFETY: the C contract serializes populate/vacate/free of a GPT.
    unsafe { region::populate(g, addr, len) };
    kernel::no_tail_here();
}

/// Installs a leaf mapping in an empty entry; false if it was not empty.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_map_at(
    g: *mut vmm_gpt_t,
    ptep: *mut vmm_gpt_entry_t,
    pfn: pfn_t,
    prot: uint_t,
    attr: u8,
) -> bool {
    // The GPT is not needed: the entry says where to map.
    let _ = g;
    kernel::no_tail(match entry(c"vmm_gpt_map_at", ptep) {
        Some(e) => pte::map_at(e, pfn, prot, attr),
        // SAFETY: the C contract: ptep points to an entry's 8 bytes.
        None => unsafe { pte::map_at_misaligned(ptep, pfn, prot, attr) },
    })
}

/// Frees the tables of `[addr, addr + len)` that nothing else needs.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_vacate_region(g: *mut vmm_gpt_t, addr: u64, len: u64) {
    let g = gpt(c"vmm_gpt_vacate_region", g);
    // SAFETY: the C contract serializes populate/vacate/free of a GPT.
    unsafe { region::vacate(g, addr, len) };
    kernel::no_tail_here();
}

/// Removes the mapping of `gpa`; returns whether there was one.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_unmap(g: *mut vmm_gpt_t, gpa: u64) -> bool {
    kernel::no_tail(walk::unmap(gpt(c"vmm_gpt_unmap", g), gpa))
}

/// Removes every mapping in `[addr, addr + len)`; returns how many there
/// were.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_unmap_region(g: *mut vmm_gpt_t, addr: u64, len: u64) -> usize {
    kernel::no_tail(walk::unmap_region(
        gpt(c"vmm_gpt_unmap_region", g),
        addr,
        len,
    ))
}

/// The EPTP / nCR3 of the GPT's root table.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_get_pmtp(g: *mut vmm_gpt_t, track_dirty: bool) -> u64 {
    kernel::no_tail(hotpatch::get_pmtp(
        gpt(c"vmm_gpt_get_pmtp", g).root_pfn(),
        track_dirty,
    ))
}

/// Does the entry map a page?  Fills the PFN and protection where asked.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpte_is_mapped(
    ptep: *const vmm_gpt_entry_t,
    pfnp: *mut pfn_t,
    protp: *mut uint_t,
) -> bool {
    let value = entry_value(c"vmm_gpte_is_mapped", ptep);
    // SAFETY: the C contract: each out-pointer is NULL or writable.
    unsafe { pte::parse(value, pfnp, protp) }
}

/// Sets (`on`) or clears the accessed bit, clearing dirty; returns whether
/// either was set.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpte_reset_accessed(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool {
    reset(c"vmm_gpte_reset_accessed", ptep, pte::accessed_bits(on))
}

/// Sets (`on`) or clears the dirty bit; returns whether it was set.
#[no_mangle]
pub unsafe extern "C" fn vmm_gpte_reset_dirty(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool {
    reset(c"vmm_gpte_reset_dirty", ptep, pte::dirty_bits(on))
}

/// Is the accessed bit set?
#[no_mangle]
pub unsafe extern "C" fn vmm_gpte_query_accessed(ptep: *const vmm_gpt_entry_t) -> bool {
    pte::query_accessed(entry_value(c"vmm_gpte_query_accessed", ptep))
}

/// Is the dirty bit set?
#[no_mangle]
pub unsafe extern "C" fn vmm_gpte_query_dirty(ptep: *const vmm_gpt_entry_t) -> bool {
    pte::query_dirty(entry_value(c"vmm_gpte_query_dirty", ptep))
}

/// Does the hardware keep A/D bits (can dirty pages be tracked)?
#[no_mangle]
pub unsafe extern "C" fn vmm_gpt_can_track_dirty(g: *mut vmm_gpt_t) -> bool {
    // Like the original, this asks the format, not the GPT.
    let _ = g;
    kernel::no_tail(hotpatch::hw_ad_supported())
}
