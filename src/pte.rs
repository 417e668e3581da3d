//! PTE operations: every read and write of a page-table entry, and the
//! format operations on entries.
//!
//! Page tables are shared with the hardware (which sets accessed and dirty
//! bits in leaf entries while the guest runs) and with other CPUs (vCPU
//! fault handlers map pages concurrently).  So an entry is only ever
//! accessed as an `AtomicU64`: loads and stores are single 64-bit accesses
//! and updates that must not lose a concurrent hardware change are
//! compare-and-swap loops, exactly as the original's `atomic_cas_64`.
//!
//! Orderings: table links are published with `Release` stores and read
//! with `Acquire` loads, so a walker that sees a link sees the zeroed table
//! behind it; compare-and-swap is `SeqCst`, a full barrier like illumos'
//! `atomic_cas_64`.  On x86-64 the loads and stores are plain `mov`s.

use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::abi::{pfn_t, uint_t, vmm_gpt_entry_t};
use crate::hotpatch;
use crate::kernel::{self, debug_verify};

/// A borrowed page-table entry.
pub type Pte = AtomicU64;

/// Views a C entry pointer as an atomic entry.
///
/// # Safety
/// `ptep` must be non-NULL, 8-byte aligned, and point to an entry of a live
/// page table (or other memory valid for atomic 64-bit access) for `'a`.
#[inline]
pub unsafe fn from_ptr<'a>(ptep: *mut vmm_gpt_entry_t) -> &'a Pte {
    // SAFETY: the caller guarantees validity and alignment; every access to
    // the entry, ours, other CPUs' and the hardware's, is atomic.
    unsafe { AtomicU64::from_ptr(ptep) }
}

/// Reads an entry.
#[inline]
pub fn load(pte: &Pte) -> u64 {
    pte.load(Ordering::Acquire)
}

/// Writes an entry.
#[inline]
pub fn store(pte: &Pte, value: u64) {
    pte.store(value, Ordering::Release)
}

/// Swaps `new` into an entry that holds `current`; returns what it held.
#[inline]
pub fn cas(pte: &Pte, current: u64, new: u64) -> u64 {
    match pte.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(v) | Err(v) => v,
    }
}

/// Clears an entry, returning what it held.  An empty entry is only read:
/// the consumer's locks keep anyone from mapping a page while it is being
/// unmapped, so the read linearizes as a swap would, without dirtying the
/// cache line.  A mapped entry is read, then zeroed by a plain atomic
/// store, as the original does (`pte = *ptep; *ptep = 0`).
///
/// Performance: this used to swap a mapped entry (`lock xchg`), which made
/// `vmm_gpt_unmap_region` 2.4 times slower than the original per page
/// (benches/README.md).  The swap bought nothing observable: the only
/// concurrent writer the consumer allows is the hardware setting accessed
/// and dirty bits, which a swap would have kept in the returned value, but
/// the callers (`unmap`, `unmap_region`) use that value only to tell
/// whether the entry mapped a page, which those bits do not change; the
/// entry ends up zero either way.
#[inline]
pub fn take(pte: &Pte) -> u64 {
    let old = load(pte);
    if old != 0 {
        store(pte, 0);
    }
    old
}

/// The entry that links a table at host PFN `pfn` (the format's
/// `vpi_map_table`, through its stub).
#[inline]
pub fn map_table(pfn: pfn_t) -> u64 {
    // SAFETY: the stub is a 5-byte jump to the installed format's
    // function, whose C signature is this one; before vmm_gpt_init() it
    // jumps to vmm_gpt_impl_panic(), which does not return.
    unsafe { kernel::vmm_gpti_map_table(pfn) }
}

/// The leaf entry mapping host page `pfn` with `prot` and memory type
/// `attr` (the format's `vpi_map_page`, through its stub).
#[inline]
pub fn map_page(pfn: pfn_t, prot: uint_t, attr: u8) -> u64 {
    // SAFETY: as for map_table().
    unsafe { kernel::vmm_gpti_map_page(pfn, prot, attr) }
}

