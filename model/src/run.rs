//! The runner: applies each operation of a [`Case`] to the library and to
//! the [`Model`], and checks that everything the library lets a caller
//! observe matches the model.
//!
//! Checked, per operation: return values (`map_at`, `unmap`,
//! `unmap_region` counts, `is_mapped` with its PFN and protection, the A/D
//! resets and queries, `get_pmtp`, `can_track_dirty`), raw leaf entries
//! (the format's `vpi_map_page` value plus the A/D bits set), walks (the
//! entry pointer at every level: NULL exactly below a missing table, else
//! the right slot of the right table; the returned GPA; levels past the
//! depth untouched), iterator sequences (every slot of every existing leaf
//! table in range, in order, with its entry pointer).  After every populate
//! and vacate, after the last operation and at the end: the whole table
//! tree as the hardware sees it (the tables at each level, interior entries
//! exactly the format's `vpi_map_table` links, every leaf entry) and the
//! number of table pages the kernel stand-in holds; after `vmm_gpt_free`,
//! no allocation at all.
//!
//! A mismatch panics with the operation's index and what differs; proptest
//! then shrinks the case.

use std::collections::{BTreeMap, BTreeSet};

use crate::library::{self, Format, Gpt, KmemStats, Prot, Pte, Session, ENTRY_SPAN};
use crate::model::{Model, PAGE, SPACE_END};
use crate::ops::{Base, Case, Mapping, Op, Target};

/// What one run did, for the tests to check that the operations were not
/// all skipped.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub ops: usize,
    pub skipped: usize,
    pub populated: usize,
    pub mapped: usize,
    pub unmapped: usize,
    pub tree_checks: usize,
    /// Operations that did not apply, by kind (the `Op` variant name).
    pub skipped_by_kind: BTreeMap<&'static str, usize>,
}

impl Stats {
    /// Adds another run's counts.
    pub fn add(&mut self, o: &Stats) {
        self.ops += o.ops;
        self.skipped += o.skipped;
        self.populated += o.populated;
        self.mapped += o.mapped;
        self.unmapped += o.unmapped;
        self.tree_checks += o.tree_checks;
        for (k, n) in &o.skipped_by_kind {
            *self.skipped_by_kind.entry(k).or_default() += n;
        }
    }
}

/// A fault injected on purpose, to show that the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inject {
    /// Flip bit `bit` of the first non-zero leaf entry in the tables (as if
    /// the library had written a wrong PTE).
    FlipLeafBit { bit: u32 },
    /// Clear the first table link of the root table (as if the library had
    /// lost a table).
    UnlinkTable,
    /// Expect one more mapped page than there is: a wrong model entry.
    ModelExtraEntry,
}

/// Runs a case on a fresh GPT in `session`; panics on the first mismatch.
pub fn run_case(session: &Session, case: &Case) -> Stats {
    run_case_injected(session, case, None)
}

/// Runs a case, injecting a fault right after operation `inject.0`.
pub fn run_case_injected(session: &Session, case: &Case, inject: Option<(usize, Inject)>) -> Stats {
    let mut r = Runner::new(session);
    for (i, op) in case.ops.iter().enumerate() {
        r.at = format!("op {i} ({op:?})");
        if let Some((at, fault)) = inject {
            if at + 1 == i {
                r.inject(fault);
            }
        }
        let applied = r.apply(op);
        r.stats.ops += 1;
        if !applied {
            r.stats.skipped += 1;
            *r.stats.skipped_by_kind.entry(op.kind()).or_default() += 1;
        }
    }
    r.at = "after the last op".into();
    r.check_tree();
    r.finish(case.free_populated)
}

struct Runner<'s> {
    /// The session the GPT lives in (it outlives the GPT).
    _session: &'s Session,
    format: Format,
    gpt: Option<Gpt>,
    model: Model,
    /// The stand-in's counters before the GPT was allocated.
    kmem0: KmemStats,
    root: usize,
    /// Table addresses by level and base GPA, from the last tree check
    /// (tables change only in populate and vacate, each followed by one).
    addrs: [BTreeMap<u64, usize>; 4],
    stats: Stats,
    /// The operation being checked, for messages.
    at: String,
}

