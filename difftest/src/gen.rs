//! Generating valid, bhyve-like operation sequences, from a seed or from
//! a fuzzer's bytes.
//!
//! The generator keeps the populated regions as vmspace would and emits
//! only operations valid for them: populates of new non-overlapping
//! regions, vacates of whole live regions, mappings inside live regions.
//! Its choices come from a [`Source`]: a seeded PRNG for [`generate`], the
//! input bytes for [`from_bytes`] (so that every byte string is a valid
//! sequence, and a fuzzer's mutations are changes of operations).
//!
//! Hostile values (`GenConfig::hostile_per_mille`) go to the calls that
//! user space and guests reach: walks at every depth, unmaps, faults, the
//! leaf operations, dirty tracking's iterations and `unmap_region`.  GPAs
//! at and above 2^48 (the original indexes tables with the GPA mod 2^48,
//! so these alias populated pages), at the top of the 64-bit space, past
//! every populated region, unaligned; ranges that start at or above 2^48,
//! cross a 2^48 boundary, lie past every populated region or are empty.
//! For non-DEBUG pairs only (`GenConfig::assert_only`), also the ranges
//! that only the original's `ASSERT`s reject: ranges that wrap past 2^64
//! (to exactly 0, i.e. ending at 2^64; to small values; to just below their
//! start) and unaligned ones.  The DEBUG original panics on those, so the
//! runner skips them in DEBUG pairs, and the generator does not make them.

use crate::regions::{self, Regions, Tables};
use crate::runner::PFN_MASK;
use crate::{Fill, Format, Op, Prot, GIB, GPA_END, LEVEL1, MIB, PAGE};

const RWX: Prot = Prot::all();
const RX: Prot = Prot::READ.union(Prot::EXEC);
const WX: Prot = Prot::WRITE.union(Prot::EXEC);
/// The protections a fill draws from: mostly all three, every other set
/// once (the same draws as when they were numbers: 7, 7, 7, 7, 3, 5, 1, 2,
/// 4, 6).
const FILL_PROTS: [Prot; 10] = [
    RWX,
    RWX,
    RWX,
    RWX,
    Prot::RW,
    RX,
    Prot::READ,
    Prot::WRITE,
    Prot::EXEC,
    WX,
];
/// The protections a fault draws from (7, 7, 7, 3, 5, 1).
const FAULT_PROTS: [Prot; 6] = [RWX, RWX, RWX, Prot::RW, RX, Prot::READ];

const M2: u64 = 2 * MIB;
const G512: u64 = 512 * GIB;

/// The shape of generated sequences: how much memory, how often which
/// kind of region.  Costs: each populated GiB holds 2 MiB of tables per
/// implementation, and iterating it (vacate, which unmaps it first) visits
/// 262144 entries in each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Cap of the live populated total (bytes).
    pub max_live_bytes: u64,
    /// Cap of live regions.
    pub max_regions: usize,
    /// Share of operations that populate, per mille (as many vacate).
    pub populate_per_mille: u32,
    /// Of populates, per mille: regions of about 1..=4 GiB.
    pub gib_per_mille: u32,
    /// Of populates, per mille: regions of 4..=64 GiB.
    pub big_per_mille: u32,
    /// Per million operations: a huge region, 64 GiB..=`max_huge` (across
    /// 512 GiB boundaries), while the cap allows.
    pub huge_per_million: u32,
    /// Largest huge region (bytes).
    pub max_huge: u64,
    /// Most pages an iteration (fill, track, unmap_region) covers inside
    /// populated regions.
    pub max_iter_pages: u64,
    /// Per million operations: free and allocate the GPT again.  This and
    /// `huge_per_million` add up to at most 1000.
    pub realloc_per_million: u32,
    /// Of walks, unmaps, faults, leaf operations, dirty tracking and
    /// `unmap_region`, per mille: hostile values (see the module docs).
    pub hostile_per_mille: u32,
    /// Of populates and vacates, per mille: degenerate ones (populates of
    /// empty or wrapping ranges, vacates of ranges that are not exactly a
    /// region; for non-DEBUG pairs also unaligned ones).
    pub degenerate_per_mille: u32,
    /// Whether to make inputs that only the original's `ASSERT`s reject
    /// (wrapping and unaligned iteration ranges, unaligned populates and
    /// vacates): for non-DEBUG pairs.
    /// `None`: when the implementation [`crate::run`] compares
    /// ([`crate::impls::library`]) is a non-DEBUG build.
    pub assert_only: Option<bool>,
}

