//! What the generator and the runner know of a GPT's state: the populated
//! regions ([`Regions`]: non-overlapping, page-aligned, non-empty ranges
//! below 2^48, as vmspace keeps them) and the original's table tree as
//! bookkeeping ([`Tables`]: which tables exist, each leaf table's count).
//! Both keep one of each: the generator to make only valid operations, the
//! runner to skip operations a shrunk or hand-written sequence makes
//! invalid, to know what a vacate that is not exactly a region takes off,
//! and to check its model against both implementations' table counts.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{GPA_END, PAGE};

#[derive(Clone, Debug, Default)]
pub struct Regions {
    /// `(start, len)`, in no particular order (there are few).
    list: Vec<(u64, u64)>,
    live: u64,
}

impl Regions {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Live populated bytes.
    pub fn live_bytes(&self) -> u64 {
        self.live
    }

    pub fn get(&self, i: usize) -> (u64, u64) {
        self.list[i]
    }

    /// Can `[addr, addr + len)` be populated as a new region?
    pub fn fits(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        addr.is_multiple_of(PAGE)
            && len.is_multiple_of(PAGE)
            && len > 0
            && end <= GPA_END
            && self.list.iter().all(|&(s, l)| end <= s || s + l <= addr)
    }

    pub fn insert(&mut self, addr: u64, len: u64) {
        debug_assert!(self.fits(addr, len));
        self.list.push((addr, len));
        self.live += len;
    }

    /// The length of the region starting at `addr`.
    pub fn length_at(&self, addr: u64) -> Option<u64> {
        self.list.iter().find(|&&(s, _)| s == addr).map(|&(_, l)| l)
    }

    /// Removes the region starting at `addr`; returns its length.
    pub fn remove(&mut self, addr: u64) -> Option<u64> {
        let i = self.list.iter().position(|&(s, _)| s == addr)?;
        let (_, len) = self.list.swap_remove(i);
        self.live -= len;
        Some(len)
    }

    /// Takes the pages of `[start, end)` out of the regions (splitting
    /// those it cuts).
    pub fn remove_range(&mut self, start: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.list.len() + 1);
        for &(s, l) in &self.list {
            let e = s + l;
            if e <= start || end <= s {
                kept.push((s, l));
                continue;
            }
            if s < start {
                kept.push((s, start - s));
            }
            if end < e {
                kept.push((end, e - end));
            }
        }
        self.list = kept;
        self.live = self.list.iter().map(|&(_, l)| l).sum();
    }

    /// Populated bytes in `[addr, addr + len)` (saturating at 2^64).
    pub fn populated_in(&self, addr: u64, len: u64) -> u64 {
        let end = addr.saturating_add(len);
        self.list
            .iter()
            .map(|&(a, l)| (a + l).min(end).saturating_sub(a.max(addr)))
            .sum()
    }

    /// The region containing `gpa`.
    pub fn containing(&self, gpa: u64) -> Option<(u64, u64)> {
        self.list
            .iter()
            .copied()
            .find(|&(s, l)| s <= gpa && gpa < s + l)
    }

    /// The end of the highest region (0 without one).
    pub fn end(&self) -> u64 {
        self.list.iter().map(|&(s, l)| s + l).max().unwrap_or(0)
    }

    /// Every region, by address.
    pub fn sorted(&self) -> Vec<(u64, u64)> {
        let mut v = self.list.clone();
        v.sort_unstable();
        v
    }

    pub fn clear(&mut self) {
        self.list.clear();
        self.live = 0;
    }
}

/// Levels of the tables below the root, as the original numbers them
/// (`vgn_level`): `LEVEL3` tables (children of the root) cover 512 GiB,
/// `LEVEL2` ones 1 GiB, `LEVEL1` (leaf) ones 2 MiB.
const L3: u8 = 1;
const L1: u8 = 3;
/// What a table of `level` covers (the root, level 0: 2^48).
const fn coverage(level: u8) -> u64 {
    1 << (48 - 9 * level as u32)
}
/// What one leaf table covers.
pub const LEAF_SPAN: u64 = coverage(L1);

/// The original's table tree, as its bookkeeping sees it: every table but
/// the root, by level and base address, with each leaf table's count (an
/// interior table's count is its number of children).  `populate` and
/// `vacate_plan`/`vacate_apply` do what `vmm_gpt_populate_region` and
/// `vmm_gpt_vacate_region` do to the original's nodes, down to the
/// vacate's traversal (which table it goes to next, which it frees); the
/// runner checks after each that both implementations hold this many
/// tables.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    nodes: BTreeMap<(u8, u64), u32>,
}

