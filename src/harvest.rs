//! Dirty-page harvest: `vmm_gpt_harvest_dirty()`, an extension of the
//! original's interface (the cargo feature `harvest-dirty`; see
//! [`crate::ffi_ext`] and `include/sys/vmm_gpt_ext.h`).
//!
//! Live migration reads and clears the dirty bits of a guest-physical range
//! through `vmspace_bits_operate()` in `vmm_vm.c`, which iterates over the
//! range and, page by page, calls `vmm_gpte_query_dirty()` (`VBO_GET_DIRTY`)
//! or `vmm_gpte_reset_dirty(ptep, false)` (`VBO_RESET_DIRTY`) and updates
//! one bit of a caller's bitmap: bit `i % 8` of byte `i / 8` for the page
//! at `gpa + i * PAGESIZE`.  With `VBO_FLAG_BITMAP_IN` it skips the pages
//! whose bit is clear on input; with `VBO_FLAG_BITMAP_OUT` it writes each
//! page's result into its bit.  That is two calls, a bitmap read and write
//! per page.  The harvest does the same in one call: it takes the leaf
//! entries in runs of one table ([`walk::for_each_leaf_run`], the
//! iterator's positions exactly), eight pages to a bitmap byte, with a load
//! per clean entry and one locked read-modify-write per dirty entry being
//! reset.
//!
//! The result is exactly that loop's, including where the loop is odd:
//! - pages in missing leaf tables are never visited: their bits stay as
//!   they were (the iterator skips the tables; the loop's `ptep == NULL`
//!   branch is never taken);
//! - a start at or above 2^48 aliases as the walk does, and a range that
//!   wraps past 2^64 yields nothing in non-DEBUG builds (the iterator's
//!   parity rule, docs/checks.md) and panics in DEBUG ones;
//! - only the bits of visited pages are written, byte by byte: a bitmap of
//!   `ceil(pages / 8)` bytes is never read or written past its end;
//! - the count returned is the pages found dirty, i.e. the pages whose
//!   output bit is (or would be) set.
//!
//! Where the loop would corrupt memory, every build panics instead: a
//! bitmap flag with a NULL bitmap, and a start that is not page-aligned
//! with a bitmap flag (the iterator's first page then lies below the start
//! and the loop's bitmap index wraps to 2^49 bytes past the bitmap).
//!
//! Concurrency and ordering, as the loop: the harvest runs under the VM's
//! read lock beside the hardware, faults (`map_at`), `vmp_release()`
//! setting dirty bits, and other harvests.  A clean entry is only read (an
//! acquire load; the loop's query is a plain load and its reset of a clean
//! entry linearizes as a load too, see `pte::reset_bits`); a dirty entry
//! being reset is cleared with one locked read-modify-write, a full
//! barrier as the original's `atomic_cas_64` is, and the bit reported is
//! the one that read-modify-write took, so two harvests never both report
//! a page and no set is lost.  It allocates nothing and never blocks.

use core::ffi::CStr;
use core::sync::atomic::Ordering;

use crate::abi::{uint_t, vmm_gpt_entry_t};
use crate::hotpatch;
use crate::kernel;
use crate::level::{debug_assert_range, Level};
use crate::node::Gpt;
use crate::pte;
use crate::walk;

/// The flags (`VMM_GPT_HARVEST_*`, [`crate::ffi_ext`]): clear the dirty
/// bits found (`VBO_RESET_DIRTY`; without it, only read them,
/// `VBO_GET_DIRTY`); visit only the pages whose bit is set
/// (`VBO_FLAG_BITMAP_IN`); write each visited page's result into its bit
/// (`VBO_FLAG_BITMAP_OUT`).
pub use crate::ffi_ext::{
    VMM_GPT_HARVEST_BITMAP_IN as BITMAP_IN, VMM_GPT_HARVEST_BITMAP_OUT as BITMAP_OUT,
    VMM_GPT_HARVEST_RESET as RESET,
};
/// Every flag.
pub const ALL: uint_t = RESET | BITMAP_IN | BITMAP_OUT;

