//! Regions: populating and vacating ranges of guest-physical space.
//!
//! `vmspace_map()` populates each new mapping's range before any page of it
//! is mapped: every table the range needs is created, and each leaf table
//! counts the entries of the range it holds.  `vmspace_unmap()` unmaps the
//! pages and then vacates exactly that range: the counts go back down, and
//! tables whose count reaches zero are freed, bottom-up.  Two regions may
//! share a leaf table (each counts its own entries), so a table stays while
//! any region still covers part of it.
//!
//! Both walk the directories top-down, touching only the slots that the
//! range covers, in three nested loops (the depth is fixed; there is no
//! recursion).

use core::ffi::CStr;

use crate::kernel;
use crate::level::{page_aligned, Idx, Level, GPA_SPACE_END, PAGEOFFSET, PTE_PER_TABLE};
use crate::node::{Directory, Gpt, L2Dir};
use crate::pte;

/// One slot of a table that a range touches: its index and the part of the
/// range inside it, `[start, end)`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    index: Idx,
    start: u64,
    end: u64,
}

/// The slots of a table at `level`, whose first entry maps `base`, that the
/// non-empty range `[start, end)` (inside the table's span) touches, in
/// address order.
fn slots(level: Level, base: u64, start: u64, end: u64) -> impl Iterator<Item = Slot> {
    let len = level.entry_len();
    let first = level.index(start);
    let last = level.index(end - 1);
    Idx::range(first, last).map(move |index| {
        let slot_base = base + index.get() as u64 * len;
        Slot {
            index,
            start: start.max(slot_base),
            end: end.min(slot_base + len),
        }
    })
}

/// The first address the table in slot `s` of a table at `level` maps.
fn child_base(level: Level, s: &Slot) -> u64 {
    s.start & level.mask()
}

/// Leaf entries a slot of a `LEVEL2` table covers (both ends page-aligned).
fn pages(s: &Slot) -> u32 {
    ((s.end - s.start) >> Level::L1.shift()) as u32
}

/// Checks a range passed to a GPT function: page-aligned and not wrapping
/// past the top of the 64-bit space.  Returns its end.
pub fn check_range(func: &CStr, addr: u64, len: u64) -> u64 {
    if !page_aligned(addr) {
        kernel::fail_named(func, c"addr", addr, c"is not page-aligned");
    }
    if !page_aligned(len) {
        kernel::fail_named(func, c"len", len, c"is not page-aligned");
    }
    match addr.checked_add(len) {
        Some(end) => end,
        None => kernel::fail_range(func, addr, len, c"wraps"),
    }
}

/// `vmm_gpt_populate_region()`: makes sure every table that maps
/// `[addr, addr + len)` exists, and counts the range's entries in its leaf
/// tables.
///
/// The range must be page-aligned, inside the 48-bit guest-physical space,
/// and must not overlap a populated region so much that a leaf table would
/// count more than its 512 entries (the original asserts that in DEBUG
/// kernels only; here every build panics, since the count would otherwise
/// wrap and free a table still in use).  An empty range populates nothing.
///
/// # Safety
/// As for [`Gpt::root_mut`]: no concurrent populate, vacate or free.
pub unsafe fn populate(gpt: &Gpt, addr: u64, len: u64) {
    const FUNC: &CStr = c"vmm_gpt_populate_region";
    let end = check_range(FUNC, addr, len);
    if end > GPA_SPACE_END {
        kernel::fail_range(FUNC, addr, len, c"exceeds the 48-bit guest-physical space");
    }
    if len == 0 {
        return;
    }

    // SAFETY: the caller's promise.
    let root = unsafe { gpt.root_mut() };
    if let Some(s2) = one_leaf(addr, end) {
        // Performance: a range inside one leaf table (a device page, a
        // small region) goes straight down; the loops below would take the
        // same single slot at each level, with more bookkeeping.
        let l3 = root.child_or_create(Level::L4.index(addr));
        let l2 = l3.child_or_create(Level::L3.index(addr));
        populate_leaf(l2, &s2);
        return;
    }
    for s4 in slots(Level::L4, 0, addr, end) {
        let l3 = root.child_or_create(s4.index);
        let base3 = child_base(Level::L4, &s4);
        for s3 in slots(Level::L3, base3, s4.start, s4.end) {
            let l2 = l3.child_or_create(s3.index);
            let base2 = child_base(Level::L3, &s3);
            for s2 in slots(Level::L2, base2, s3.start, s3.end) {
                populate_leaf(l2, &s2);
            }
        }
    }
}