/// The index of `gpa`'s entry in a table at `level` (0 = `LEVEL4`).
fn index(level: usize, gpa: u64) -> usize {
    ((gpa >> (39 - 9 * level)) & 511) as usize
}

impl<'s> Runner<'s> {
    fn new(session: &'s Session) -> Runner<'s> {
        let kmem0 = library::kmem();
        let gpt = Gpt::alloc(&library::LIB);
        let root = gpt.root_addr();
        let mut r = Runner {
            _session: session,
            format: session.format(),
            gpt: Some(gpt),
            model: Model::new(),
            kmem0,
            root,
            addrs: Default::default(),
            stats: Stats::default(),
            at: "vmm_gpt_alloc".into(),
        };
        r.check_tree();
        r
    }

    fn inject(&mut self, fault: Inject) {
        let tree = library::hw_tree(self.gpt(), self.format);
        match fault {
            Inject::FlipLeafBit { bit } => {
                let (t, i) = tree[3]
                    .iter()
                    .find_map(|t| t.entries.iter().position(|&e| e != 0).map(|i| (t, i)))
                    .expect("a mapped page to corrupt");
                let pte = self.gpt().pte((t.addr + i * 8) as *mut u64);
                pte.expect("a table entry").flip(1 << bit);
            }
            Inject::UnlinkTable => {
                let i = tree[0][0]
                    .entries
                    .iter()
                    .position(|&e| e != 0)
                    .expect("a table to unlink");
                let pte = self.gpt().pte((self.root + i * 8) as *mut u64);
                let pte = pte.expect("a root entry");
                pte.flip(pte.load());
            }
            Inject::ModelExtraEntry => {
                let (s, _) = self.model.region(0).expect("a region");
                let value = self
                    .format
                    .map_page(1, Prot::all(), crate::library::MTRR_WB);
                self.model.set_entry(s, value);
            }
        }
    }

    fn gpt(&self) -> &Gpt {
        self.gpt.as_ref().expect("the GPT is live")
    }

    #[track_caller]
    fn fail(&self, what: String) -> ! {
        panic!("{} ({:?}): {what}", self.at, self.format)
    }

    fn present(&self, value: u64) -> Option<(u64, Prot)> {
        self.format.parse(value)
    }

    /// Applies one operation; false if it did not apply (skipped).
    fn apply(&mut self, op: &Op) -> bool {
        match op {
            Op::Populate { base, pages } => self.populate(base, *pages),
            Op::MapRange {
                region,
                first,
                count,
                skip,
                map,
            } => self.map_range(*region, *first, *count, *skip, map),
            Op::Fault { at, map } => match self.target(at) {
                Some(gpa) => {
                    if let Some(pte) = self.walk(gpa, 3)[3] {
                        self.map_one(gpa, pte, map.pfn, map.prot, map.attr);
                    }
                    true
                }
                None => false,
            },
            Op::Walk { at, depth } => {
                let gpa = self.target(at);
                gpa.map(|gpa| self.walk(gpa, *depth as usize)).is_some()
            }
            Op::Iterate { at, pages } => {
                let gpa = self.target(at);
                gpa.map(|gpa| self.iterate(gpa, pages * PAGE)).is_some()
            }
            Op::Unmap { at } => self.target(at).map(|gpa| self.unmap(gpa)).is_some(),
            Op::UnmapRange { at, pages } => {
                let gpa = self.target(at);
                gpa.map(|gpa| self.unmap_range(gpa, pages * PAGE)).is_some()
            }
            Op::Remove { region } => match self.model.region(*region) {
                Some((s, e)) => {
                    self.remove(s, e);
                    true
                }
                None => false,
            },
            Op::HwSetAd {
                at,
                accessed,
                dirty,
            } => self.leaf_op(at, |r, gpa, pte| r.hw_set_ad(gpa, pte, *accessed, *dirty)),
            Op::ResetAccessed { at, on } => {
                self.leaf_op(at, |r, gpa, pte| r.reset_accessed(gpa, pte, *on))
            }
            Op::ResetDirty { at, on } => {
                self.leaf_op(at, |r, gpa, pte| r.reset_dirty(gpa, pte, *on))
            }
            Op::Query { at } => self.leaf_op(at, |r, gpa, pte| r.query(gpa, pte)),
            Op::ScanDirty { region } => match self.model.region(*region) {
                Some((s, e)) => {
                    self.scan_dirty(s, e);
                    true
                }
                None => false,
            },
            Op::Pmtp { track, hw_ad } => {
                self.pmtp(*track, *hw_ad);
                true
            }
            // An empty populate creates the tables covering its address,
            // as the original does; the model's tree is that of the
            // populated regions, so it only populates empty ranges inside
            // a region, where those tables exist already.  Empty ranges
            // elsewhere are the differential test's (against the original).
            Op::Empty { at, vacate } if !*vacate && !matches!(at, Target::In { .. }) => false,
            Op::Empty { at, vacate } => match self.target(at) {
                Some(gpa) => {
                    if *vacate {
                        self.gpt().vacate(gpa, 0);
                    } else {
                        self.gpt().populate(gpa, 0);
                    }
                    self.check_tree();
                    true
                }
                None => false,
            },
        }
    }

    /// Resolves a target to a page-aligned GPA inside the 48-bit space.
    fn target(&self, t: &Target) -> Option<u64> {
        let gpa = match *t {
            Target::In { region, page } => {
                let (s, e) = self.model.region(region)?;
                s + (page % ((e - s) / PAGE)) * PAGE
            }
            Target::Near {
                region,
                below,
                pages,
            } => {
                let (s, e) = self.model.region(region)?;
                if below {
                    s.checked_sub(pages * PAGE)?
                } else {
                    e + (pages - 1) * PAGE
                }
            }
            Target::Anywhere { page } => page * PAGE,
        };
        (gpa < SPACE_END).then_some(gpa)
    }

    /// Runs `f` on the leaf entry of a target whose leaf table exists
    /// (after checking the walk there); false if there is none.
    fn leaf_op(&mut self, t: &Target, f: impl FnOnce(&mut Self, u64, Pte)) -> bool {
        let Some(gpa) = self.target(t) else {
            return false;
        };
        match self.walk(gpa, 3)[3] {
            Some(pte) => {
                f(self, gpa, pte);
                true
            }
            None => false,
        }
    }

    fn populate(&mut self, base: &Base, pages: u64) -> bool {
        let len = pages * PAGE;
        let start = match *base {
            Base::Boundary { shift, k, delta } => {
                (k << shift).checked_add_signed(delta * PAGE as i64)
            }
            Base::Low { page } => Some(page * PAGE),
            Base::Top { gap } => SPACE_END.checked_sub(len + gap * PAGE),
            Base::After { region, gap } => self.model.region(region).map(|(_, e)| e + gap * PAGE),
            Base::Before { region, gap } => self
                .model
                .region(region)
                .and_then(|(s, _)| s.checked_sub(len + gap * PAGE)),
        };
        let Some(start) = start else {
            return false;
        };
        let end = start + len;
        if end > SPACE_END || self.model.overlaps(start, end) {
            return false;
        }
        self.gpt().populate(start, len);
        self.model.populate(start, end);
        self.stats.populated += 1;
        self.check_tree();
        true
    }

    /// Maps one leaf entry as a fault or `vmspace_populate` does: if it is
    /// empty, `map_at` must succeed; if it maps a page, a `map_at` of the
    /// same page (a racing fault) must fail and change nothing.
    fn map_one(&mut self, gpa: u64, pte: Pte, pfn: u64, prot: Prot, attr: u8) {
        let value = self.model.entry(gpa);
        self.check_entry(gpa, pte);
        match self.present(value) {
            None => {
                if pte.is_mapped().is_some() {
                    self.fail(format!("is_mapped({gpa:#x}) true on an empty entry"));
                }
                if !self.gpt().map_at(pte, pfn, prot, attr) {
                    self.fail(format!("map_at({gpa:#x}) failed on an empty entry"));
                }
                self.model
                    .set_entry(gpa, self.format.map_page(pfn, prot, attr));
                self.stats.mapped += 1;
            }
            Some((old_pfn, old_prot)) => {
                if pte.is_mapped() != Some((old_pfn, old_prot)) {
                    self.fail(format!(
                        "is_mapped({gpa:#x}) = {:x?}, expected {:x?}",
                        pte.is_mapped(),
                        Some((old_pfn, old_prot))
                    ));
                }
                if self.gpt().map_at(pte, old_pfn, prot, attr) {
                    self.fail(format!("map_at({gpa:#x}) succeeded on a mapped entry"));
                }
            }
        }
        self.check_entry(gpa, pte);
    }

    fn map_range(
        &mut self,
        region: usize,
        first: u64,
        count: u64,
        skip: u8,
        map: &Mapping,
    ) -> bool {
        let Some((s, e)) = self.model.region(region) else {
            return false;
        };
        let pages = (e - s) / PAGE;
        let first = first % pages;
        let count = count.min(pages - first);
        let addr = s + first * PAGE;
        let yielded = self.iterate(addr, count * PAGE);
        if yielded.len() as u64 != count {
            self.fail(format!(
                "iterating a populated range yielded {} of {count} entries",
                yielded.len()
            ));
        }
        for (i, (gpa, pte)) in yielded.into_iter().enumerate() {
            if skip != 0 && i % (usize::from(skip) + 1) == usize::from(skip) {
                continue;
            }
            self.map_one(gpa, pte, map.pfn + i as u64, map.prot, map.attr);
        }
        true
    }

    /// Checks a raw leaf entry against the model.
    fn check_entry(&self, gpa: u64, pte: Pte) {
        let (got, want) = (pte.load(), self.model.entry(gpa));
        if got != want {
            self.fail(format!(
                "leaf entry of {gpa:#x} is {got:#x}, expected {want:#x}"
            ));
        }
    }

    /// Walks to `depth` and checks every level; returns the entries.
    fn walk(&mut self, gpa: u64, depth: usize) -> [Option<Pte>; 4] {
        let (entries, ret) = self.gpt().walk(gpa, depth as u32);
        let mut out = [None; 4];
        let mut deepest = 0;
        let mut parent_exists = true;
        for lvl in 0..4 {
            let got = entries[lvl] as usize;
            if lvl > depth {
                if got != library::walk_poison() as usize {
                    self.fail(format!(
                        "walk({gpa:#x}, depth {depth}) wrote entries[{lvl}] = {got:#x} past its depth"
                    ));
                }
                continue;
            }
            let exists = parent_exists && self.model.table_exists(lvl, gpa);
            let want = if exists {
                let base = if lvl == 0 {
                    0
                } else {
                    gpa & !(crate::model::TABLE_SPAN[lvl] - 1)
                };
                let Some(&table) = self.addrs[lvl].get(&base) else {
                    self.fail(format!(
                        "no table at level {lvl} for {base:#x} in the last tree check"
                    ));
                };
                deepest = lvl;
                table + index(lvl, gpa) * 8
            } else {
                0
            };
            if got != want {
                self.fail(format!(
                    "walk({gpa:#x}, depth {depth}): entries[{lvl}] = {got:#x}, expected {want:#x} \
                     (tables exist: {:?})",
                    [0, 1, 2, 3].map(|l| self.model.table_exists(l, gpa))
                ));
            }
            if want != 0 {
                out[lvl] = self.gpt().pte(entries[lvl]);
            }
            parent_exists = exists;
        }
        let want_ret = gpa & !(ENTRY_SPAN[deepest] - 1);
        if ret != want_ret {
            self.fail(format!(
                "walk({gpa:#x}, depth {depth}) returned {ret:#x}, expected {want_ret:#x}"
            ));
        }
        out
    }

    /// Iterates `[addr, addr + len)`, checks the sequence, returns it.
    fn iterate(&mut self, addr: u64, len: u64) -> Vec<(u64, Pte)> {
        let got = self.gpt().iter(addr, len);
        let want = self.model.iter_gpas(addr, addr + len);
        let got_gpas: Vec<u64> = got.iter().map(|&(g, _)| g).collect();
        if got_gpas != want {
            let first_diff = got_gpas
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got_gpas.len().min(want.len()));
            self.fail(format!(
                "iterating [{addr:#x}, {:#x}) yielded {} GPAs, expected {}; first difference at #{first_diff}: \
                 {:x?} vs {:x?}",
                addr + len,
                got_gpas.len(),
                want.len(),
                got_gpas.get(first_diff),
                want.get(first_diff)
            ));
        }
        for &(gpa, pte) in &got {
            let chunk = gpa & !(crate::model::LEAF_SPAN - 1);
            let want_ptr = self.addrs[3].get(&chunk).map(|t| t + index(3, gpa) * 8);
            if Some(pte.addr()) != want_ptr {
                self.fail(format!(
                    "iterator entry of {gpa:#x} is {:#x}, expected {want_ptr:x?}",
                    pte.addr()
                ));
            }
            self.check_entry(gpa, pte);
        }
        got
    }

