//! Walking and iteration: following the hardware tables themselves.
//!
//! A walk starts at the root table and, level by level, takes the entry
//! covering a GPA and follows it (through the format's `parse` and
//! `hat_kpm_pfn2va`) to the next table.  It uses only the tables the
//! hardware uses, so it is fast and lock-free, and it may alias entries
//! that other CPUs change meanwhile (caveat emptor, as the original says).
//!
//! The iterator visits the leaf entries of a range in address order: it
//! walks to the first, then advances entry by entry, climbing to a higher
//! level at the end of a table or where a table is missing, and descending
//! again, so it skips every missing table in one step.

use core::ffi::CStr;
use core::ptr;

use crate::abi::{vmm_gpt_entry_t, vmm_gpt_iter_entry_t, vmm_gpt_iter_t, MAX_GPT_LEVEL};
use crate::kernel::{self, debug_verify};
use crate::level::{debug_assert_range, ptep_index, Level, LEVELS, MAX_NODE_IDX, PTE_PER_TABLE};
use crate::node::{Gpt, Table};
use crate::pte;

/// The entry pointers of a walk, one per level (`entries[MAX_GPT_LEVEL]`).
pub type Entries = [*mut vmm_gpt_entry_t; MAX_GPT_LEVEL];

/// The kernel address of the table an entry links, if it links one.
#[inline]
fn next_table(pte_val: u64) -> *mut vmm_gpt_entry_t {
    match pte::parse_pfn(pte_val) {
        // SAFETY: hat_kpm_pfn2va only computes the kernel mapping of a PFN.
        Some(pfn) => unsafe { kernel::hat_kpm_pfn2va(pfn) as *mut vmm_gpt_entry_t },
        None => ptr::null_mut(),
    }
}

/// Checks a raw depth from C.
#[inline]
pub fn check_depth(func: &CStr, depth: u32) -> Level {
    match Level::from_raw(depth) {
        Some(l) => l,
        None => kernel::fail_named(func, c"depth", u64::from(depth), c"is beyond LEVEL1"),
    }
}

/// `vmm_gpt_walk()`: fills `entries[LEVEL4..=depth]` with the entries that
/// cover `gpa`, NULL below a missing table, and returns `gpa` masked to the
/// deepest level whose entry was found.  Nothing past `depth` is written:
/// `entries` may be just `depth + 1` long, as the C contract allows.
pub fn walk(gpt: &Gpt, gpa: u64, entries: &mut [*mut vmm_gpt_entry_t], depth: Level) -> u64 {
    // Performance: one length check up front, then a loop over the slots
    // zipped with the levels, which the compiler unrolls with each level's
    // shift a constant (it was a loop over the levels with a checked index
    // per level).
    let Some(entries) = entries.get_mut(..=depth.idx()) else {
        kernel::fail(c"vmm_gpt_walk", c"entries array shorter than depth")
    };
    let mut table = gpt.root_table() as *const Table as *mut vmm_gpt_entry_t;
    let mut mask = 0;
    for (slot, lvl) in entries.iter_mut().zip(LEVELS) {
        if table.is_null() {
            *slot = ptr::null_mut();
            continue;
        }
        // SAFETY: `table` is a live table page (the root, or one a present
        // entry links), and the index is below 512.
        let ep = unsafe { table.add(lvl.index(gpa).get()) };
        *slot = ep;
        mask = lvl.mask();
        if lvl == depth {
            // What the last entry links is not needed.
            break;
        }
        // SAFETY: `ep` points at an entry of a live table.
        table = next_table(pte::load(unsafe { pte::from_ptr(ep) }));
    }
    gpa & mask
}