impl GenConfig {
    /// [`generate`]'s: a few hundred GiB at most, huge regions rare.
    pub const DEFAULT: GenConfig = GenConfig {
        max_live_bytes: 320 * GIB,
        max_regions: 48,
        populate_per_mille: 25,
        gib_per_mille: 10,
        big_per_mille: 1,
        huge_per_million: 2,
        max_huge: 600 * GIB,
        max_iter_pages: 1024,
        realloc_per_million: 200,
        hostile_per_mille: 100,
        degenerate_per_mille: 60,
        assert_only: None,
    };

    /// [`from_bytes`]'s: small enough for many executions per second.
    pub const FUZZ: GenConfig = GenConfig {
        max_live_bytes: 8 * GIB,
        max_regions: 24,
        populate_per_mille: 60,
        gib_per_mille: 30,
        big_per_mille: 0,
        huge_per_million: 0,
        max_huge: 0,
        max_iter_pages: 600,
        realloc_per_million: 900,
        hostile_per_mille: 150,
        degenerate_per_mille: 120,
        assert_only: None,
    };

    /// For slow runs (valgrind): at most a few GiB.
    pub const SMALL: GenConfig = GenConfig {
        max_live_bytes: 4 * GIB,
        max_regions: 24,
        populate_per_mille: 40,
        gib_per_mille: 10,
        big_per_mille: 0,
        huge_per_million: 0,
        max_huge: 0,
        max_iter_pages: 512,
        realloc_per_million: 1000,
        hostile_per_mille: 100,
        degenerate_per_mille: 60,
        assert_only: None,
    };

    /// This configuration, making `ASSERT`-only inputs or not.
    pub const fn with_assert_only(mut self, on: bool) -> GenConfig {
        self.assert_only = Some(on);
        self
    }

    /// Whether `ASSERT`-only inputs are made (resolving `None`).
    pub fn makes_assert_only(&self) -> bool {
        self.assert_only
            .unwrap_or_else(|| !crate::impls::library().debug)
    }
}

/// Where the generator's choices come from.
trait Source {
    /// `n` (1..=64) random bits.
    fn bits(&mut self, n: u32) -> u64;

    /// Uniform-ish in `0..n` (0 when n <= 1).
    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let b = 64 - (n - 1).leading_zeros();
        self.bits(b) % n
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True `per_mille` times in 1000.
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    fn flip(&mut self) -> bool {
        self.bits(1) == 1
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// xoshiro256** seeded through splitmix64.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
}

impl Source for Rng {
    fn bits(&mut self, n: u32) -> u64 {
        self.next() >> (64 - n.clamp(1, 64))
    }
}

/// A fuzzer's bytes, read as few at a time as each choice needs; zeros
/// once they run out.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }
}

impl Source for Bytes<'_> {
    fn bits(&mut self, n: u32) -> u64 {
        let n = n.clamp(1, 64);
        let nbytes = n.div_ceil(8) as usize;
        let mut v = 0u64;
        for i in 0..nbytes {
            let b = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            v |= u64::from(b) << (8 * i);
        }
        if n == 64 {
            v
        } else {
            v & ((1 << n) - 1)
        }
    }
}

struct Gen<'c> {
    cfg: &'c GenConfig,
    /// `cfg.makes_assert_only()`.
    assert_only: bool,
    format: Format,
    regions: Regions,
    /// The model of the original's tables, as the runner keeps it.
    tables: Tables,
    /// Recently mapped (or faulted) pages: targets for A/D, reset, unmap.
    recent: Vec<u64>,
    next_recent: usize,
}

const RECENT: usize = 256;