    fn unmap(&mut self, gpa: u64) {
        let value = self.model.entry(gpa);
        let want = self.model.leaf_exists(gpa) && self.present(value).is_some();
        let got = self.gpt().unmap(gpa);
        if got != want {
            self.fail(format!(
                "unmap({gpa:#x}) = {got}, expected {want} (entry {value:#x})"
            ));
        }
        if self.model.leaf_exists(gpa) {
            self.model.set_entry(gpa, 0);
            self.stats.unmapped += usize::from(got);
        }
        if let Some(pte) = self.walk(gpa, 3)[3] {
            self.check_entry(gpa, pte);
        }
    }

    /// `unmap_region`, checked.
    fn unmap_range(&mut self, addr: u64, len: u64) {
        let end = addr + len;
        let cleared: Vec<(u64, u64)> = self.model.entries_in(addr, end).collect();
        let want = cleared
            .iter()
            .filter(|&&(_, v)| self.present(v).is_some())
            .count();
        let got = self.gpt().unmap_region(addr, len);
        if got != want {
            self.fail(format!(
                "unmap_region({addr:#x}, {len:#x}) = {got}, expected {want}"
            ));
        }
        for (gpa, _) in cleared {
            self.model.set_entry(gpa, 0);
        }
        self.stats.unmapped += got;
        // Spot-check: every entry it covered is empty now.
        self.iterate(addr, len.min(64 * PAGE));
    }