/// Advances a walk at `depth` to the next entry (`vmm_gpt_walk_advance()`):
/// the next entry at the deepest level that has one, climbing up at the end
/// of a table, then back down as far as tables exist.  Returns the GPA of
/// the new position (`u64::MAX` past the end of the tree); levels below a
/// missing table get NULL.
pub(crate) fn walk_advance(gpa: u64, entries: &mut Entries, depth: Level) -> u64 {
    const FUNC: &CStr = c"vmm_gpt_walk_advance";
    debug_verify!(FUNC, gpa & !depth.mask() == 0);

    // Step forward at the deepest level that can.
    let mut at = None;
    let mut gpa = gpa;
    let mut lvl = Some(depth);
    while let Some(l) = lvl {
        let ep = entries[l.idx()];
        if !ep.is_null() {
            let index = ptep_index(ep);
            debug_verify!(FUNC, l.index(gpa) == index);
            if index.get() != MAX_NODE_IDX {
                gpa = (gpa & l.mask()).wrapping_add(l.entry_len());
                // SAFETY: the next entry of the same table (index < 511).
                entries[l.idx()] = unsafe { ep.add(1) };
                at = Some(l);
                break;
            }
        }
        lvl = l.up();
    }
    let Some(at) = at else {
        // Advanced off the end of the tables.
        return u64::MAX;
    };

    // Descend again from there.
    // SAFETY: entries[at] was just set to an entry of a live table.
    let mut pte_val = pte::load(unsafe { pte::from_ptr(entries[at.idx()]) });
    let mut lvl = at.down();
    while let Some(l) = lvl {
        let table = if l > depth {
            ptr::null_mut()
        } else {
            next_table(pte_val)
        };
        if table.is_null() {
            entries[l.idx()] = ptr::null_mut();
        } else {
            // SAFETY: a table a present entry links, index below 512.
            let ep = unsafe { table.add(l.index(gpa).get()) };
            entries[l.idx()] = ep;
            // SAFETY: `ep` points at an entry of a live table.
            pte_val = pte::load(unsafe { pte::from_ptr(ep) });
        }
        lvl = l.down();
    }
    gpa
}

/// `vmm_gpt_iter_init()`: iteration over the leaf entries of
/// `[addr, addr + len)`.
///
/// The range should be page-aligned and not wrap past 2^64; the original
/// only asserts that, so DEBUG builds panic and other builds go on as
/// production illumos does: the end is `addr + len` wrapped, and since the
/// iteration starts at or just below `addr` it yields nothing for a
/// wrapping range (user space can pass one: `VM_TRACK_DIRTY_PAGES` does
/// not check, docs/consumer.md).  An unaligned start is rounded down by
/// the walk, as in the original.
pub fn iter_init(iter: &mut vmm_gpt_iter_t, gpt: &Gpt, addr: u64, len: u64) {
    const FUNC: &CStr = c"vmm_gpt_iter_init";
    debug_assert_range(FUNC, addr, len);
    let end = addr.wrapping_add(len);
    if cfg!(vmm_gpt_debug) && end < addr {
        kernel::fail_range(FUNC, addr, len, c"wraps");
    }
    iter.vgi_gpt = gpt.handle();
    iter.vgi_addr = addr;
    iter.vgi_end = end;
    iter.vgi_current = kernel::no_tail(walk(gpt, addr, &mut iter.vgi_entries, Level::L1));
}

/// `vmm_gpt_iter_next()`: the next leaf entry in the range whose table
/// exists (whether or not it maps a page), or false when there is none.
#[inline]
pub fn iter_next(iter: &mut vmm_gpt_iter_t, entry: *mut vmm_gpt_iter_entry_t) -> bool {
    // Performance: the common step, from a leaf entry to the next one in
    // the same leaf table, done here directly; it is exactly what
    // walk_advance() does for it (step at LEVEL1, nothing to descend),
    // without its climb-and-descend loop.  Iterations over populated
    // ranges take this path for 511 of every 512 entries.  It is inlined
    // into the C entry point and the rest is out of line, so that it
    // saves no registers and sets up no stack frame.
    let gpa = iter.vgi_current;
    let leaf = iter.vgi_entries[Level::L1.idx()];
    if gpa < iter.vgi_end && !leaf.is_null() && ptep_index(leaf).get() != MAX_NODE_IDX {
        debug_verify!(
            c"vmm_gpt_iter_next",
            Level::L1.index(gpa) == ptep_index(leaf)
        );
        emit(entry, gpa, leaf);
        // SAFETY: the next entry of the same leaf table (index < 511).
        iter.vgi_entries[Level::L1.idx()] = unsafe { leaf.add(1) };
        iter.vgi_current = (gpa & Level::L1.mask()).wrapping_add(Level::L1.entry_len());
        return true;
    }
    kernel::no_tail(iter_next_slow(iter, entry))
}

