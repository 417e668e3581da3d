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

use core::ffi::CStr;
use core::ptr;
use core::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};

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
    kernel::no_tail(unsafe { kernel::vmm_gpti_parse(pte, pfnp, protp) })
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
    let new = map_page(pfn, prot, attr);
    let old = cas(pte, 0, new);
    if old == 0 {
        return true;
    }
    already_mapped(new, old);
    false
}

/// `vmm_gpt_map_at()` through a misaligned entry pointer: where the 8
/// bytes there are not zero, the original's compare-and-swap fails and
/// changes nothing, and so does this (a full barrier, as that failed
/// `atomic_cas_64` is); where they are zero, it would write a PTE across
/// two adjacent entries, corrupting both: that panics in every build.
///
/// # Safety
/// `ptep` points to 8 readable bytes (the caller's contract).
#[cold]
#[inline(never)]
pub unsafe fn map_at_misaligned(
    ptep: *const vmm_gpt_entry_t,
    pfn: pfn_t,
    prot: uint_t,
    attr: u8,
) -> bool {
    let new = map_page(pfn, prot, attr);
    // SAFETY: the caller's promise.
    let old = unsafe { load_misaligned(ptep) };
    if old == 0 {
        kernel::fail_value(
            c"vmm_gpt_map_at",
            c"would write a PTE across two entries at misaligned ptep",
            ptep as u64,
        );
    }
    fence(Ordering::SeqCst);
    already_mapped(new, old);
    kernel::no_tail(false)
}

/// DEBUG builds: `map_at` lost to an entry that maps `old`; the original
/// asserts that both map the same page.
fn already_mapped(new: u64, old: u64) {
    const FUNC: &CStr = c"vmm_gpt_map_at";
    if cfg!(vmm_gpt_debug) {
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
}

/// Clears `mask` in an entry and sets `bits` (a subset of `mask`), without
/// losing a concurrent change to any other bit; returns the old value of
/// the masked bits.
///
/// Ordering: every call that sets bits, or finds one to clear, makes at
/// least one locked compare-and-swap, a full barrier, as the original's
/// `atomic_cas_64` loop does whether or not the bits change.  `vmp_release()` relies on that: it writes a page, then
/// marks it dirty; a scanner that clears the dirty bit and then copies the
/// page must see the write whenever it sees the bit.  Were the set skipped
/// for an already-set bit, the page's data could still sit in the writer's
/// store buffer while the scanner clears the bit and copies the old data,
/// and the write would be lost (the litmus test in ctest shows it).
///
/// Clearing bits that are already clear is only a load (acquire): it
/// changes nothing, and it linearizes before any later set, which then
/// leaves the bit set for the next scan, so no update can be lost.  What a
/// scanner does after seeing a clean entry (nothing, or writing its own
/// bitmap) needs no ordering against the writers, and the original's own
/// query (`vmm_gpte_query_dirty`, which `VBO_GET_DIRTY` scans with) is a
/// plain load too.  This skip is what makes a clean scan cheap.
pub fn reset_bits(pte: &Pte, mask: u64, bits: u64) -> u64 {
    let mut old = load(pte);
    if bits == 0 && old & mask == 0 {
        return 0;
    }
    // The original's loop, from the value just read.
    loop {
        let seen = cas(pte, old, (old & !mask) | bits);
        if seen == old {
            return old & mask;
        }
        old = seen;
    }
}

/// Reads the 8 bytes at a misaligned entry pointer, as the original's plain
/// `*ptep` does (x86 allows it): a pointer no walk or iterator hands out,
/// but the non-DEBUG original reads through it without harm, so the
/// read-only functions must too.  Byte by byte, each an atomic load, so
/// that nothing outside the 8 bytes is touched and no access is torn
/// differently from how the hardware may tear the original's.
///
/// # Safety
/// `ptep` points to 8 readable bytes (the caller's contract).
#[cold]
#[inline(never)]
pub unsafe fn load_misaligned(ptep: *const vmm_gpt_entry_t) -> u64 {
    let base = ptep.cast::<u8>();
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        // SAFETY: byte `i` of the caller's 8 bytes; a byte is always
        // aligned for an AtomicU8, and the memory may be written by
        // others only atomically.
        *b = unsafe { AtomicU8::from_ptr(base.add(i).cast_mut()) }.load(Ordering::Acquire);
    }
    u64::from_le_bytes(bytes)
}

/// A reset (clear `mask`, set `bits`) through a misaligned entry pointer;
/// returns the old masked bits.  Where the 8 bytes there already hold the
/// requested bits, the original's compare-and-swap writes them back
/// unchanged, a full barrier, which the fence keeps.  Where it would change
/// bits, it would rewrite parts of two adjacent entries (corrupting both):
/// that panics, in every build, naming the function and the pointer.  Out
/// of line, so that the aligned path stays lean.
///
/// # Safety
/// `ptep` points to 8 readable bytes (the caller's contract).
#[cold]
#[inline(never)]
pub unsafe fn reset_misaligned(
    func: &CStr,
    ptep: *const vmm_gpt_entry_t,
    mask: u64,
    bits: u64,
) -> u64 {
    // SAFETY: the caller's promise.
    let value = unsafe { load_misaligned(ptep) };
    if value & mask != bits {
        kernel::fail_value(
            func,
            c"would rewrite two entries through misaligned ptep",
            ptep as u64,
        );
    }
    fence(Ordering::SeqCst);
    kernel::no_tail(value & mask)
}