/// What a vacate of `[addr, addr + len)` does, worked out before it is
/// done: the tables it starts at per level and the leaf tables whose
/// counts it lowers, each with the entries taken off (`covered`) and the
/// page range those are (`[from, to)`).
#[derive(Clone, Debug)]
pub struct VacatePlan {
    addr: u64,
    end: u64,
    starts: [Option<u64>; 4],
    /// `(leaf base, covered, from, to)`.
    pub leaves: Vec<(u64, u32, u64, u64)>,
}

impl Tables {
    /// Tables (not counting the root).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn clear(&mut self) {
        self.nodes.clear();
    }

    /// A table to clean up: the lowest-addressed leaf table, else the
    /// deepest other table (its base).
    pub fn any(&self) -> Option<u64> {
        (L3..=L1).rev().find_map(|l| self.first_in(l, 0, u64::MAX))
    }

    /// The first table of `level` with base in `[from, to)`.
    fn first_in(&self, level: u8, from: u64, to: u64) -> Option<u64> {
        self.nodes
            .range((Bound::Included((level, from)), Bound::Excluded((level, to))))
            .next()
            .map(|(&(_, b), _)| b)
    }

    fn exists(&self, level: u8, base: u64) -> bool {
        level == 0 || self.nodes.contains_key(&(level, base))
    }

    /// A table's count: a leaf's own, an interior table's children.
    fn count(&self, level: u8, base: u64) -> u64 {
        if level == L1 {
            u64::from(self.nodes.get(&(level, base)).copied().unwrap_or(0))
        } else {
            self.nodes
                .range((level + 1, base)..(level + 1, base + coverage(level)))
                .count() as u64
        }
    }

    /// `vmm_gpt_populate_region(addr, len)`, for a range the original
    /// completes without corrupting its tree (below 2^48; its end, if it
    /// does not wrap, at most 2^48): the tables covering `addr`, and for a
    /// range that does not wrap every table from there up to its end;
    /// each leaf table counts the pages from `addr` to the end, both
    /// rounded down.
    pub fn populate(&mut self, addr: u64, len: u64) {
        let end = addr.wrapping_add(len);
        for level in L3..=L1 {
            let span = coverage(level);
            let mut base = addr & !(span - 1);
            loop {
                self.nodes.entry((level, base)).or_insert(0);
                base += span;
                if base >= end {
                    break;
                }
            }
        }
        if addr >= end {
            return;
        }
        let mut base = addr & !(LEAF_SPAN - 1);
        while base < end {
            let covered = covered(base, addr, end);
            let n = self.nodes.entry((L1, base)).or_insert(0);
            *n = n.wrapping_add(u32::from(covered));
            base += LEAF_SPAN;
        }
    }

    /// `vmm_gpt_node_next(node, only_seq)`: the next table of the same
    /// level in its parent (any address), or else, below `LEVEL3`, the first
    /// child of the parent's adjacent next table; with `only_seq`, only a
    /// table that starts where this one ends.
    fn next(&self, level: u8, base: u64, only_seq: bool) -> Option<u64> {
        let end = base.wrapping_add(coverage(level));
        let parent_span = coverage(level - 1);
        let parent = base & !(parent_span - 1);
        let mut next = self.first_in(level, base + 1, parent + parent_span);
        if next.is_none() && level > L3 {
            if let Some(p) = self.next(level - 1, parent, true) {
                next = self.first_in(level, p, p + parent_span);
            }
        }
        next.filter(|&n| n == end || !only_seq)
    }

    /// The child of table `(level, base)` for `gpa` (the original indexes
    /// with the GPA mod 2^48), if it exists.
    fn child(&self, level: u8, base: u64, gpa: u64) -> Option<u64> {
        let span = coverage(level + 1);
        let child = base + ((gpa / span) % 512) * span;
        self.exists(level + 1, child).then_some(child)
    }

    /// What `vmm_gpt_vacate_region(addr, len)` will do: its starting
    /// tables, and the leaf tables it takes entries off (it goes from the
    /// leaf table of `addr`, if every table down to it exists, from table
    /// to next table while below the end).
    pub fn vacate_plan(&self, addr: u64, len: u64) -> VacatePlan {
        let end = addr.wrapping_add(len);
        let mut starts = [Some(0), None, None, None];
        for level in 0..L1 {
            let Some(base) = starts[level as usize] else {
                break;
            };
            starts[level as usize + 1] = self.child(level, base, addr);
        }
        let mut leaves = Vec::new();
        let mut gpa = addr;
        let mut node = starts[L1 as usize];
        while let Some(base) = node {
            if gpa >= end {
                break;
            }
            let n = covered(base, addr, end);
            let from = base.max(addr & !(PAGE - 1));
            leaves.push((base, u32::from(n), from, from + u64::from(n) * PAGE));
            node = self.next(L1, base, false);
            if let Some(b) = node {
                gpa = b;
            }
        }
        VacatePlan {
            addr,
            end,
            starts,
            leaves,
        }
    }

    /// Whether the plan takes more entries off a leaf table than it counts
    /// (the original's count would wrap; the library panics): the first
    /// such table's base.
    pub fn underflow(&self, plan: &VacatePlan) -> Option<u64> {
        plan.leaves
            .iter()
            .find(|&&(b, n, _, _)| self.count(L1, b) < u64::from(n))
            .map(|&(b, _, _, _)| b)
    }

    /// Does the vacate: takes the entries off, then from the leaves up
    /// frees every table it visits (from its starting table of that level,
    /// from table to next table while below the end) whose count is 0.
    pub fn vacate_apply(&mut self, plan: &VacatePlan) {
        for &(b, n, _, _) in &plan.leaves {
            if let Some(c) = self.nodes.get_mut(&(L1, b)) {
                *c = c.wrapping_sub(n);
            }
        }
        for level in (L3..=L1).rev() {
            let mut gpa = plan.addr;
            let mut node = plan.starts[level as usize];
            while let Some(base) = node {
                if gpa >= plan.end {
                    break;
                }
                let next = self.next(level, base, false);
                if self.count(level, base) == 0 {
                    self.nodes.remove(&(level, base));
                }
                if let Some(b) = next {
                    gpa = b;
                }
                node = next;
            }
        }
    }
}