    /// `vmspace_unmap`: unmap a whole region, then vacate exactly it.
    fn remove(&mut self, s: u64, e: u64) {
        self.unmap_range(s, e - s);
        self.gpt().vacate(s, e - s);
        self.model.vacate(s);
        self.check_tree();
    }

    fn hw_set_ad(&mut self, gpa: u64, pte: Pte, accessed: bool, dirty: bool) {
        let value = self.model.entry(gpa);
        // The hardware sets A/D only in entries that map a page.
        if self.present(value).is_none() {
            return;
        }
        let mut bits = 0;
        if accessed {
            bits |= self.format.bit_accessed();
        }
        if dirty {
            bits |= self.format.bit_dirty();
        }
        pte.hw_set(bits);
        self.model.set_entry(gpa, value | bits);
        self.check_entry(gpa, pte);
    }

    fn reset_accessed(&mut self, gpa: u64, pte: Pte, on: bool) {
        let value = self.model.entry(gpa);
        // Setting A in an empty entry would make it non-zero but unmapped,
        // which no caller does (map_at would then fail).
        let on = on && self.present(value).is_some();
        let (a, d) = (self.format.bit_accessed(), self.format.bit_dirty());
        let want = value & (a | d) != 0;
        let got = pte.reset_accessed(on);
        if got != want {
            self.fail(format!(
                "reset_accessed({gpa:#x}, {on}) = {got}, expected {want} (entry {value:#x})"
            ));
        }
        self.model
            .set_entry(gpa, (value & !(a | d)) | if on { a } else { 0 });
        self.check_entry(gpa, pte);
    }