impl Gen<'_> {
    fn remember(&mut self, gpa: u64) {
        if self.recent.len() < RECENT {
            self.recent.push(gpa);
        } else {
            self.recent[self.next_recent] = gpa;
            self.next_recent = (self.next_recent + 1) % RECENT;
        }
    }

    fn op(&mut self, s: &mut impl Source) -> Op {
        let c = self.cfg;
        let r = s.below(1000) as u32;
        // Rare events, per million operations: one in a thousand, then
        // their share of a thousand.
        if r == 999 {
            let m = s.below(1000) as u32;
            if m < c.realloc_per_million {
                self.regions.clear();
                self.tables.clear();
                self.recent.clear();
                return Op::Realloc;
            }
            if m < c.realloc_per_million + c.huge_per_million {
                if let Some(op) = self.populate_huge(s) {
                    return op;
                }
            }
        }
        let p = c.populate_per_mille;
        if r < p && s.chance(c.degenerate_per_mille) {
            if let Some(op) = self.degenerate_populate(s) {
                return op;
            }
        }
        if r < p || (self.regions.is_empty() && r < 700) {
            if let Some(op) = self.populate(s) {
                return op;
            }
        }
        if r < 2 * p && !self.regions.is_empty() {
            if s.chance(c.degenerate_per_mille) {
                if let Some(op) = self.vacate_range(s) {
                    return op;
                }
            }
            return self.vacate(s);
        }
        match s.below(100) {
            0..=13 => self.fill(s),
            14..=27 => self.fault(s),
            28..=38 => Op::Walk {
                gpa: if self.hostile(s) {
                    self.hostile_gpa(s)
                } else {
                    self.any_gpa(s)
                },
                depth: s.below(u64::from(LEVEL1) + 1) as u32,
            },
            39..=44 => Op::IsMapped {
                gpa: self.leaf_gpa(s),
                want: s.below(4) as u8,
            },
            45..=56 => {
                let (accessed, dirty) = match s.below(3) {
                    0 => (true, false),
                    1 => (false, true),
                    _ => (true, true),
                };
                Op::HwSetAd {
                    gpa: self.leaf_gpa(s),
                    accessed,
                    dirty,
                }
            }
            57..=62 => Op::ResetAccessed {
                gpa: self.leaf_gpa(s),
                on: s.flip(),
            },
            63..=68 => Op::ResetDirty {
                gpa: self.leaf_gpa(s),
                on: s.flip(),
            },
            69..=73 => Op::Query {
                gpa: self.leaf_gpa(s),
            },
            74..=79 => {
                let (addr, len) = if self.hostile(s) {
                    self.hostile_range(s)
                } else {
                    self.iter_range(s)
                };
                let reset = match s.below(5) {
                    0 | 1 => None,
                    2 | 3 => Some(false),
                    _ => Some(true),
                };
                Op::Track { addr, len, reset }
            }
            80..=87 => {
                if self.hostile(s) {
                    let gpa = self.hostile_gpa(s);
                    return Op::Unmap { gpa };
                }
                let gpa = self.target_gpa(s) & !(PAGE - 1);
                Op::Unmap {
                    gpa: gpa.min(GPA_END - PAGE),
                }
            }
            88..=95 => {
                if self.hostile(s) {
                    let (addr, len) = self.hostile_range(s);
                    return Op::UnmapRegion { addr, len };
                }
                self.unmap_region(s)
            }
            96 => Op::GetPmtp {
                track_dirty: s.flip(),
            },
            97 => Op::CanTrackDirty {
                hw_ad: !s.chance(300),
            },
            98 => Op::Check,
            _ => self.fault(s),
        }
    }

    fn pages(s: &mut impl Source, lo: u64, hi: u64) -> u64 {
        s.range(lo, hi) * PAGE
    }

    /// A region length, by the configured mix.
    fn region_len(&self, s: &mut impl Source) -> u64 {
        let c = self.cfg;
        let r = s.below(1000) as u32;
        let mut len = if r < c.big_per_mille {
            s.range(4, 64) * GIB
        } else if r < c.big_per_mille + c.gib_per_mille {
            s.range(1, 4) * GIB
        } else {
            match s.below(100) {
                0..=34 => Self::pages(s, 1, 16),
                35..=59 => Self::pages(s, 1, 1024),
                60..=89 => s.range(1, 16) * M2,
                _ => s.range(1, 64) * M2,
            }
        };
        // Off the boundaries now and then.
        match s.below(10) {
            0 => len += Self::pages(s, 1, 16),
            1 if len > 16 * PAGE => len -= Self::pages(s, 1, 16),
            _ => {}
        }
        len
    }

    /// Where to put a new region of `len` bytes (not yet checked).
    fn region_addr(&self, s: &mut impl Source, len: u64) -> u64 {
        let n = self.regions.len() as u64;
        match s.below(100) {
            // Right after a live region (sharing its last tables), or a
            // few pages after it.
            0..=24 if n > 0 => {
                let (a, l) = self.regions.get(s.below(n) as usize);
                let gap = if s.flip() { 0 } else { Self::pages(s, 0, 3) };
                a + l + gap
            }
            // Right before one.
            25..=34 if n > 0 => {
                let (a, _) = self.regions.get(s.below(n) as usize);
                a.saturating_sub(len)
            }
            // At, across or up to a 2 MiB, 1 GiB or 512 GiB boundary.
            0..=54 => {
                let unit = s.pick(&[M2, M2, GIB, GIB, G512]);
                let max_k = GPA_END / unit;
                let k = if s.flip() { s.below(8) } else { s.below(max_k) };
                let b = k * unit;
                match s.below(3) {
                    0 => b,
                    1 => b.saturating_sub((len / 2) & !(PAGE - 1)),
                    _ => b.saturating_sub(len),
                }
            }
            // Low memory.
            55..=69 => Self::pages(s, 0, (4 * GIB) / PAGE),
            // The top of the 48-bit space.
            70..=79 => GPA_END.saturating_sub(len + Self::pages(s, 0, 16)),
            _ => Self::pages(s, 0, GPA_END.saturating_sub(len) / PAGE),
        }
    }

    fn try_populate(&mut self, s: &mut impl Source, len: u64) -> Option<Op> {
        if self.regions.len() >= self.cfg.max_regions
            || self.regions.live_bytes() + len > self.cfg.max_live_bytes
        {
            return None;
        }
        for _ in 0..8 {
            let addr = self.region_addr(s, len);
            if self.regions.fits(addr, len) {
                self.regions.insert(addr, len);
                self.tables.populate(addr, len);
                return Some(Op::Populate { addr, len });
            }
        }
        None
    }

    fn populate(&mut self, s: &mut impl Source) -> Option<Op> {
        for _ in 0..4 {
            let len = self.region_len(s);
            if let Some(op) = self.try_populate(s, len) {
                return Some(op);
            }
        }
        None
    }

    fn populate_huge(&mut self, s: &mut impl Source) -> Option<Op> {
        let max = self.cfg.max_huge / GIB;
        if max < 64 {
            return None;
        }
        let len = s.range(64, max) * GIB;
        self.try_populate(s, len)
    }

    fn vacate(&mut self, s: &mut impl Source) -> Op {
        let (addr, len) = self
            .regions
            .get(s.below(self.regions.len() as u64) as usize);
        let plan = self.tables.vacate_plan(addr, len);
        self.tables.vacate_apply(&plan);
        self.regions.remove(addr);
        self.recent.clear();
        Op::Vacate { addr }
    }

    /// A populate that only creates tables (an empty range, one that wraps
    /// past 2^64; for non-DEBUG pairs an unaligned one covering no whole
    /// page) or, for non-DEBUG pairs, an unaligned new region: inside a
    /// region, next to one, past every region, anywhere.
    fn degenerate_populate(&mut self, s: &mut impl Source) -> Option<Op> {
        for _ in 0..4 {
            let base = match s.below(5) {
                0 => self.random_region(s).map(|r| Self::page_in(s, r)),
                1 => self
                    .random_region(s)
                    .map(|(a, l)| a + l + Self::pages(s, 0, 3)),
                2 => self
                    .random_region(s)
                    .map(|(a, _)| a.saturating_sub(Self::pages(s, 1, 3))),
                3 => Some(self.past_regions(s)),
                _ => Some(Self::pages(s, 0, GPA_END / PAGE - 1)),
            }
            .unwrap_or(0);
            let kinds = if self.assert_only { 5 } else { 3 };
            let (addr, len) = match s.below(kinds) {
                0 => (base, 0),
                // Wrapping to just below the start, or to a small value.
                1 => (base, 0u64.wrapping_sub(Self::pages(s, 1, 16))),
                2 => (base, Self::pages(s, 0, 16).wrapping_sub(base + PAGE)),
                // Unaligned, covering no whole page.
                3 => (base + s.range(1, PAGE - 1), s.below(PAGE / 2)),
                // An unaligned new region.
                _ => {
                    let len = self.region_len(s);
                    let addr = self.region_addr(s, len);
                    let off = s.range(1, PAGE - 1);
                    match s.below(3) {
                        0 => (addr + off, len),
                        1 => (addr, len + off),
                        _ => (addr + off, len - off),
                    }
                }
            };
            let debug = !self.assert_only;
            let max = self.cfg.max_live_bytes;
            if let Some(region) = regions::populate_check(&self.regions, addr, len, debug, max) {
                if region.is_some() && self.regions.len() >= self.cfg.max_regions {
                    continue;
                }
                self.tables.populate(addr, len);
                if let Some((a, l)) = region {
                    self.regions.insert(a, l);
                }
                return Some(Op::Populate { addr, len });
            }
        }
        None
    }

    /// Pages `[x, y)` of a region of `pages` pages, `x < y`.
    fn part(s: &mut impl Source, pages: u64) -> (u64, u64) {
        let x = s.below(pages);
        let y = s.range(x + 1, pages);
        (x, y)
    }

    /// A vacate of a range that is not exactly a region, valid for the
    /// model ([`regions::vacate_check`]): a part of a region, a region and
    /// the ones after it with the gaps between, from a gap up into a
    /// region, a region and beyond, an empty range; for non-DEBUG pairs
    /// also unaligned ones.  The last attempt is a part of a region, which
    /// is always valid.
    fn vacate_range(&mut self, s: &mut impl Source) -> Option<Op> {
        let sorted = self.regions.sorted();
        let n = sorted.len() as u64;
        if n == 0 {
            return None;
        }
        let debug = !self.assert_only;
        for attempt in 0..5 {
            let i = s.below(n) as usize;
            let (a, l) = sorted[i];
            let pages = l / PAGE;
            let kinds = if self.assert_only { 7 } else { 6 };
            let kind = if attempt == 4 { 0 } else { s.below(kinds) };
            let (addr, end) = match kind {
                0 => {
                    let (x, y) = Self::part(s, pages);
                    (a + x * PAGE, a + y * PAGE)
                }
                1 => {
                    if s.flip() {
                        (a, a + Self::pages(s, 1, pages))
                    } else {
                        (a + s.below(pages) * PAGE, a + l)
                    }
                }
                2 => {
                    let j = s.range(i as u64, (i as u64 + 3).min(n - 1)) as usize;
                    (a, sorted[j].0 + sorted[j].1)
                }
                3 => {
                    let before = if i > 0 {
                        sorted[i - 1].0 + sorted[i - 1].1
                    } else {
                        0
                    };
                    (before + s.below((a - before) / PAGE + 1) * PAGE, a + l)
                }
                4 => (a, (a + l + Self::pages(s, 1, 1024)).min(GPA_END)),
                5 => {
                    let g = a + s.below(pages) * PAGE;
                    (g, g)
                }
                _ => {
                    let (x, y) = Self::part(s, pages);
                    let (x, y) = (a + x * PAGE, a + y * PAGE);
                    let off = s.range(1, PAGE - 1);
                    match s.below(3) {
                        0 => (x + off, y),
                        1 => (x, y + off),
                        _ => (x + off, y - PAGE + off),
                    }
                }
            };
            let len = end.saturating_sub(addr);
            if let Some(plan) = regions::vacate_check(&self.tables, &self.regions, addr, len, debug)
            {
                self.tables.vacate_apply(&plan);
                regions::depopulate(&mut self.regions, &plan);
                self.recent.clear();
                return Some(Op::VacateRange { addr, len });
            }
        }
        None
    }

    fn random_region(&self, s: &mut impl Source) -> Option<(u64, u64)> {
        if self.regions.is_empty() {
            return None;
        }
        Some(
            self.regions
                .get(s.below(self.regions.len() as u64) as usize),
        )
    }

    /// A page in a region: its first or last, one near a 2 MiB boundary, or
    /// any.
    fn page_in(s: &mut impl Source, (a, l): (u64, u64)) -> u64 {
        let pages = l / PAGE;
        match s.below(5) {
            0 => a,
            1 => a + l - PAGE,
            2 => {
                let b = ((a + s.below(pages) * PAGE) & !(M2 - 1)) + M2;
                let g = b.wrapping_sub(PAGE) + Self::pages(s, 0, 1);
                if g >= a && g < a + l {
                    g
                } else {
                    a
                }
            }
            _ => a + s.below(pages) * PAGE,
        }
    }

    /// Any GPA, biased to the interesting places; sometimes unaligned,
    /// sometimes above 2^48 (walks only).
    fn any_gpa(&self, s: &mut impl Source) -> u64 {
        let g = match s.below(20) {
            0..=9 => match self.random_region(s) {
                Some(r) => Self::page_in(s, r),
                None => s.below(GPA_END),
            },
            10 | 11 => s.pick(&[M2, GIB, G512]) * s.below(8),
            12 => GPA_END - Self::pages(s, 1, 1024),
            13 => s.below(4 * GIB),
            14 => s.bits(64),
            15 | 16 if !self.recent.is_empty() => {
                self.recent[s.below(self.recent.len() as u64) as usize]
            }
            _ => s.below(GPA_END),
        };
        if s.chance(100) {
            g | s.below(PAGE)
        } else {
            g
        }
    }

    /// A GPA for operations on mapped pages: mostly recently mapped ones.
    fn target_gpa(&self, s: &mut impl Source) -> u64 {
        if !self.recent.is_empty() && s.below(10) < 6 {
            return self.recent[s.below(self.recent.len() as u64) as usize];
        }
        match self.random_region(s) {
            Some(r) if s.below(10) < 8 => Self::page_in(s, r),
            _ => self.any_gpa(s) % GPA_END,
        }
    }

    /// Whether this operation gets hostile values.
    fn hostile(&self, s: &mut impl Source) -> bool {
        s.chance(self.cfg.hostile_per_mille)
    }

    /// For the leaf operations (is_mapped, A/D, resets, queries): mostly a
    /// mapped page, sometimes a hostile GPA.
    fn leaf_gpa(&self, s: &mut impl Source) -> u64 {
        if self.hostile(s) {
            self.hostile_gpa(s)
        } else {
            self.target_gpa(s)
        }
    }

    /// `gpa` (mod 2^48) in another 2^48 block: the next, the last, or any.
    fn alias(gpa: u64, s: &mut impl Source) -> u64 {
        let k = match s.below(4) {
            0 => 1,
            1 => 0xffff,
            _ => s.range(1, 0xffff),
        };
        (k << 48) | (gpa & (GPA_END - 1))
    }

    /// A GPA past every populated region (below 2^48): right after the
    /// last one (in its tables) or anywhere beyond.
    fn past_regions(&self, s: &mut impl Source) -> u64 {
        let end = self.regions.end();
        if s.flip() {
            end + Self::pages(s, 0, 1024)
        } else {
            end + Self::pages(s, 0, (GPA_END - end) / PAGE)
        }
    }

    /// A hostile GPA, as a guest's exit or a caller could pass it: an alias
    /// (at or above 2^48) of a mapped or populated page, at or just below a
    /// 2^48 boundary, at the top of the 64-bit space, past every populated
    /// region, anything; now and then unaligned.
    fn hostile_gpa(&self, s: &mut impl Source) -> u64 {
        let g = match s.below(10) {
            0..=3 => Self::alias(self.target_gpa(s), s),
            4 => GPA_END + Self::pages(s, 0, 16),
            5 => (s.range(1, 0xffff) << 48) - Self::pages(s, 1, 16),
            6 => 0u64.wrapping_sub(Self::pages(s, 1, 16)),
            7 => self.past_regions(s),
            8 => s.bits(64),
            _ => u64::MAX - s.below(PAGE),
        };
        if s.chance(200) {
            g | s.below(PAGE)
        } else {
            g
        }
    }

    /// A hostile iteration range (dirty tracking, `unmap_region`): an
    /// iteration range moved to another 2^48 block (aliasing the same
    /// entries), across a 2^48 boundary, past every populated region (up
    /// to 2^48, or to just below 2^64), empty, or ending at the last page
    /// below 2^64.  With `assert_only` (non-DEBUG pairs) also ranges that
    /// wrap past 2^64 (to exactly 0, to a small value, to just below their
    /// start) and unaligned ones.  The iteration's cost stays bounded as
    /// [`Gen::iter_range`]'s.
    fn hostile_range(&self, s: &mut impl Source) -> (u64, u64) {
        let max = self.cfg.max_iter_pages.max(1);
        let kinds = if self.assert_only { 10 } else { 6 };
        let (addr, len) = match s.below(kinds) {
            0 | 1 => {
                let (a, l) = self.iter_range(s);
                (Self::alias(a, s), l)
            }
            2 => {
                let boundary = s.range(1, 0xffff) << 48;
                let before = Self::pages(s, 0, 64);
                (boundary - before, before + Self::pages(s, 1, max))
            }
            3 => {
                let start = self.past_regions(s);
                let len = match s.below(3) {
                    0 => Self::pages(s, 1, max),
                    1 => GPA_END.saturating_sub(start).max(PAGE),
                    _ => u64::MAX - start - (PAGE - 1),
                };
                (start, len)
            }
            4 => {
                let a = if s.flip() {
                    self.target_gpa(s)
                } else {
                    self.hostile_gpa(s)
                };
                (a & !(PAGE - 1), 0)
            }
            5 => {
                let k = Self::pages(s, 1, 64);
                (0u64.wrapping_sub(k), k - PAGE)
            }
            // ASSERT-only from here on.
            6 => {
                // Ending at exactly 2^64: wrapping to 0.
                let a = if s.flip() {
                    0u64.wrapping_sub(Self::pages(s, 1, 1024))
                } else {
                    (0xffff << 48) | (self.target_gpa(s) & (GPA_END - 1) & !(PAGE - 1))
                };
                (a, a.wrapping_neg())
            }
            7 => {
                // From high up to a small value.
                let a = if s.flip() {
                    0u64.wrapping_sub(Self::pages(s, 1, 1024))
                } else {
                    Self::alias(self.target_gpa(s), s) & !(PAGE - 1)
                };
                let to = match s.below(4) {
                    0 => Self::pages(s, 1, 16),
                    1 => s.pick(&[M2, GIB, G512]),
                    _ => {
                        let (ra, rl) = self.random_region(s).unwrap_or((0, PAGE));
                        ra + rl
                    }
                };
                (a, to.wrapping_sub(a))
            }
            8 => {
                // To just below its start.
                let (a, _) = self.iter_range(s);
                (a, 0u64.wrapping_sub(Self::pages(s, 1, 16)))
            }
            _ => {
                let (a, l) = self.iter_range(s);
                let off = s.range(1, PAGE - 1);
                match s.below(3) {
                    0 => (a + off, l),
                    1 => (a, l - PAGE + off),
                    _ => (a + off, l + off),
                }
            }
        };
        let plain = addr.is_multiple_of(PAGE)
            && len.is_multiple_of(PAGE)
            && addr.checked_add(len).is_some();
        if (!plain && !self.assert_only) || self.iterated_in(addr, len) > 64 * max * PAGE {
            return self.iter_range(s);
        }
        (addr, len)
    }

    /// A page-aligned range for an iteration: mostly inside one region,
    /// sometimes running past its end; at most `max_iter_pages` pages.
    fn iter_range(&self, s: &mut impl Source) -> (u64, u64) {
        let max = self.cfg.max_iter_pages.max(1);
        let Some((a, l)) = self.random_region(s) else {
            // (At least a page: callers remember its last page.)
            let (addr, len) = (Self::pages(s, 0, (4 * GIB) / PAGE), Self::pages(s, 0, max));
            return (addr, len.max(PAGE));
        };
        let start = if s.flip() {
            a
        } else {
            Self::page_in(s, (a, l))
        };
        let room = (a + l - start) / PAGE;
        let pages = if s.chance(850) {
            s.range(1, room.min(max))
        } else {
            s.range(1, max)
        };
        (start, (pages * PAGE).min(GPA_END - start))
    }

    fn fill(&mut self, s: &mut impl Source) -> Op {
        let (addr, len) = self.iter_range(s);
        let prot = s.pick(&FILL_PROTS);
        let attr = self.attr(s);
        let skip = match s.below(10) {
            0..=5 => 0,
            6 => 0xaaaa_aaaa_aaaa_aaaa,
            7 => 1 << s.below(64),
            _ => s.bits(64),
        };
        let pfn = s.bits(40) & PFN_MASK;
        self.remember(addr);
        self.remember(addr + len - PAGE);
        self.remember(addr + s.below(len / PAGE) * PAGE);
        Op::Fill(Fill {
            addr,
            len,
            prot,
            attr,
            skip,
            pfn,
        })
    }

    fn attr(&self, s: &mut impl Source) -> u8 {
        let types = self.format.memory_types();
        if s.flip() {
            6
        } else {
            s.pick(types)
        }
    }

    fn fault(&mut self, s: &mut impl Source) -> Op {
        if self.hostile(s) {
            // A VM exit's GPA: page-aligned, anywhere in 64 bits.
            let gpa = self.hostile_gpa(s) & !(PAGE - 1);
            return Op::Fault {
                gpa,
                prot: s.pick(&FAULT_PROTS),
                attr: self.attr(s),
                pfn: s.bits(40),
            };
        }
        let mut gpa = match self.random_region(s) {
            Some(r) if s.below(10) < 9 => Self::page_in(s, r),
            _ => self.any_gpa(s) % GPA_END,
        };
        if s.chance(100) {
            gpa |= s.below(PAGE);
        }
        self.remember(gpa & !(PAGE - 1));
        Op::Fault {
            gpa,
            prot: s.pick(&FAULT_PROTS),
            attr: self.attr(s),
            pfn: s.bits(40),
        }
    }

    /// Populated bytes that an iteration of `[addr, addr + len)` visits.
    /// The original's iteration ends at the end of the 2^48 block it
    /// starts in (its root table's last entry), visiting the entries of
    /// the GPAs mod 2^48; a wrapping range visits nothing (non-DEBUG; the
    /// DEBUG original panics).
    fn iterated_in(&self, addr: u64, len: u64) -> u64 {
        let Some(end) = addr.checked_add(len) else {
            return 0;
        };
        let block = addr & !(GPA_END - 1);
        let stop = block.checked_add(GPA_END).map_or(end, |b| end.min(b));
        self.regions.populated_in(addr - block, stop - block)
    }

    fn unmap_region(&mut self, s: &mut impl Source) -> Op {
        let max = self.cfg.max_iter_pages.max(1) * PAGE;
        let (addr, len) = match (s.below(10), self.random_region(s)) {
            (0..=4, _) => self.iter_range(s),
            // Across a region's end into what follows.
            (5 | 6, Some((a, l))) => {
                let before = Self::pages(s, 0, (l / PAGE).min(64));
                let start = a + l - before;
                (
                    start,
                    (before + Self::pages(s, 1, 1024)).min(GPA_END - start),
                )
            }
            // A whole region, when not too big.
            (7, Some((a, l))) if l <= 64 * max => (a, l),
            // Anywhere, up to 1 TiB.
            _ => {
                let a = s.below(GPA_END / PAGE) * PAGE;
                (a, (Self::pages(s, 1, 1 << 28)).min(GPA_END - a))
            }
        };
        // Keep the iteration's cost bounded: few populated pages inside.
        if self.iterated_in(addr, len) > 64 * max {
            let (a, l) = self.iter_range(s);
            return Op::UnmapRegion { addr: a, len: l };
        }
        Op::UnmapRegion { addr, len }
    }
}

