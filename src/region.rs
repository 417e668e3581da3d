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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::stand_in::{kmem, EPT_PA_MASK, EPT_RWX};
    use crate::level::LEVELS;
    use crate::node::Directory;
    use crate::pte;
    use crate::walk;
    use core::ptr;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    const K4: u64 = 4096;
    const M2: u64 = 2 << 20;
    const G1: u64 = 1 << 30;
    const G512: u64 = 512 * G1;
    const TOP: u64 = 1 << 48;

    /// The tables of a tree below its root, by the first address each
    /// maps: `LEVEL3` tables, `LEVEL2` tables, leaf tables with their
    /// counts.
    #[derive(Default, PartialEq, Eq)]
    struct Tables {
        l3: Vec<u64>,
        l2: Vec<u64>,
        leaves: Vec<(u64, u32)>,
    }

    /// Leaf tables in runs (adjacent, same count), so that a failed
    /// comparison of large trees stays readable.
    impl core::fmt::Debug for Tables {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "l3 {:x?} l2 {:x?} leaves [", self.l3, self.l2)?;
            let mut i = 0;
            while let Some(&(base, refs)) = self.leaves.get(i) {
                let mut n = 1;
                while self.leaves.get(i + n) == Some(&(base + n as u64 * M2, refs)) {
                    n += 1;
                }
                write!(f, " {base:#x} x{n} refs {refs};")?;
                i += n;
            }
            write!(f, " ]")
        }
    }

    impl Tables {
        fn pages(&self) -> usize {
            self.l3.len() + self.l2.len() + self.leaves.len()
        }
    }

    /// Does entry `e` link a live table page (EPT test format)?
    fn links_table(e: &pte::Pte) -> bool {
        let v = pte::load(e);
        v & EPT_RWX == EPT_RWX && kmem::is_live((v & EPT_PA_MASK) as usize)
    }

    /// Reads the tree from the directories, checking on the way that the
    /// hardware tables link exactly the directories' children and that a
    /// walk reaches every leaf table.
    fn tables(gpt: &Gpt) -> Tables {
        // SAFETY: the test is the GPT's only user.
        let root: &L4Dir = unsafe { gpt.root_mut() };
        let mut t = Tables::default();
        let at = |l: Level, i: Idx| (i.get() as u64) << l.shift();
        for i4 in Idx::all() {
            assert_eq!(links_table(root.page().entry(i4)), root.get(i4).is_some());
            let Some(l3) = root.get(i4) else { continue };
            let b3 = at(Level::L4, i4);
            t.l3.push(b3);
            for i3 in Idx::all() {
                assert_eq!(links_table(l3.page().entry(i3)), l3.get(i3).is_some());
                let Some(l2) = l3.get(i3) else { continue };
                let b2 = b3 | at(Level::L3, i3);
                t.l2.push(b2);
                for i2 in Idx::all() {
                    assert_eq!(links_table(l2.page().entry(i2)), l2.has_leaf(i2));
                    if l2.has_leaf(i2) {
                        let b1 = b2 | at(Level::L2, i2);
                        t.leaves.push((b1, l2.leaf_refs(i2)));
                        let mut e = [ptr::null_mut(); 4];
                        walk::walk(gpt, b1 + K4, &mut e, Level::L1);
                        assert!(e.iter().all(|p| !p.is_null()), "walk to {b1:#x}");
                    } else {
                        assert_eq!(l2.leaf_refs(i2), 0);
                    }
                }
                assert_eq!(
                    l2.present() as usize,
                    (0..512).filter(|&i| l2.has_leaf(Idx::wrap(i))).count()
                );
            }
            assert_eq!(
                l3.present() as usize,
                Idx::all().filter(|&i| l3.get(i).is_some()).count()
            );
        }
        assert_eq!(root.present() as usize, t.l3.len());
        t
    }

    /// The tables that populated, page-aligned, non-overlapping regions
    /// need, computed from the page sizes alone: each 2 MiB piece of a
    /// region counts its pages in the leaf table there.
    fn model(regions: &[(u64, u64)]) -> Tables {
        let mut leaves = BTreeMap::<u64, u32>::new();
        for &(addr, len) in regions {
            let end = addr + len;
            let mut base = addr / M2 * M2;
            while base < end {
                let pages = (end.min(base + M2) - addr.max(base)) / K4;
                *leaves.entry(base).or_default() += pages as u32;
                base += M2;
            }
        }
        let mut l2: Vec<u64> = leaves.keys().map(|b| b / G1 * G1).collect();
        l2.dedup();
        let mut l3: Vec<u64> = l2.iter().map(|b| b / G512 * G512).collect();
        l3.dedup();
        Tables {
            l3,
            l2,
            leaves: leaves.into_iter().collect(),
        }
    }

    /// A fresh GPT, and the kernel memory before it.
    fn new_gpt() -> (*mut Gpt, kmem::Usage) {
        let before = kmem::usage();
        (Gpt::alloc(), before)
    }

    fn gpt<'a>(g: *mut Gpt) -> &'a Gpt {
        // SAFETY: the tests pass GPTs from Gpt::alloc() that they free last.
        unsafe { &*g }
    }

    fn pop(g: *mut Gpt, addr: u64, len: u64) {
        // SAFETY: the test is the GPT's only user.
        unsafe { populate(gpt(g), addr, len) }
    }

    fn vac(g: *mut Gpt, addr: u64, len: u64) {
        // SAFETY: the test is the GPT's only user.
        unsafe { vacate(gpt(g), addr, len) }
    }

    /// Frees the GPT and checks that all its memory went back.
    fn free(g: *mut Gpt, before: kmem::Usage) {
        // SAFETY: from Gpt::alloc(), not used again.
        unsafe { Gpt::free(g) };
        assert_eq!(kmem::usage(), before);
    }

    /// Populates the regions, checks the tables against `want` and the
    /// model, vacates them in order (checking the model after each) and
    /// frees the GPT.
    fn round_trip(regions: &[(u64, u64)], want: &Tables) {
        let (g, before) = new_gpt();
        for &(a, l) in regions {
            pop(g, a, l);
        }
        let got = tables(gpt(g));
        assert_eq!(&got, want);
        assert_eq!(got, model(regions));
        assert_eq!(kmem::usage().pages, before.pages + 1 + want.pages());
        for n in 0..regions.len() {
            let (a, l) = regions[n];
            vac(g, a, l);
            let left = &regions[n + 1..];
            assert_eq!(
                tables(gpt(g)),
                model(left),
                "after vacating {a:#x} + {l:#x}"
            );
            assert_eq!(kmem::usage().pages, before.pages + 1 + model(left).pages());
        }
        // Only the root and the GPT are left.
        assert_eq!(kmem::usage().pages, before.pages + 1);
        free(g, before);
    }

    fn t(l3: &[u64], l2: &[u64], leaves: &[(u64, u32)]) -> Tables {
        Tables {
            l3: l3.to_vec(),
            l2: l2.to_vec(),
            leaves: leaves.to_vec(),
        }
    }

    #[test]
    fn one_page_at_zero() {
        round_trip(&[(0, K4)], &t(&[0], &[0], &[(0, 1)]));
    }

    #[test]
    fn the_last_page_of_the_48_bit_space() {
        round_trip(
            &[(TOP - K4, K4)],
            &t(&[TOP - G512], &[TOP - G1], &[(TOP - M2, 1)]),
        );
    }

    #[test]
    fn two_pages_across_a_2mib_edge() {
        round_trip(&[(M2 - K4, 2 * K4)], &t(&[0], &[0], &[(0, 1), (M2, 1)]));
    }

    #[test]
    fn exactly_one_leaf_table_and_one_page_more() {
        round_trip(&[(M2, M2)], &t(&[0], &[0], &[(M2, 512)]));
        round_trip(&[(M2, M2 + K4)], &t(&[0], &[0], &[(M2, 512), (2 * M2, 1)]));
        round_trip(&[(M2 - K4, M2)], &t(&[0], &[0], &[(0, 1), (M2, 511)]));
    }

    #[test]
    fn two_pages_across_a_1gib_edge() {
        round_trip(
            &[(G1 - K4, 2 * K4)],
            &t(&[0], &[0, G1], &[(G1 - M2, 1), (G1, 1)]),
        );
    }

    #[test]
    fn across_a_512gib_edge() {
        round_trip(
            &[(G512 - M2, 2 * M2)],
            &t(
                &[0, G512],
                &[G512 - G1, G512],
                &[(G512 - M2, 512), (G512, 512)],
            ),
        );
    }

    #[test]
    fn one_aligned_gib() {
        let leaves: Vec<(u64, u32)> = (0..512).map(|i| (5 * G1 + i * M2, 512)).collect();
        round_trip(&[(5 * G1, G1)], &t(&[0], &[5 * G1], &leaves));
    }

    #[test]
    fn a_range_over_three_directories() {
        let (a, end) = (G1 + M2, 3 * G1 + 2 * M2 + K4);
        // Full leaf tables from 1 GiB + 2 MiB to 3 GiB + 2 MiB, one page in
        // the next.
        let mut leaves: Vec<(u64, u32)> = (0..1025).map(|i| (a + i * M2, 512)).collect();
        leaves.push((3 * G1 + 2 * M2, 1));
        round_trip(&[(a, end - a)], &t(&[0], &[G1, 2 * G1, 3 * G1], &leaves));
    }

    #[test]
    fn up_to_the_top_of_the_space() {
        let a = TOP - G1 - M2;
        let leaves: Vec<(u64, u32)> = (0..513).map(|i| (a + i * M2, 512)).collect();
        round_trip(
            &[(a, TOP - a)],
            &t(&[TOP - G512], &[TOP - 2 * G1, TOP - G1], &leaves),
        );
    }

    #[test]
    fn regions_sharing_a_leaf_table_count_each_its_pages() {
        // Vacating the first leaves the table to the second.
        round_trip(&[(0, K4), (2 * K4, 3 * K4)], &t(&[0], &[0], &[(0, 4)]));
        // And the other way round.
        round_trip(&[(2 * K4, 3 * K4), (0, K4)], &t(&[0], &[0], &[(0, 4)]));
    }

    #[test]
    fn neighbours_keep_their_tables() {
        let regions = [(M2, M2), (0, M2), (2 * M2, K4), (G1 - K4, 2 * K4)];
        round_trip(
            &regions,
            &t(
                &[0],
                &[0, G1],
                &[(0, 512), (M2, 512), (2 * M2, 1), (G1 - M2, 1), (G1, 1)],
            ),
        );
    }

    #[test]
    fn vacating_across_a_1gib_edge_between_other_regions() {
        // The general (multi-GiB) path: one region across the edge, one
        // sharing its upper leaf table, one in another leaf table of the
        // lower LEVEL2 table.
        let (g, before) = new_gpt();
        pop(g, G1 - K4, 2 * K4);
        pop(g, G1 + 2 * K4, K4);
        pop(g, G1 - 2 * M2, K4);
        assert_eq!(
            tables(gpt(g)),
            t(&[0], &[0, G1], &[(G1 - 2 * M2, 1), (G1 - M2, 1), (G1, 2)])
        );
        vac(g, G1 - K4, 2 * K4);
        assert_eq!(
            tables(gpt(g)),
            t(&[0], &[0, G1], &[(G1 - 2 * M2, 1), (G1, 1)])
        );
        vac(g, G1 - 2 * M2, K4);
        assert_eq!(tables(gpt(g)), t(&[0], &[G1], &[(G1, 1)]));
        vac(g, G1 + 2 * K4, K4);
        assert_eq!(tables(gpt(g)), Tables::default());
        free(g, before);
    }

    #[test]
    fn vacate_starting_at_a_missing_leaf_table_takes_nothing() {
        // As the original: the walk starts at the tables covering the
        // start, so with no leaf table there no count is taken, within
        // one GiB (the short path) and across GiBs (the general one).
        for (region, range) in [
            ((M2, K4), (0, M2 + K4)),
            ((G1 + M2, K4), (0, G1 + M2 + K4)),
            ((G512 + M2, K4), (G512 - K4, G1)),
        ] {
            let (g, before) = new_gpt();
            pop(g, region.0, region.1);
            let want = model(&[region]);
            vac(g, range.0, range.1);
            assert_eq!(tables(gpt(g)), want, "vacate {range:x?}");
            free(g, before);
        }
    }

    #[test]
    fn vacate_crosses_only_to_adjacent_parents() {
        // As the original: from the last leaf table of one LEVEL2 table
        // the walk goes on to the next LEVEL2 table only if it maps the
        // addresses right after; across the gap at 1 GiB it stops, so the
        // leaf table at 2 GiB keeps its count although the range covers
        // it.  Its LEVEL2 table is visited (and kept: it has a child).
        let (g, before) = new_gpt();
        pop(g, G1 - K4, K4);
        pop(g, 2 * G1, K4);
        vac(g, G1 - K4, G1 + 2 * K4);
        assert_eq!(tables(gpt(g)), t(&[0], &[2 * G1], &[(2 * G1, 1)]));
        // With the parents adjacent it crosses (and takes the count).
        pop(g, 2 * G1 - K4, K4);
        vac(g, 2 * G1 - K4, 2 * K4);
        assert_eq!(tables(gpt(g)), Tables::default());
        free(g, before);
    }

    #[test]
    fn empty_and_wrapping_populates_create_the_tables_at_addr() {
        for (addr, len) in [(3 * G1 + M2, 0), (G512 + 5 * K4, G512.wrapping_neg())] {
            assert!(addr.wrapping_add(len) <= addr);
            let (g, before) = new_gpt();
            pop(g, addr, len);
            let want = t(
                &[addr / G512 * G512],
                &[addr / G1 * G1],
                &[(addr / M2 * M2, 0)],
            );
            assert_eq!(tables(gpt(g)), want);
            // An empty or wrapping vacate does nothing.
            vac(g, addr, len);
            vac(g, addr, 0);
            assert_eq!(tables(gpt(g)), want);
            // The table stays with a count of zero until the GPT goes.
            free(g, before);
        }
    }

    #[test]
    #[should_panic(
        expected = "vmm_gpt_populate_region: range 0x1000000000000 + 0x1000 starts beyond the 48-bit guest-physical space"
    )]
    fn populate_at_2_48_panics() {
        pop(Gpt::alloc(), TOP, K4);
    }

    #[test]
    #[should_panic(
        expected = "vmm_gpt_populate_region: range 0xfffffffff000 + 0x2000 exceeds the 48-bit guest-physical space"
    )]
    fn populate_past_2_48_panics() {
        pop(Gpt::alloc(), TOP - K4, 2 * K4);
    }

    #[test]
    #[should_panic(
        expected = "vmm_gpt_vacate_region: leaf table reference count underflow at gpa 0x200000"
    )]
    fn vacating_more_than_populated_panics() {
        let g = Gpt::alloc();
        pop(g, M2, K4);
        vac(g, M2, 2 * K4);
    }

    #[test]
    #[cfg_attr(
        vmm_gpt_debug,
        should_panic(
            expected = "vmm_gpt_populate_region: leaf table reference count overflow at gpa 0x40000000"
        )
    )]
    fn populating_twice_counts_twice() {
        let (g, before) = new_gpt();
        pop(g, G1, M2);
        // DEBUG builds panic here (the original's ASSERT); others count on.
        pop(g, G1, M2);
        assert_eq!(tables(gpt(g)), t(&[0], &[G1], &[(G1, 1024)]));
        vac(g, G1, M2);
        assert_eq!(tables(gpt(g)), t(&[0], &[G1], &[(G1, 512)]));
        vac(g, G1, M2);
        assert_eq!(tables(gpt(g)), Tables::default());
        free(g, before);
    }

    #[test]
    #[cfg_attr(
        vmm_gpt_debug,
        should_panic(expected = "vmm_gpt_populate_region: addr 0x1800 is not page-aligned")
    )]
    fn unaligned_populate() {
        let (g, before) = new_gpt();
        // Non-DEBUG: the pages from 0x1000 to 0x3000, both rounded down.
        pop(g, 0x1800, 0x1800);
        assert_eq!(tables(gpt(g)), t(&[0], &[0], &[(0, 2)]));
        vac(g, 0x1800, 0x1800);
        assert_eq!(tables(gpt(g)), Tables::default());
        free(g, before);
    }

    #[test]
    fn slots_split_a_range_at_entry_edges() {
        let got: Vec<(usize, u64, u64)> = slots(Level::L2, 0, M2 - K4, M2 + K4)
            .map(|s| (s.index.get(), s.start, s.end))
            .collect();
        assert_eq!(got, [(0, M2 - K4, M2), (1, M2, M2 + K4)]);
        // Inside a LEVEL3 table at 1 GiB.
        let got: Vec<(usize, u64, u64)> = slots(Level::L2, G1, G1 + 3 * M2 + K4, G1 + 5 * M2)
            .map(|s| (s.index.get(), s.start, s.end))
            .collect();
        assert_eq!(
            got,
            [
                (3, G1 + 3 * M2 + K4, G1 + 4 * M2),
                (4, G1 + 4 * M2, G1 + 5 * M2)
            ]
        );
        // The whole space: 512 slots of 512 GiB.
        let all: Vec<Slot> = slots(Level::L4, 0, 0, TOP).collect();
        assert_eq!(all.len(), 512);
        assert_eq!((all[511].start, all[511].end), (TOP - G512, TOP));
        assert!(all.iter().all(|s| s.end - s.start == G512));
        // One page.
        let one: Vec<Slot> = slots(Level::L1, 7 * M2, 7 * M2 + 9 * K4, 7 * M2 + 10 * K4).collect();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].index.get(), 9);
    }

    #[test]
    fn child_bases_and_pages() {
        let s = Slot {
            index: Idx::wrap(3),
            start: G1 + 3 * M2 + 5 * K4,
            end: G1 + 4 * M2,
        };
        assert_eq!(child_base(Level::L2, &s), G1 + 3 * M2);
        assert_eq!(child_base(Level::L3, &s), G1);
        assert_eq!(child_base(Level::L4, &s), 0);
        assert_eq!(pages(&s), 512 - 5);
        // Unaligned ends are rounded down.
        let u = Slot {
            index: Idx::wrap(0),
            start: 0x1800,
            end: 0x3fff,
        };
        assert_eq!(pages(&u), 2);
    }

    #[test]
    fn one_leaf_only_inside_one_leaf_table() {
        assert!(one_leaf(0, M2).is_some());
        assert!(one_leaf(M2 - K4, M2).is_some());
        assert!(one_leaf(0, M2 + K4).is_none());
        assert!(one_leaf(M2 - K4, M2 + K4).is_none());
        assert!(one_leaf(TOP - K4, TOP).is_some());
        let s = one_leaf(G1 + 7 * M2 + K4, G1 + 7 * M2 + 3 * K4);
        assert_eq!(s.map(|s| (s.index.get(), pages(&s))), Some((7, 2)));
    }

    #[test]
    fn nodes_know_their_span() {
        let i = Idx::wrap;
        assert_eq!(Node::L3(i(1)).gpa(), G512);
        assert_eq!(Node::L3(i(511)).end(), TOP);
        assert_eq!(Node::L2(i(1), i(2)).gpa(), G512 + 2 * G1);
        assert_eq!(Node::L2(i(1), i(2)).end(), G512 + 3 * G1);
        assert_eq!(Node::L1(i(1), i(2), i(3)).gpa(), G512 + 2 * G1 + 3 * M2);
        assert_eq!(Node::L1(i(511), i(511), i(511)).end(), TOP);
        let node_gpas = LEVELS.map(|l| l.entry_len());
        assert_eq!(node_gpas, [G512, G1, M2, K4]);
    }

    #[test]
    fn entries_covered_counts_the_pages_inside_a_leaf_table() {
        let leaf = Node::L1(Idx::wrap(0), Idx::wrap(0), Idx::wrap(1));
        assert_eq!(entries_covered(leaf, M2 + K4, M2 + 3 * K4), 2);
        assert_eq!(entries_covered(leaf, 0, G1), 512);
        assert_eq!(entries_covered(leaf, M2 - K4, M2 + K4), 1);
        assert_eq!(entries_covered(leaf, 2 * M2 - K4, 3 * M2), 1);
        // Outside the table.
        assert_eq!(entries_covered(leaf, 0, M2), 0);
        assert_eq!(entries_covered(leaf, 2 * M2, 3 * M2), 0);
        // Unaligned: from the start rounded down to the end rounded down.
        assert_eq!(entries_covered(leaf, M2 + 0x1800, M2 + 0x3fff), 2);
        assert_eq!(entries_covered(leaf, M2 + 0x1800, M2 + 0x1fff), 0);
    }

    /// xorshift64*: a fixed sequence, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_regions_at_edges_against_the_model() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..8 {
            let (g, before) = new_gpt();
            let mut regions: Vec<(u64, u64)> = Vec::new();
            while regions.len() < 24 {
                // A start near an edge of some level, a length near a
                // table's span.
                let edge = [M2, G1, G512][rng.below(3) as usize];
                let base = match rng.below(4) {
                    0 => TOP - edge * (1 + rng.below(3)),
                    _ => edge * rng.below(4),
                };
                let addr = (base + rng.below(5) * K4).wrapping_sub(2 * K4) & PAGEMASK;
                let len = match rng.below(4) {
                    0 => K4 * (1 + rng.below(3)),
                    1 => M2 + K4 * rng.below(3),
                    2 => K4 * (1 + rng.below(2000)),
                    _ => G1 / 2 + M2 * rng.below(300),
                };
                let end = addr.wrapping_add(len);
                if end <= addr || end > TOP {
                    continue;
                }
                if regions.iter().any(|&(a, l)| addr < a + l && a < end) {
                    continue;
                }
                pop(g, addr, len);
                regions.push((addr, len));
            }
            let want = model(&regions);
            assert_eq!(tables(gpt(g)), want, "round {round}: {regions:x?}");
            assert_eq!(kmem::usage().pages, before.pages + 1 + want.pages());
            // Vacate in a shuffled order.
            while !regions.is_empty() {
                let (a, l) = regions.swap_remove(rng.below(regions.len() as u64) as usize);
                vac(g, a, l);
                assert_eq!(
                    tables(gpt(g)),
                    model(&regions),
                    "round {round}: vacated {a:#x} + {l:#x}"
                );
            }
            assert_eq!(kmem::usage().pages, before.pages + 1);
            free(g, before);
        }
    }

    #[test]
    fn freeing_a_populated_gpt_returns_all_memory() {
        let (g, before) = new_gpt();
        pop(g, 0, 3 * M2);
        pop(g, G1 - K4, 2 * K4);
        pop(g, TOP - G1 - K4, G1 + K4);
        assert!(kmem::usage().pages > before.pages + 500);
        free(g, before);
    }
}