const FUNC: &CStr = c"vmm_gpt_harvest_dirty";

/// What one harvest does, fixed for the call.
#[derive(Clone, Copy)]
struct Harvest {
    /// The format's dirty bit (0 for a format without one: nothing is ever
    /// dirty, as the original's query and reset see it).
    dirty: u64,
    reset: bool,
    bitmap_in: bool,
    bitmap_out: bool,
}

impl Harvest {
    /// Reads (and with `reset` clears) the dirty bit of one entry; returns
    /// whether it was set.
    #[inline(always)]
    fn take(self, ep: *mut vmm_gpt_entry_t) -> bool {
        // SAFETY: `ep` is an entry of a live leaf table (the iterator's
        // positions); every access to it is atomic.
        let e = unsafe { pte::from_ptr(ep) };
        let value = pte::load(e);
        if value & self.dirty == 0 {
            return false;
        }
        if !self.reset {
            return true;
        }
        // One locked read-modify-write; report the bit it took (another
        // harvest may have taken it since the load).
        e.fetch_and(!self.dirty, Ordering::SeqCst) & self.dirty != 0
    }

    /// Eight consecutive entries from `first`, the pages of one whole
    /// bitmap byte: bit `i` of the result is whether page `i` was dirty.
    /// The common case, a clean byte, is eight loads and one test; only a
    /// byte with a dirty page takes its pages one by one.
    ///
    /// Performance: this is what makes a clean harvest a plain scan of the
    /// table (benches/README.md: about 4 instructions a page, against 15
    /// for a page at a time and 113 for the loop over the original).
    #[inline(always)]
    fn eight(self, first: *mut vmm_gpt_entry_t) -> u8 {
        let mut any = 0u64;
        for i in 0..8 {
            // SAFETY: entry i of the 8 the caller hands out, inside one
            // leaf table; accessed atomically.
            any |= pte::load(unsafe { pte::from_ptr(first.add(i)) });
        }
        if any & self.dirty == 0 {
            // Eight clean entries: each load linearizes its page's read,
            // as the loop's query or clear-of-clear reset does.
            return 0;
        }
        let mut found = 0u8;
        for i in 0..8 {
            // SAFETY: as above.
            found |= u8::from(self.take(unsafe { first.add(i) })) << i;
        }
        found
    }

    /// The pages of one bitmap byte that the run covers only in part, or
    /// that `BITMAP_IN` filters: `take` entries from `first`, at bits `lo`
    /// to `lo + take - 1` (`covered`) of the byte at `byte`.  Visits the
    /// covered pages (with `BITMAP_IN`, those whose bit is set), writes
    /// their bits with `BITMAP_OUT` (leaving the byte's other bits), and
    /// returns the bits found dirty.
    #[inline(always)]
    fn partial(
        self,
        first: *mut vmm_gpt_entry_t,
        lo: u32,
        take: u32,
        covered: u8,
        byte: *mut u8,
    ) -> u8 {
        let mut found = 0u8;
        let visit = if self.bitmap_in {
            // SAFETY: the caller checked `byte` is inside the bitmap,
            // which the C contract makes readable.
            let visit = covered & unsafe { byte.read() };
            let mut bits = visit;
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                // SAFETY: bit `bit` of `covered` is page `bit - lo` of the
                // caller's `take` entries, inside their leaf table.
                if self.take(unsafe { first.add((bit - lo) as usize) }) {
                    found |= 1 << bit;
                }
            }
            visit
        } else {
            for i in 0..take {
                // SAFETY: entry i of the caller's `take`.
                if self.take(unsafe { first.add(i as usize) }) {
                    found |= 1 << (lo + i);
                }
            }
            covered
        };
        if self.bitmap_out {
            // SAFETY: as the read above; the C contract makes the bitmap
            // writable when BITMAP_OUT is asked for.
            unsafe { byte.write((byte.read() & !visit) | found) };
        }
        found
    }
}