impl<'c> Gen<'c> {
    fn new(cfg: &'c GenConfig, format: Format) -> Self {
        Gen {
            cfg,
            assert_only: cfg.makes_assert_only(),
            format,
            regions: Regions::default(),
            tables: Tables::default(),
            recent: Vec::new(),
            next_recent: 0,
        }
    }
}

/// A random, valid, bhyve-like sequence of `n_ops` operations from `seed`
/// ([`GenConfig::DEFAULT`]).
pub fn generate(seed: u64, n_ops: usize, format: Format) -> Vec<Op> {
    generate_with(seed, n_ops, format, &GenConfig::DEFAULT)
}

/// [`generate`] with another configuration.
pub fn generate_with(seed: u64, n_ops: usize, format: Format, cfg: &GenConfig) -> Vec<Op> {
    let mut rng = Rng::new(seed ^ ((format as u64) << 63));
    let mut g = Gen::new(cfg, format);
    (0..n_ops).map(|_| g.op(&mut rng)).collect()
}

/// Most operations [`from_bytes`] makes of one input.
pub const FROM_BYTES_MAX_OPS: usize = 4096;

/// Any bytes to a format and a valid sequence ([`GenConfig::FUZZ`]): the
/// first byte picks the format, the rest drive the generator's choices
/// until they run out (at most [`FROM_BYTES_MAX_OPS`] operations).
pub fn from_bytes(data: &[u8]) -> (Format, Vec<Op>) {
    from_bytes_with(data, &GenConfig::FUZZ)
}

/// [`from_bytes`] with another configuration.
pub fn from_bytes_with(data: &[u8], cfg: &GenConfig) -> (Format, Vec<Op>) {
    let format = match data.first() {
        Some(b) if b & 1 == 1 => Format::Rvi,
        _ => Format::Ept,
    };
    let mut src = Bytes {
        data: data.get(1..).unwrap_or(&[]),
        pos: 0,
    };
    let mut g = Gen::new(cfg, format);
    let mut ops = Vec::new();
    while !src.exhausted() && ops.len() < FROM_BYTES_MAX_OPS {
        ops.push(g.op(&mut src));
    }
    (format, ops)
}
