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

use crate::kernel::{self, debug_verify};
use crate::level::{debug_assert_range, Idx, Level, GPA_SPACE_END, PAGEMASK, PTE_PER_TABLE};
use crate::node::{Directory, Gpt, L2Dir, L4Dir};

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

/// The entries of its leaf table that slot `s` of a `LEVEL2` table covers:
/// the pages from its start to its end, both rounded down to a page, as
/// the original's `vmm_gpt_node_entries_covered()` counts them (for a
/// page-aligned range, simply its pages).
fn pages(s: &Slot) -> u32 {
    (((s.end & PAGEMASK) - (s.start & PAGEMASK)) >> Level::L1.shift()) as u32
}

/// `vmm_gpt_populate_region()`: makes sure every table that maps
/// `[addr, addr + len)` exists, and counts the range's entries in its leaf
/// tables.
///
/// The consumer passes a page-aligned, non-empty range below 2^48 that
/// overlaps no populated region.  Beyond that contract this does what the
/// non-DEBUG original does (docs/checks.md has the table):
/// - an empty or wrapping range (`addr + len` past 2^64) creates the
///   tables that cover `addr`, down to its leaf table, and counts nothing;
/// - an unaligned range is asserted against in DEBUG builds; otherwise its
///   tables are those covering `[addr, addr + len)`, its count the pages
///   from `addr` to `addr + len`, both rounded down;
/// - populating over a populated range counts its entries again (the
///   count may pass 512; asserted against in DEBUG builds).
///
/// It panics in every build where the original would corrupt the tree or
/// crash: a range starting at or beyond 2^48 (the original records a table
/// for an aliased address) or running past it (the original panics), and
/// a leaf count that would wrap past 2^32.
///
/// # Safety
/// As for [`Gpt::root_mut`]: no concurrent populate, vacate or free.
pub unsafe fn populate(gpt: &Gpt, addr: u64, len: u64) {
    const FUNC: &CStr = c"vmm_gpt_populate_region";
    debug_assert_range(FUNC, addr, len);
    if addr >= GPA_SPACE_END {
        kernel::fail_range(
            FUNC,
            addr,
            len,
            c"starts beyond the 48-bit guest-physical space",
        );
    }
    let end = addr.wrapping_add(len);

    // SAFETY: the caller's promise.
    let root = unsafe { gpt.root_mut() };
    if end <= addr {
        // Empty or wrapping: the original creates the tables at `addr`
        // (one per level, as the first step of populating) and then counts
        // nothing, since no address is below the end.
        let l3 = root.child_or_create(Level::L4.index(addr));
        let l2 = l3.child_or_create(Level::L3.index(addr));
        l2.leaf_or_create(Level::L2.index(addr));
        kernel::no_tail_here();
        return;
    }
    if end > GPA_SPACE_END {
        kernel::fail_range(FUNC, addr, len, c"exceeds the 48-bit guest-physical space");
    }
    if let Some(s2) = one_leaf(addr, end) {
        // Performance: a range inside one leaf table (a device page, a
        // small region) goes straight down; the loops below would take the
        // same single slot at each level, with more bookkeeping.
        let l3 = root.child_or_create(Level::L4.index(addr));
        let l2 = l3.child_or_create(Level::L3.index(addr));
        populate_leaf(l2, &s2);
        kernel::no_tail_here();
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
/// its leaf table, creating the table if it is missing.  The original's
/// three `ASSERT`s on the count are DEBUG-build checks; a count that would
/// wrap its 32 bits panics in every build.
#[inline]
fn populate_leaf(l2: &mut L2Dir, s2: &Slot) {
    const FUNC: &CStr = c"vmm_gpt_populate_region";
    l2.leaf_or_create(s2.index);
    let covered = pages(s2);
    let refs = l2.leaf_refs(s2.index);
    debug_verify!(FUNC, covered != 0);
    if cfg!(vmm_gpt_debug) && refs as usize + covered as usize > PTE_PER_TABLE {
        kernel::fail_value(
            FUNC,
            c"leaf table reference count overflow at gpa",
            child_base(Level::L2, s2),
        );
    }
    let Some(refs) = refs.checked_add(covered) else {
        kernel::fail_value(
            FUNC,
            c"leaf table reference count wraps at gpa",
            child_base(Level::L2, s2),
        );
    };
    l2.set_leaf_refs(s2.index, refs);
}

/// A table of the tree, named by the indices that lead to it from the
/// root: the original's `vmm_gpt_node_t` of a `LEVEL3`, `LEVEL2` or leaf
/// table.  Vacating walks these in the original's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    L3(Idx),
    L2(Idx, Idx),
    L1(Idx, Idx, Idx),
}

impl Node {
    /// The first address the table maps (`vgn_gpa`).
    fn gpa(self) -> u64 {
        let at = |lvl: Level, i: Idx| (i.get() as u64) << lvl.shift();
        match self {
            Node::L3(i4) => at(Level::L4, i4),
            Node::L2(i4, i3) => at(Level::L4, i4) | at(Level::L3, i3),
            Node::L1(i4, i3, i2) => at(Level::L4, i4) | at(Level::L3, i3) | at(Level::L2, i2),
        }
    }

    /// The first address past what the table maps
    /// (`vmm_gpt_node_end()`).
    fn end(self) -> u64 {
        self.gpa()
            + match self {
                Node::L3(_) => Level::L4.entry_len(),
                Node::L2(..) => Level::L3.entry_len(),
                Node::L1(..) => Level::L2.entry_len(),
            }
    }
}

/// `vmm_gpt_node_next()` of a `LEVEL3` table: its next sibling in the root
/// (with `only_seq`, only the one right after it).
fn next_l3(root: &L4Dir, i4: Idx, only_seq: bool) -> Option<Node> {
    let n = Node::L3(i4);
    let next = root.next_child(i4).map(Node::L3);
    next.filter(|m| !only_seq || m.gpa() == n.end())
}

/// `vmm_gpt_node_next()` of a `LEVEL2` table: its next sibling or, after
/// the last, the first child of its parent's next sibling if that one
/// comes right after the parent (the original crosses parents only there).
fn next_l2(root: &L4Dir, i4: Idx, i3: Idx, only_seq: bool) -> Option<Node> {
    let n = Node::L2(i4, i3);
    let l3 = root.get(i4)?;
    let next = match l3.next_child(i3) {
        Some(j) => Some(Node::L2(i4, j)),
        None => match next_l3(root, i4, true) {
            Some(Node::L3(p)) => root
                .get(p)
                .and_then(|d| d.first_child())
                .map(|j| Node::L2(p, j)),
            _ => None,
        },
    };
    next.filter(|m| !only_seq || m.gpa() == n.end())
}

/// `vmm_gpt_node_next()` of a leaf table, as [`next_l2`] one level down.
fn next_l1(root: &L4Dir, i4: Idx, i3: Idx, i2: Idx, only_seq: bool) -> Option<Node> {
    let n = Node::L1(i4, i3, i2);
    let l2 = root.get(i4)?.get(i3)?;
    let next = match l2.next_leaf(i2) {
        Some(j) => Some(Node::L1(i4, i3, j)),
        None => match next_l2(root, i4, i3, true) {
            Some(Node::L2(p4, p3)) => root
                .get(p4)
                .and_then(|d| d.get(p3))
                .and_then(|d| d.first_leaf())
                .map(|j| Node::L1(p4, p3, j)),
            _ => None,
        },
    };
    next.filter(|m| !only_seq || m.gpa() == n.end())
}

/// `vmm_gpt_node_next(node, false)`.
fn next(root: &L4Dir, n: Node) -> Option<Node> {
    kernel::no_tail(match n {
        Node::L3(i4) => next_l3(root, i4, false),
        Node::L2(i4, i3) => next_l2(root, i4, i3, false),
        Node::L1(i4, i3, i2) => next_l1(root, i4, i3, i2, false),
    })
}

/// A present table's reference count: a leaf table's count, an interior
/// table's number of children.
fn refs(root: &L4Dir, n: Node) -> u32 {
    let count = match n {
        Node::L3(i4) => root.get(i4).map(|d| d.present()),
        Node::L2(i4, i3) => root.get(i4).and_then(|d| d.get(i3)).map(|d| d.present()),
        Node::L1(i4, i3, i2) => root
            .get(i4)
            .and_then(|d| d.get(i3))
            .map(|d| d.leaf_refs(i2)),
    };
    match count {
        Some(c) => c,
        None => kernel::fail_value(c"vmm_gpt_vacate_region", c"no table at gpa", n.gpa()),
    }
}

/// Unlinks and frees a present table whose count is zero
/// (`vmm_gpt_node_remove()`).
fn remove(root: &mut L4Dir, n: Node) {
    match n {
        Node::L3(i4) => root.remove_child(i4),
        Node::L2(i4, i3) => {
            if let Some(l3) = root.child(i4) {
                l3.remove_child(i3)
            }
        }
        Node::L1(i4, i3, i2) => {
            if let Some(l2) = root.child(i4).and_then(|d| d.child(i3)) {
                l2.remove_leaf(i2)
            }
        }
    }
}

/// `vmm_gpt_vacate_region()`: takes the entries of `[addr, addr + len)` out
/// of their leaf tables' counts and frees the tables left with a count of
/// zero, bottom-up.  The root table stays (it goes with the GPT).
///
/// The consumer vacates exactly a populated region, after unmapping its
/// pages.  For any other range this does what the non-DEBUG original does,
/// in its order: it starts at the tables that cover `addr` (at no level
/// below the first one missing there), and at each level goes from table
/// to next present table while their addresses are below the end,
/// crossing to another parent only where the parents are adjacent; it
/// takes each leaf table's covered entries (pages rounded down at both
/// ends) off its count, then frees every table it visits whose count is
/// zero.  An unaligned range is asserted against in DEBUG builds.  A count
/// that would go below zero panics in every build (the original's wraps
/// and the table is never freed).  Pages still mapped are not checked:
/// their table goes with them, as in the original.
///
/// # Safety
/// As for [`Gpt::root_mut`]: no concurrent populate, vacate or free.
pub unsafe fn vacate(gpt: &Gpt, addr: u64, len: u64) {
    const FUNC: &CStr = c"vmm_gpt_vacate_region";
    debug_assert_range(FUNC, addr, len);
    let end = addr.wrapping_add(len);
    if end <= addr {
        // Empty or wrapping: nothing is below the end, so the original's
        // loops take no step.
        return;
    }

    // SAFETY: the caller's promise.
    let root = unsafe { gpt.root_mut() };
    let (i4, i3, i2) = (
        Level::L4.index(addr),
        Level::L3.index(addr),
        Level::L2.index(addr),
    );
    if end <= GPA_SPACE_END && (addr ^ (end - 1)) >> Level::L3.shift() == 0 {
        // Performance: the range lies inside one LEVEL3 entry's 1 GiB
        // (every region the consumer maps up to 1 GiB aligned, every
        // device page): the traversal below reduces to one LEVEL2
        // directory, so it is done there directly.
        vacate_in_one_gib(root, addr, end, i4, i3, i2);
        kernel::no_tail_here();
        return;
    }
    let l3 = root.get(i4).map(|_| Node::L3(i4));
    let l2 = root
        .get(i4)
        .and_then(|d| d.get(i3))
        .map(|_| Node::L2(i4, i3));
    let l1 = root
        .get(i4)
        .and_then(|d| d.get(i3))
        .filter(|d| d.has_leaf(i2))
        .map(|_| Node::L1(i4, i3, i2));

    // Take the covered entries off the leaf tables' counts.
    let mut node = l1;
    let mut gpa = addr;
    while gpa < end {
        let Some(n) = node else { break };
        let Node::L1(j4, j3, j2) = n else { break };
        let Some(dir) = root.child(j4).and_then(|d| d.child(j3)) else {
            break;
        };
        take_covered(dir, (j4, j3, j2), addr, end);
        node = next(root, n);
        if let Some(m) = node {
            gpa = m.gpa();
        }
    }

    // Free the tables left without references, leaves first.
    for start in [l1, l2, l3] {
        let mut node = start;
        let mut gpa = addr;
        while gpa < end {
            let Some(n) = node else { break };
            let after = next(root, n);
            if refs(root, n) == 0 {
                remove(root, n);
            }
            if let Some(m) = after {
                gpa = m.gpa();
            }
            node = after;
        }
    }
}

/// [`vacate`] of a non-empty range below 2^48 inside the 1 GiB of LEVEL3
/// entry `i3` of LEVEL4 entry `i4`, leaf index `i2` at its start: exactly
/// the original's traversal, which cannot leave that 1 GiB here (every
/// table past it maps addresses at or above the end).  Its leaf tables are
/// visited from the one at `addr` (none if that one is missing) in order
/// while they start below the end: their covered entries are taken off,
/// then the ones left at zero freed; then the LEVEL2 table and the LEVEL3
/// table at `addr` are freed if they are left without children.
fn vacate_in_one_gib(root: &mut L4Dir, addr: u64, end: u64, i4: Idx, i3: Idx, i2: Idx) {
    let Some(l3) = root.child(i4) else { return };
    if let Some(l2) = l3.child(i3) {
        let leaf = |j: Idx| Node::L1(i4, i3, j);
        if l2.has_leaf(i2) {
            let mut at = Some(i2);
            // (A leaf table reaching the end has no successor below it:
            // the search for the next present one is skipped.)
            let next = |l2: &L2Dir, j: Idx| {
                if leaf(j).end() >= end {
                    None
                } else {
                    l2.next_leaf(j)
                }
            };
            while let Some(j) = at.filter(|&j| leaf(j).gpa() < end) {
                take_covered(l2, (i4, i3, j), addr, end);
                at = next(l2, j);
            }
            let mut at = Some(i2);
            while let Some(j) = at.filter(|&j| leaf(j).gpa() < end) {
                at = next(l2, j);
                if l2.leaf_refs(j) == 0 {
                    l2.remove_leaf(j);
                }
            }
        }
        if l2.present() == 0 {
            l3.remove_child(i3);
        }
    }
    if l3.present() == 0 {
        root.remove_child(i4);
    }
}

/// Vacate: takes the entries of `[addr, end)` that leaf table `j` of `l2`
/// (the `LEVEL2` directory at `i4`, `i3`) covers off its count.  A count that would go below zero panics in every
/// build: the original's `uint32_t` wraps, and the table is never freed.
fn take_covered(l2: &mut L2Dir, (i4, i3, j): (Idx, Idx, Idx), addr: u64, end: u64) {
    let leaf = Node::L1(i4, i3, j);
    let covered = entries_covered(leaf, addr, end);
    let count = l2.leaf_refs(j);
    if count < covered {
        kernel::fail_value(
            c"vmm_gpt_vacate_region",
            c"leaf table reference count underflow at gpa",
            leaf.gpa(),
        );
    }
    l2.set_leaf_refs(j, count - covered);
}

/// `vmm_gpt_node_entries_covered()` of a leaf table: how many of its
/// entries `[start, end)` covers, counting from `start` rounded down to a
/// page to `end` rounded down to a page.
fn entries_covered(n: Node, start: u64, end: u64) -> u32 {
    let (base, node_end) = (n.gpa(), n.end());
    if start >= node_end || end <= base {
        return 0;
    }
    let covered_start = base.max(start & PAGEMASK);
    let covered_end = node_end.min(end & PAGEMASK);
    // The original computes this in uint64_t and returns a uint16_t; the
    // difference cannot be negative here (start < end, and both ends lie
    // on or inside the table's bounds).
    (covered_end.wrapping_sub(covered_start) >> Level::L1.shift()) as u16 as u32
}