/// The `LEVEL2` slot of the non-empty range `[addr, end)` if the range lies
/// inside one leaf table (the slot the loops would find at each level).
#[inline]
fn one_leaf(addr: u64, end: u64) -> Option<Slot> {
    ((addr ^ (end - 1)) >> Level::L2.shift() == 0).then_some(Slot {
        index: Level::L2.index(addr),
        start: addr,
        end,
    })
}

/// Populate: counts the entries of slot `s2` of a `LEVEL2` directory in
/// its leaf table, creating the table if it is missing.
#[inline]
fn populate_leaf(l2: &mut L2Dir, s2: &Slot) {
    l2.leaf_or_create(s2.index);
    let refs = l2.leaf_refs(s2.index) + pages(s2);
    if refs as usize > PTE_PER_TABLE {
        kernel::fail_value(
            c"vmm_gpt_populate_region",
            c"leaf table reference count overflow at gpa",
            child_base(Level::L2, s2),
        );
    }
    l2.set_leaf_refs(s2.index, refs);
}

/// Vacate: takes the entries of slot `s2` of a `LEVEL2` directory out of
/// its leaf table's count, and frees the table when that reaches zero.  A
/// missing table is skipped.
#[inline]
fn vacate_leaf(l2: &mut L2Dir, s2: &Slot) {
    if !l2.has_leaf(s2.index) {
        return;
    }
    if cfg!(debug_assertions) {
        check_unmapped(l2.leaf(s2.index), s2);
    }
    let covered = pages(s2);
    let refs = l2.leaf_refs(s2.index);
    if refs < covered {
        kernel::fail_value(
            c"vmm_gpt_vacate_region",
            c"leaf table reference count underflow at gpa",
            child_base(Level::L2, s2),
        );
    }
    l2.set_leaf_refs(s2.index, refs - covered);
    if refs == covered {
        l2.remove_leaf(s2.index);
    }
}

/// `vmm_gpt_vacate_region()`: takes the entries of `[addr, addr + len)` out
/// of their leaf tables' counts and frees every table left with a count of
/// zero, bottom-up.  The root table stays (it goes with the GPT).
///
/// The range must be page-aligned and map no pages.  It should be exactly a
/// populated region (that is how `vmspace_unmap()` calls it); taking out
/// more entries than a leaf table counts panics in every build (the count
/// would wrap), and tables missing inside the range are skipped.  The range
/// may run past the 48-bit space (nothing is populated there).
///
/// # Safety
/// As for [`Gpt::root_mut`]: no concurrent populate, vacate or free.
pub unsafe fn vacate(gpt: &Gpt, addr: u64, len: u64) {
    const FUNC: &CStr = c"vmm_gpt_vacate_region";
    let end = check_range(FUNC, addr, len).min(GPA_SPACE_END);
    if addr >= end {
        return;
    }

    // SAFETY: the caller's promise.
    let root = unsafe { gpt.root_mut() };
    if let Some(s2) = one_leaf(addr, end) {
        // Performance: as in populate(), a range inside one leaf table goes
        // straight down, doing what the loops below would do for it.
        let (i4, i3) = (Level::L4.index(addr), Level::L3.index(addr));
        if let Some(l3) = root.child(i4) {
            if let Some(l2) = l3.child(i3) {
                vacate_leaf(l2, &s2);
                if l2.present() == 0 {
                    l3.remove_child(i3);
                }
            }
            if l3.present() == 0 {
                root.remove_child(i4);
            }
        }
        return;
    }
    for s4 in slots(Level::L4, 0, addr, end) {
        let Some(l3) = root.child(s4.index) else {
            continue;
        };
        let base3 = child_base(Level::L4, &s4);
        for s3 in slots(Level::L3, base3, s4.start, s4.end) {
            let Some(l2) = l3.child(s3.index) else {
                continue;
            };
            let base2 = child_base(Level::L3, &s3);
            for s2 in slots(Level::L2, base2, s3.start, s3.end) {
                vacate_leaf(l2, &s2);
            }
            if l2.present() == 0 {
                l3.remove_child(s3.index);
            }
        }
        if l3.present() == 0 {
            root.remove_child(s4.index);
        }
    }
}

/// Debug builds (an `ASSERT` in spirit: the original trusts its caller):
/// the entries a vacated slot covers must map nothing.
fn check_unmapped(leaf: Option<&crate::node::Table>, s: &Slot) {
    let Some(leaf) = leaf else { return };
    let mut gpa = s.start;
    while gpa < s.end {
        let e = pte::load(&leaf.entries[Level::L1.index(gpa)]);
        if pte::is_present(e) {
            kernel::fail_value(c"vmm_gpt_vacate_region", c"the region still maps gpa", gpa);
        }
        gpa += PAGEOFFSET + 1;
    }
}