/// `vmm_gpt_node_entries_covered` of a leaf table: how many of its entries
/// `[start, end)` covers, both rounded down to pages (as a `uint16_t`).
fn covered(base: u64, start: u64, end: u64) -> u16 {
    let node_end = base + LEAF_SPAN;
    if start >= node_end || end <= base {
        return 0;
    }
    let from = base.max(start & !(PAGE - 1));
    let to = node_end.min(end & !(PAGE - 1));
    (to.wrapping_sub(from) / PAGE) as u16
}

/// Whether `vmm_gpt_populate_region(addr, len)` is valid in a pair of this
/// build (`debug`: the DEBUG original's `ASSERT`s hold) with these regions
/// live, and what it populates: `None` if not valid; `Some(None)` if it
/// only creates tables (an empty range, one that wraps past 2^64, or an
/// unaligned one covering no whole page); `Some(Some((start, len)))`, the
/// new region (the pages the leaf tables count), otherwise.  Valid: below
/// 2^48, ending (unless it wraps) at most at 2^48, page-aligned in DEBUG
/// pairs, a new region not overlapping a live one, the live total staying
/// at most `max_live`.
pub fn populate_check(
    regions: &Regions,
    addr: u64,
    len: u64,
    debug: bool,
    max_live: u64,
) -> Option<Option<(u64, u64)>> {
    if addr >= GPA_END || (debug && !(addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE))) {
        return None;
    }
    let Some(end) = addr.checked_add(len).filter(|&e| e > addr) else {
        return Some(None);
    };
    if end > GPA_END {
        return None;
    }
    let (from, to) = (addr & !(PAGE - 1), end & !(PAGE - 1));
    if from == to {
        return Some(None);
    }
    (regions.fits(from, to - from) && regions.live_bytes() + (to - from) <= max_live)
        .then_some(Some((from, to - from)))
}

/// Whether `vmm_gpt_unmap_region` + `vmm_gpt_vacate_region` of
/// `[addr, addr + len)` is valid in a pair of this build with these tables
/// and regions, and its plan if so.  Valid: below 2^48; page-aligned and
/// not wrapping in DEBUG pairs (`unmap_region`'s iteration `ASSERT`s);
/// and every leaf table it takes entries off has all those entries'
/// pages populated, so that the counts stay the populated pages (no
/// count wraps, and the regions stay what the tables count).
pub fn vacate_check(
    tables: &Tables,
    regions: &Regions,
    addr: u64,
    len: u64,
    debug: bool,
) -> Option<VacatePlan> {
    let aligned = addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE);
    if addr >= GPA_END || (debug && !(aligned && addr.checked_add(len).is_some())) {
        return None;
    }
    let plan = tables.vacate_plan(addr, len);
    let populated = plan
        .leaves
        .iter()
        .all(|&(_, _, from, to)| regions.populated_in(from, to - from) == to - from);
    (populated && tables.underflow(&plan).is_none()).then_some(plan)
}

/// Takes what a vacate took off the leaf tables out of the regions.
pub fn depopulate(regions: &mut Regions, plan: &VacatePlan) {
    for &(_, _, from, to) in &plan.leaves {
        if from < to {
            regions.remove_range(from, to);
        }
    }
}