/// `vmm_gpt_harvest_dirty()`: the loop of `vmspace_bits_operate()` for
/// `VBO_GET_DIRTY` / `VBO_RESET_DIRTY` over `[addr, addr + len)`, in one
/// call; returns how many pages it found dirty.
///
/// # Safety
/// With `BITMAP_IN` / `BITMAP_OUT`, `bitmap` must be readable / writable
/// for the bytes of the pages visited (`ceil(len / PAGESIZE / 8)` bytes
/// suffice), and nobody else may write those bytes during the call.
pub unsafe fn harvest_dirty(
    gpt: &Gpt,
    addr: u64,
    len: u64,
    bitmap: *mut u8,
    flags: uint_t,
) -> usize {
    if flags & !ALL != 0 {
        kernel::fail_named(FUNC, c"flags", u64::from(flags), c"has unknown bits");
    }
    // The iterator's checks, under this function's name.
    debug_assert_range(FUNC, addr, len);
    if cfg!(vmm_gpt_debug) && addr.wrapping_add(len) < addr {
        kernel::fail_range(FUNC, addr, len, c"wraps");
    }
    let h = Harvest {
        dirty: hotpatch::installed().vpi_bit_dirty,
        reset: flags & RESET != 0,
        bitmap_in: flags & BITMAP_IN != 0,
        bitmap_out: flags & BITMAP_OUT != 0,
    };
    let uses_bitmap = h.bitmap_in || h.bitmap_out;
    let mut count = 0usize;
    walk::for_each_leaf_run(gpt, addr, len, |gpa, first, n| {
        if !uses_bitmap {
            for i in 0..n {
                // SAFETY: page i of the run, inside its leaf table.
                count += usize::from(h.take(unsafe { first.add(i) }));
            }
            return;
        }
        if bitmap.is_null() {
            kernel::fail(FUNC, c"bitmap is NULL with a bitmap flag");
        }
        if gpa < addr {
            // Only the first page of an unaligned start: the loop's
            // index, (gpa - addr) / PAGESIZE / 8, would wrap.
            kernel::fail_named(
                FUNC,
                c"addr",
                addr,
                c"is not page-aligned: the bitmap index of its first page wraps",
            );
        }
        // The run's pages have consecutive bits from `bit`.
        let mut bit = (gpa - addr) >> Level::L1.shift();
        let mut done = 0usize;
        while done < n {
            let lo = (bit % 8) as u32;
            if lo == 0 && !h.bitmap_in {
                // Whole bytes, eight pages each, every bit written (with
                // no BITMAP_IN, BITMAP_OUT is set and each bit is its
                // page's value).
                while n - done >= 8 {
                    // SAFETY: pages done..done + 8 of the run, inside its
                    // leaf table.
                    let found = h.eight(unsafe { first.add(done) });
                    // SAFETY: byte bit / 8 of the bitmap, which holds the
                    // bits of the range's pages (gpa + i * PAGESIZE < addr
                    // + len, so bit < ceil(len / PAGESIZE)); writable with
                    // BITMAP_OUT (the C contract).
                    unsafe { bitmap.add((bit / 8) as usize).write(found) };
                    if found != 0 {
                        count += found.count_ones() as usize;
                    }
                    done += 8;
                    bit += 8;
                }
                if done == n {
                    break;
                }
            }
            let take = core::cmp::min(8 - lo, (n - done) as u32);
            let covered = (((1u16 << take) - 1) as u8) << lo;
            // SAFETY: byte bit / 8 of the bitmap, as above.
            let byte = unsafe { bitmap.add((bit / 8) as usize) };
            // SAFETY: page `done` of the run, inside its leaf table.
            let found = h.partial(unsafe { first.add(done) }, lo, take, covered, byte);
            if found != 0 {
                count += found.count_ones() as usize;
            }
            done += take as usize;
            bit += u64::from(take);
        }
    });
    kernel::no_tail(count)
}