    fn reset_dirty(&mut self, gpa: u64, pte: Pte, on: bool) {
        let value = self.model.entry(gpa);
        let on = on && self.present(value).is_some();
        let d = self.format.bit_dirty();
        let want = value & d != 0;
        let got = pte.reset_dirty(on);
        if got != want {
            self.fail(format!(
                "reset_dirty({gpa:#x}, {on}) = {got}, expected {want} (entry {value:#x})"
            ));
        }
        self.model
            .set_entry(gpa, (value & !d) | if on { d } else { 0 });
        self.check_entry(gpa, pte);
    }

    fn query(&mut self, gpa: u64, pte: Pte) {
        let value = self.model.entry(gpa);
        let want_a = value & self.format.bit_accessed() != 0;
        let want_d = value & self.format.bit_dirty() != 0;
        let want_m = self.present(value);
        let got = (
            pte.query_accessed(),
            pte.query_dirty(),
            pte.is_mapped(),
            pte.is_mapped_bare(),
        );
        let want = (want_a, want_d, want_m, want_m.is_some());
        if got != want {
            self.fail(format!(
                "query({gpa:#x}): (accessed, dirty, is_mapped, is_mapped without outputs) = \
                 {got:x?}, expected {want:x?} (entry {value:#x})"
            ));
        }
        self.check_entry(gpa, pte);
    }