/// Does `pte` map anything?  Writes the PFN and the protection where
/// asked (the format's `vpi_pte_parse`, through its stub).
///
/// # Safety
/// `pfnp` and `protp` are each NULL or valid for a write.
#[inline]
pub unsafe fn parse(pte: u64, pfnp: *mut pfn_t, protp: *mut uint_t) -> bool {
    // SAFETY: as for map_table(); the pointers are the caller's promise.
    unsafe { kernel::vmm_gpti_parse(pte, pfnp, protp) }
}

/// Does `pte` map anything (a page, or a table)?
#[inline]
pub fn is_present(pte: u64) -> bool {
    // SAFETY: NULL out-pointers are never written.
    unsafe { parse(pte, ptr::null_mut(), ptr::null_mut()) }
}

/// The host PFN an entry links or maps, or `None` if it maps nothing.
#[inline]
pub fn parse_pfn(pte: u64) -> Option<pfn_t> {
    let mut pfn: pfn_t = 0;
    // SAFETY: `pfn` is a local, valid for the write; protp is NULL.
    if unsafe { parse(pte, &mut pfn, ptr::null_mut()) } {
        Some(pfn)
    } else {
        None
    }
}

/// Installs a leaf mapping in an empty entry (`vmm_gpt_map_at()`).
///
/// Returns false, changing nothing, if the entry already maps something:
/// concurrent faults on one page race here, and the compare-and-swap lets
/// exactly one of them win.  The losers must have been mapping the same
/// page (checked in debug builds, as the original does).
pub fn map_at(pte: &Pte, pfn: pfn_t, prot: uint_t, attr: u8) -> bool {
    const FUNC: &core::ffi::CStr = c"vmm_gpt_map_at";
    let new = map_page(pfn, prot, attr);
    let old = cas(pte, 0, new);
    if old == 0 {
        return true;
    }
    if cfg!(debug_assertions) {
        let new_pfn = parse_pfn(new);
        let old_pfn = parse_pfn(old);
        debug_verify!(FUNC, new_pfn.is_some());
        debug_verify!(FUNC, old_pfn.is_some());
        if new_pfn != old_pfn {
            kernel::fail_named(
                FUNC,
                c"entry already maps pfn",
                old_pfn.unwrap_or(0),
                c"while mapping another pfn",
            );
        }
    }
    false
}

/// Clears `mask` in an entry and sets `bits`, without losing a concurrent
/// change to any other bit; returns the old value of the masked bits.
///
/// When the masked bits already hold `bits`, the entry is left alone: a
/// plain atomic load observes that, and it linearizes before any later
/// hardware update just as a compare-and-swap would (KVM skips the atomic
/// in the same way).
fn reset_bits(pte: &Pte, mask: u64, bits: u64) -> u64 {
    let mut old = load(pte);
    loop {
        if old & mask == bits {
            return old & mask;
        }
        let seen = cas(pte, old, (old & !mask) | bits);
        if seen == old {
            return old & mask;
        }
        old = seen;
    }
}

/// `vmm_gpte_reset_accessed()`: with `on`, sets the accessed bit; either
/// way clears the dirty bit.  Returns whether accessed or dirty was set.
pub fn reset_accessed(pte: &Pte, on: bool) -> bool {
    let imp = hotpatch::installed();
    let accessed = imp.vpi_bit_accessed;
    let dirty = imp.vpi_bit_dirty;
    reset_bits(pte, accessed | dirty, if on { accessed } else { 0 }) != 0
}

/// `vmm_gpte_reset_dirty()`: sets or clears the dirty bit; returns whether
/// it was set.
pub fn reset_dirty(pte: &Pte, on: bool) -> bool {
    let dirty = hotpatch::installed().vpi_bit_dirty;
    reset_bits(pte, dirty, if on { dirty } else { 0 }) != 0
}

/// `vmm_gpte_query_accessed()`.
pub fn query_accessed(pte: &Pte) -> bool {
    load(pte) & hotpatch::installed().vpi_bit_accessed != 0
}

/// `vmm_gpte_query_dirty()`.
pub fn query_dirty(pte: &Pte) -> bool {
    load(pte) & hotpatch::installed().vpi_bit_dirty != 0
}