/// Hands out an entry of the iteration through the caller's `entry`, which
/// is checked here, where the original first writes it: an iteration that
/// yields nothing never touches it, in the original as here.
#[inline]
fn emit(entry: *mut vmm_gpt_iter_entry_t, gpa: u64, ptep: *mut vmm_gpt_entry_t) {
    if entry.is_null() {
        kernel::fail(c"vmm_gpt_iter_next", c"entry is NULL");
    }
    // SAFETY: non-NULL; the C contract makes the caller's entry writable
    // and ours for the call.
    unsafe {
        (*entry).vgie_gpa = gpa;
        (*entry).vgie_ptep = ptep;
    }
}

/// [`iter_next`] past the end of a leaf table, over missing tables, or at
/// the end of the range.
#[inline(never)]
fn iter_next_slow(iter: &mut vmm_gpt_iter_t, entry: *mut vmm_gpt_iter_entry_t) -> bool {
    while iter.vgi_current < iter.vgi_end {
        let leaf = iter.vgi_entries[Level::L1.idx()];
        let gpa = iter.vgi_current;
        iter.vgi_current = walk_advance(gpa, &mut iter.vgi_entries, Level::L1);
        if !leaf.is_null() {
            emit(entry, gpa, leaf);
            return true;
        }
    }
    false
}

/// The leaf entries of `[addr, addr + len)` that the iterator would yield,
/// in the same order, handed to `f` as runs of consecutive entries of one
/// leaf table: `f(gpa, first, n)` covers the `n` entries from `first` on,
/// at `gpa`, `gpa + PAGESIZE`, ...  The positions are the iterator's
/// exactly (its start rounded down by the walk, its climbs over missing
/// tables, its end at `addr + len` wrapped, which yields nothing for a
/// wrapping range, and at the last entry of the root table); only the step
/// from one entry to the next inside a table is done in bulk, by `f`.
/// The range checks are the caller's, under its own name.
#[inline]
pub fn for_each_leaf_run(
    gpt: &Gpt,
    addr: u64,
    len: u64,
    mut f: impl FnMut(u64, *mut vmm_gpt_entry_t, usize),
) {
    let end = addr.wrapping_add(len);
    let mut entries: Entries = [ptr::null_mut(); MAX_GPT_LEVEL];
    let mut gpa = walk(gpt, addr, &mut entries, Level::L1);
    while gpa < end {
        let leaf = entries[Level::L1.idx()];
        if leaf.is_null() {
            // No leaf table here: climb to the next one that exists.
            gpa = walk_advance(gpa, &mut entries, Level::L1);
            continue;
        }
        // With a leaf found, `gpa` is its page (the walk and the advance
        // leave it aligned to the level they stopped at).
        let room = PTE_PER_TABLE - ptep_index(leaf).get();
        let left = ((end - gpa - 1) >> Level::L1.shift()) + 1;
        let n = if left < room as u64 {
            left as usize
        } else {
            room
        };
        f(gpa, leaf, n);
        if n < room {
            // The range ends inside this table.
            break;
        }
        // The last entry of the table: step on from there as the iterator
        // does (it may climb off the end of the root: u64::MAX).
        let last = gpa + ((n as u64 - 1) << Level::L1.shift());
        // SAFETY: entry n - 1 after `leaf` is the table's last (index 511).
        entries[Level::L1.idx()] = unsafe { leaf.add(n - 1) };
        gpa = walk_advance(last, &mut entries, Level::L1);
    }
}

/// `vmm_gpt_unmap()`: clears the leaf entry of `gpa`; returns whether it
/// mapped a page.  False, changing nothing, where no leaf table exists.
pub fn unmap(gpt: &Gpt, gpa: u64) -> bool {
    let mut entries: Entries = [ptr::null_mut(); MAX_GPT_LEVEL];
    walk(gpt, gpa, &mut entries, Level::L1);
    let leaf = entries[Level::L1.idx()];
    if leaf.is_null() {
        return false;
    }
    // SAFETY: the walk found the entry in a live leaf table.
    let old = pte::take(unsafe { pte::from_ptr(leaf) });
    pte::is_present(old)
}