    /// Dirty tracking (`vmspace_bits_operate`): over a region, query each
    /// entry's dirty bit and clear the set ones.
    fn scan_dirty(&mut self, s: u64, e: u64) {
        let d = self.format.bit_dirty();
        let want: BTreeSet<u64> = self
            .model
            .entries_in(s, e)
            .filter(|&(_, v)| v & d != 0)
            .map(|(g, _)| g)
            .collect();
        let mut got = BTreeSet::new();
        for (gpa, pte) in self.gpt().iter(s, e - s) {
            if pte.query_dirty() {
                if !pte.reset_dirty(false) {
                    self.fail(format!(
                        "reset_dirty({gpa:#x}) = false after query_dirty = true"
                    ));
                }
                got.insert(gpa);
            }
        }
        if got != want {
            self.fail(format!(
                "dirty pages in [{s:#x}, {e:#x}): {:x?}, expected {:x?}",
                got, want
            ));
        }
        for gpa in want {
            let v = self.model.entry(gpa);
            self.model.set_entry(gpa, v & !d);
        }
        self.iterate(s, e - s);
    }

    fn pmtp(&mut self, track: bool, hw_ad: bool) {
        library::set_hw_ad_supported(hw_ad);
        if self.gpt().can_track_dirty() != hw_ad {
            self.fail(format!("can_track_dirty() != {hw_ad}"));
        }
        let got = self.gpt().get_pmtp(track);
        let want = self.format.get_pmtp((self.root >> 12) as u64, track);
        if got != want {
            self.fail(format!("get_pmtp({track}) = {got:#x}, expected {want:#x}"));
        }
    }

