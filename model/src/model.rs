//! The plain model of a GPT: what a caller can observe, derived from the
//! populated regions and the leaf entries alone, without any page tables.
//!
//! - The populated regions: disjoint, page-aligned `[start, end)` ranges
//!   inside the 48-bit guest-physical space.
//! - The tables that exist follow from them: a table exists at a level iff
//!   some region touches the GPA range it covers (the root always exists).
//!   A leaf table covers 2 MiB, a `LEVEL2` table 1 GiB, a `LEVEL3` table
//!   512 GiB.
//! - The leaf entries: a map from GPA to the raw PTE value, absent meaning
//!   zero.  An entry only exists while its leaf table does: when the last
//!   region touching a 2 MiB chunk goes, the chunk's entries go with it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// Bytes in a page.
pub use vmm_gpt_harness::PAGE;
/// The guest-physical space the four levels span.
pub const SPACE_END: u64 = 1 << 48;
/// GPA span of a table at each level (`LEVEL4`, the root, first).
pub const TABLE_SPAN: [u64; 4] = [SPACE_END, 1 << 39, 1 << 30, 1 << 21];
/// GPA span of one leaf table.
pub const LEAF_SPAN: u64 = TABLE_SPAN[3];

/// The model of one GPT.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Populated regions, start -> end (exclusive).
    regions: BTreeMap<u64, u64>,
    /// Non-zero leaf entries, GPA -> raw value.
    ptes: BTreeMap<u64, u64>,
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// The populated regions, in address order.
    pub fn regions(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.regions.iter().map(|(&s, &e)| (s, e))
    }

    pub fn region_count(&self) -> usize {
        self.regions.len()
    }

    /// The `i`-th region (in address order), modulo the count.
    pub fn region(&self, i: usize) -> Option<(u64, u64)> {
        if self.regions.is_empty() {
            return None;
        }
        self.regions().nth(i % self.regions.len())
    }

    /// Does `[start, end)` overlap a populated region?
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.touches(start, end)
    }

    /// Does any region intersect `[start, end)`?  Regions are disjoint and
    /// sorted, so the last one starting before `end` has the largest end.
    fn touches(&self, start: u64, end: u64) -> bool {
        self.regions
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start)
    }

    /// Records a populated region (non-empty, disjoint from the others).
    pub fn populate(&mut self, start: u64, end: u64) {
        assert!(start < end && end <= SPACE_END && !self.overlaps(start, end));
        self.regions.insert(start, end);
    }

    /// Removes the region starting at `start`; the entries of leaf tables
    /// no region touches any more go with their tables.
    pub fn vacate(&mut self, start: u64) {
        let end = self.regions.remove(&start).expect("a populated region");
        let first = start & !(LEAF_SPAN - 1);
        let mut chunk = first;
        while chunk < end {
            if !self.leaf_exists(chunk) {
                let gone: Vec<u64> = self
                    .ptes
                    .range(chunk..chunk + LEAF_SPAN)
                    .map(|(&g, _)| g)
                    .collect();
                for g in gone {
                    self.ptes.remove(&g);
                }
            }
            chunk += LEAF_SPAN;
        }
    }

    /// Does the table at `level` (0 = `LEVEL4`) covering `gpa` exist?
    pub fn table_exists(&self, level: usize, gpa: u64) -> bool {
        if level == 0 {
            return true;
        }
        if gpa >= SPACE_END {
            return false;
        }
        let span = TABLE_SPAN[level];
        let base = gpa & !(span - 1);
        self.touches(base, base + span)
    }

    /// Does the leaf table covering `gpa` exist?
    pub fn leaf_exists(&self, gpa: u64) -> bool {
        self.table_exists(3, gpa)
    }

    /// The bases of the tables that exist at `level` (0 = `LEVEL4`).
    pub fn tables(&self, level: usize) -> BTreeSet<u64> {
        let span = TABLE_SPAN[level];
        let mut set = BTreeSet::new();
        if level == 0 {
            set.insert(0);
            return set;
        }
        for (s, e) in self.regions() {
            let mut b = s & !(span - 1);
            while b < e {
                set.insert(b);
                b += span;
            }
        }
        set
    }

    /// The leaf entry of `gpa` (zero when empty or when no table holds it).
    pub fn entry(&self, gpa: u64) -> u64 {
        self.ptes.get(&gpa).copied().unwrap_or(0)
    }

    /// Sets the leaf entry of `gpa`, whose leaf table exists.
    pub fn set_entry(&mut self, gpa: u64, value: u64) {
        assert!(self.leaf_exists(gpa), "entry {gpa:#x} without a leaf table");
        if value == 0 {
            self.ptes.remove(&gpa);
        } else {
            self.ptes.insert(gpa, value);
        }
    }

    /// The non-zero leaf entries in `[start, end)`.
    pub fn entries_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ptes
            .range((Bound::Included(start), Bound::Excluded(end)))
            .map(|(&g, &v)| (g, v))
    }

    /// Number of non-zero leaf entries.
    pub fn entry_count(&self) -> usize {
        self.ptes.len()
    }

    /// What the iterator over `[addr, end)` yields: every slot of every
    /// existing leaf table inside the range (and inside the 48-bit space),
    /// in address order.
    pub fn iter_gpas(&self, addr: u64, end: u64) -> Vec<u64> {
        let end = end.min(SPACE_END);
        let mut out = Vec::new();
        if addr >= end {
            return out;
        }
        for chunk in self.tables(3) {
            let lo = chunk.max(addr);
            let hi = (chunk + LEAF_SPAN).min(end);
            let mut g = lo;
            while g < hi {
                out.push(g);
                g += PAGE;
            }
        }
        out
    }

    /// The number of tables at each level.
    pub fn table_counts(&self) -> [usize; 4] {
        [0, 1, 2, 3].map(|l| self.tables(l).len())
    }
}