/// `vmm_gpt_unmap_region()`: clears every leaf entry of `[addr, addr +
/// len)`; returns how many mapped a page.
pub fn unmap_region(gpt: &Gpt, addr: u64, len: u64) -> usize {
    let mut iter = vmm_gpt_iter_t {
        vgi_gpt: ptr::null_mut(),
        vgi_addr: 0,
        vgi_end: 0,
        vgi_current: 0,
        vgi_entries: [ptr::null_mut(); MAX_GPT_LEVEL],
    };
    let mut entry = vmm_gpt_iter_entry_t {
        vgie_gpa: 0,
        vgie_ptep: ptr::null_mut(),
    };
    // The original's ASSERTs, under this function's name; the wrap is
    // vmm_gpt_iter_init's.
    debug_assert_range(c"vmm_gpt_unmap_region", addr, len);
    iter_init(&mut iter, gpt, addr, len);
    let mut unmapped = 0;
    while iter_next(&mut iter, &mut entry) {
        // SAFETY: the iterator yields entries of live leaf tables.
        let old = pte::take(unsafe { pte::from_ptr(entry.vgie_ptep) });
        if pte::is_present(old) {
            unmapped += 1;
        }
    }
    unmapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::vmm_gpt_iter_t;
    use crate::region;
    use std::vec::Vec;

    const K4: u64 = 4096;
    const M2: u64 = 2 << 20;
    const G1: u64 = 1 << 30;

    /// A GPT with the regions populated.
    fn gpt_with(regions: &[(u64, u64)]) -> *mut Gpt {
        let g = Gpt::alloc();
        for &(a, l) in regions {
            // SAFETY: a fresh GPT, the test its only user.
            unsafe { region::populate(&*g, a, l) };
        }
        g
    }

    fn gpt<'a>(g: *mut Gpt) -> &'a Gpt {
        // SAFETY: the tests pass GPTs from Gpt::alloc() that they free last.
        unsafe { &*g }
    }

    fn free(g: *mut Gpt) {
        // SAFETY: from Gpt::alloc(), not used again.
        unsafe { Gpt::free(g) }
    }

    /// Every (gpa, entry) the iterator yields for `[addr, addr + len)`.
    fn iterate(g: *mut Gpt, addr: u64, len: u64) -> Vec<(u64, usize)> {
        let mut iter = vmm_gpt_iter_t {
            vgi_gpt: ptr::null_mut(),
            vgi_addr: 0,
            vgi_end: 0,
            vgi_current: 0,
            vgi_entries: [ptr::null_mut(); MAX_GPT_LEVEL],
        };
        let mut e = vmm_gpt_iter_entry_t {
            vgie_gpa: 0,
            vgie_ptep: ptr::null_mut(),
        };
        iter_init(&mut iter, gpt(g), addr, len);
        let mut out = Vec::new();
        while iter_next(&mut iter, &mut e) {
            out.push((e.vgie_gpa, e.vgie_ptep as usize));
        }
        out
    }

    /// The entry of `gpa` in its leaf table, found through the directories.
    fn leaf_entry(g: *mut Gpt, gpa: u64) -> usize {
        let mut e: Entries = [ptr::null_mut(); MAX_GPT_LEVEL];
        walk(gpt(g), gpa, &mut e, Level::L1);
        e[3] as usize
    }

    #[test]
    fn walking_an_empty_gpt_finds_only_the_root_entry() {
        let g = gpt_with(&[]);
        let mut e: Entries = [ptr::null_mut(); MAX_GPT_LEVEL];
        let a = 3 * (512 * G1) + 5 * G1 + 7 * M2 + 9 * K4;
        assert_eq!(walk(gpt(g), a, &mut e, Level::L1), 3 * 512 * G1);
        let root = gpt(g).root_table() as *const Table as usize;
        assert_eq!(e[0] as usize, root + 3 * 8);
        assert!(e[1..].iter().all(|p| p.is_null()));
        free(g);
    }

    #[test]
    fn walks_reach_the_leaf_entry_of_a_populated_page() {
        let a = 3 * (512 * G1) + 5 * G1 + 7 * M2 + 9 * K4;
        let g = gpt_with(&[(a, K4)]);
        let mut e: Entries = [ptr::null_mut(); MAX_GPT_LEVEL];
        assert_eq!(walk(gpt(g), a + 0x123, &mut e, Level::L1), a);
        let idx: Vec<usize> = e.iter().map(|&p| ptep_index(p).get()).collect();
        assert_eq!(idx, [3, 5, 7, 9]);
        // Each table's entry links the next table (EPT test format).
        for l in 0..3 {
            // SAFETY: entries of live tables.
            let v = pte::load(unsafe { pte::from_ptr(e[l]) });
            assert_eq!(
                (v & 0x000f_ffff_ffff_f000) as usize,
                e[l + 1] as usize & !0xfff
            );
        }
        // Stopping at LEVEL2 writes nothing past it: a shorter array does.
        let mut short = [ptr::null_mut(); 3];
        assert_eq!(walk(gpt(g), a, &mut short, Level::L2), a & !(M2 - 1));
        assert_eq!(short, e[..3]);
        // Another leaf table: none there, the walk stops at LEVEL2.
        assert_eq!(
            walk(gpt(g), a + M2, &mut e, Level::L1),
            (a + M2) & !(M2 - 1)
        );
        assert!(e[3].is_null() && !e[2].is_null());
        free(g);
    }

    #[test]
    #[should_panic(expected = "vmm_gpt_walk: entries array shorter than depth")]
    fn a_walk_needs_room_for_its_depth() {
        let g = gpt_with(&[]);
        let mut short = [ptr::null_mut(); 2];
        walk(gpt(g), 0, &mut short, Level::L2);
    }

    #[test]
    fn the_iterator_yields_the_entries_of_existing_leaf_tables_in_order() {
        // Leaf tables at 0, at 1 GiB - 2 MiB and at 1 GiB (another LEVEL2
        // table), and at 600 GiB (another LEVEL3 table).
        let far = 600 * G1;
        let g = gpt_with(&[(K4, K4), (G1 - K4, 2 * K4), (far + 3 * K4, K4)]);
        let got = iterate(g, 0, 601 * G1);
        let mut want: Vec<u64> = Vec::new();
        for base in [0, G1 - M2, G1, far] {
            want.extend((0..512).map(|i| base + i * K4));
        }
        let gpas: Vec<u64> = got.iter().map(|&(a, _)| a).collect();
        assert_eq!(gpas, want);
        // The entries are the walk's.
        for &(a, p) in got.iter().step_by(97) {
            assert_eq!(p, leaf_entry(g, a), "{a:#x}");
        }
        // A range inside one table; one ending in a gap; an empty one.
        let part: Vec<u64> = iterate(g, G1 - 2 * K4, 4 * K4)
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(part, [G1 - 2 * K4, G1 - K4, G1, G1 + K4]);
        assert_eq!(iterate(g, M2, G1 - 2 * M2).len(), 0);
        assert_eq!(iterate(g, K4, 0).len(), 0);
        free(g);
    }

    #[test]
    fn leaf_runs_are_the_iterators_entries() {
        let g = gpt_with(&[(M2 - K4, 3 * K4), (5 * G1, M2 + K4)]);
        for (a, l) in [(0, 6 * G1), (M2 - 2 * K4, 2 * K4), (5 * G1 + K4, M2)] {
            let mut runs = Vec::new();
            for_each_leaf_run(gpt(g), a, l, |gpa, first, n| {
                for i in 0..n {
                    runs.push((gpa + i as u64 * K4, first as usize + 8 * i));
                }
            });
            assert_eq!(runs, iterate(g, a, l), "{a:#x} + {l:#x}");
        }
        free(g);
    }

    #[test]
    fn unmapping_counts_the_pages_that_were_mapped() {
        let g = gpt_with(&[(G1, 4 * K4)]);
        let entry = |a| {
            let p = leaf_entry(g, a) as *mut vmm_gpt_entry_t;
            // SAFETY: an entry of a live leaf table.
            unsafe { pte::from_ptr(p) }
        };
        assert!(pte::map_at(entry(G1), 0x1234, 3, 6));
        assert!(pte::map_at(entry(G1 + 2 * K4), 0x1235, 1, 0));
        // EPT test format: address, protection, memory type.
        assert_eq!(pte::load(entry(G1)), (0x1234 << 12) | 3 | 6 << 3);
        assert!(unmap(gpt(g), G1));
        assert!(!unmap(gpt(g), G1));
        assert!(!unmap(gpt(g), G1 + K4));
        // No leaf table there.
        assert!(!unmap(gpt(g), 0));
        assert!(pte::map_at(entry(G1 + 3 * K4), 0x1236, 7, 0));
        assert_eq!(unmap_region(gpt(g), G1, 4 * K4), 2);
        assert_eq!(unmap_region(gpt(g), G1, 4 * K4), 0);
        assert!((0..4).all(|i| pte::load(entry(G1 + i * K4)) == 0));
        free(g);
    }
}