    /// Reads the whole tree as the hardware sees it and checks it against
    /// the model; records the table addresses for the walk checks.
    fn check_tree(&mut self) {
        self.stats.tree_checks += 1;
        let tree = library::hw_tree(self.gpt(), self.format);
        if tree[0][0].addr != self.root {
            self.fail(format!(
                "the root table moved from {:#x} to {:#x}",
                self.root, tree[0][0].addr
            ));
        }
        let mut total = 0;
        // Model entries inside the leaf tables: must be all of them.
        let mut modelled = 0;
        for (lvl, tables) in tree.iter().enumerate() {
            let got: BTreeSet<u64> = tables.iter().map(|t| t.base).collect();
            let want = self.model.tables(lvl);
            if got != want {
                let missing: Vec<_> = want.difference(&got).take(8).collect();
                let extra: Vec<_> = got.difference(&want).take(8).collect();
                self.fail(format!(
                    "level {lvl}: {} tables, expected {}; missing {missing:x?}, extra {extra:x?}",
                    got.len(),
                    want.len()
                ));
            }
            total += tables.len();
            self.addrs[lvl] = tables.iter().map(|t| (t.base, t.addr)).collect();
            for t in tables {
                if lvl < 3 {
                    // Interior entries are empty or exactly a table link.
                    for (i, &e) in t.entries.iter().enumerate() {
                        if e == 0 {
                            continue;
                        }
                        match self.present(e) {
                            Some((pfn, _)) if e == self.format.map_table(pfn) => {}
                            _ => self.fail(format!(
                                "level {lvl} table at {:#x}, entry {i}: {e:#x} is not a table link",
                                t.base
                            )),
                        }
                    }
                } else {
                    let mut want = [0u64; 512];
                    for (gpa, v) in self.model.entries_in(t.base, t.base + (512 * PAGE)) {
                        want[index(3, gpa)] = v;
                        modelled += 1;
                    }
                    if let Some(i) = (0..512).find(|&i| t.entries[i] != want[i]) {
                        self.fail(format!(
                            "leaf entry of {:#x} is {:#x}, expected {:#x}",
                            t.base + i as u64 * PAGE,
                            t.entries[i],
                            want[i]
                        ));
                    }
                }
            }
        }
        if modelled != self.model.entry_count() {
            self.fail(format!(
                "the model holds {} entries outside every leaf table",
                self.model.entry_count() - modelled
            ));
        }
        let addrs: BTreeSet<usize> = tree.iter().flatten().map(|t| t.addr).collect();
        if addrs.len() != total {
            self.fail("two tables share a page".into());
        }
        let pages = library::kmem().live_pages - self.kmem0.live_pages;
        if pages != total as u64 {
            self.fail(format!(
                "the kernel holds {pages} table pages, the tree has {total} (model: {:?})",
                self.model.table_counts()
            ));
        }
    }

    /// Ends the case: either as the consumer does (unmap and vacate every
    /// region, leaving only the root, then free), or by freeing the GPT
    /// with everything still in it.  Then no allocation may be left.
    fn finish(mut self, free_populated: bool) -> Stats {
        if !free_populated {
            let regions: Vec<(u64, u64)> = self.model.regions().collect();
            for (s, e) in regions {
                self.at = format!("teardown of region [{s:#x}, {e:#x})");
                self.remove(s, e);
            }
            self.at = "after the teardown".into();
            if self.model.table_counts() != [1, 0, 0, 0] || self.model.entry_count() != 0 {
                self.fail("the model is not empty".into());
            }
            self.check_tree();
        }
        self.at = format!("vmm_gpt_free (free_populated {free_populated})");
        self.gpt.take().expect("the GPT is live").free();
        let k = library::kmem();
        if k.live_allocs != self.kmem0.live_allocs || k.live_bytes != self.kmem0.live_bytes {
            self.fail(format!(
                "{} allocations ({} bytes) left after vmm_gpt_free",
                k.live_allocs - self.kmem0.live_allocs,
                k.live_bytes - self.kmem0.live_bytes
            ));
        }
        self.stats
    }
}