/// `vmm_gpte_reset_accessed(on)` clears the accessed and dirty bits and,
/// with `on`, sets accessed: the mask and the bits for [`reset_bits`].
pub fn accessed_bits(on: bool) -> (u64, u64) {
    let imp = hotpatch::installed();
    let (accessed, dirty) = (imp.vpi_bit_accessed, imp.vpi_bit_dirty);
    (accessed | dirty, if on { accessed } else { 0 })
}

/// `vmm_gpte_reset_dirty(on)` clears the dirty bit and, with `on`, sets
/// it: the mask and the bits for [`reset_bits`].
pub fn dirty_bits(on: bool) -> (u64, u64) {
    let dirty = hotpatch::installed().vpi_bit_dirty;
    (dirty, if on { dirty } else { 0 })
}

/// `vmm_gpte_query_accessed()` of an entry holding `value`.
pub fn query_accessed(value: u64) -> bool {
    value & hotpatch::installed().vpi_bit_accessed != 0
}

/// `vmm_gpte_query_dirty()` of an entry holding `value`.
pub fn query_dirty(value: u64) -> bool {
    value & hotpatch::installed().vpi_bit_dirty != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_at_fills_only_an_empty_entry() {
        let e = Pte::new(0);
        assert!(map_at(&e, 0xabcde, 7, 6));
        assert_eq!(load(&e), (0xabcde << 12) | 7 | 6 << 3);
        // The same page again loses, changing nothing (no DEBUG panic:
        // same PFN).
        assert!(!map_at(&e, 0xabcde, 1, 0));
        assert_eq!(load(&e), (0xabcde << 12) | 7 | 6 << 3);
        assert_eq!(parse_pfn(load(&e)), Some(0xabcde));
        assert!(is_present(load(&e)));
        assert_eq!(parse_pfn(0), None);
    }

    #[test]
    #[cfg_attr(
        vmm_gpt_debug,
        should_panic(
            expected = "vmm_gpt_map_at: entry already maps pfn 0x5 while mapping another pfn"
        )
    )]
    fn map_at_over_another_page() {
        let e = Pte::new(0);
        assert!(map_at(&e, 5, 3, 0));
        // DEBUG builds panic, as the original's ASSERT; others lose.
        assert!(!map_at(&e, 6, 3, 0));
        assert_eq!(parse_pfn(load(&e)), Some(5));
    }

    #[test]
    fn take_clears_and_returns() {
        let e = Pte::new(0x5007);
        assert_eq!(take(&e), 0x5007);
        assert_eq!(load(&e), 0);
        assert_eq!(take(&e), 0);
    }

    #[test]
    fn reset_bits_clears_the_mask_and_sets_the_bits() {
        const A: u64 = 1 << 8;
        const D: u64 = 1 << 9;
        let e = Pte::new(0x7000 | 7 | A | D);
        // Clear A and D, set A: returns the old A and D.
        assert_eq!(reset_bits(&e, A | D, A), A | D);
        assert_eq!(load(&e), 0x7000 | 7 | A);
        // Clear D, already clear.
        assert_eq!(reset_bits(&e, D, 0), 0);
        assert_eq!(load(&e), 0x7000 | 7 | A);
        // Set D.
        assert_eq!(reset_bits(&e, D, D), 0);
        assert_eq!(load(&e), 0x7000 | 7 | A | D);
        assert_eq!(cas(&e, 0, 1), 0x7000 | 7 | A | D);
    }

    #[test]
    fn misaligned_reads_take_eight_bytes() {
        let words = [0x1122_3344_5566_7788u64, 0x99aa_bbcc_ddee_ff00];
        let p = (words.as_ptr() as *const u8).wrapping_add(3) as *const vmm_gpt_entry_t;
        // SAFETY: 8 readable bytes from p, inside `words`.
        let v = unsafe { load_misaligned(p) };
        assert_eq!(v, 0xeeff_0011_2233_4455);
        // SAFETY: as above; the masked bits are as asked, nothing written.
        assert_eq!(unsafe { reset_misaligned(c"f", p, 0xff, 0x55) }, 0x55);
    }

    #[test]
    #[should_panic(expected = "f: would rewrite two entries through misaligned ptep")]
    fn misaligned_resets_that_would_write_panic() {
        let words = [0u64; 2];
        let p = (words.as_ptr() as *const u8).wrapping_add(4) as *const vmm_gpt_entry_t;
        // SAFETY: 8 readable bytes from p, inside `words`.
        unsafe { reset_misaligned(c"f", p, 0xff, 0x1) };
    }
}
