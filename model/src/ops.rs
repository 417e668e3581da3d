//! Operations, as proptest generates them: bhyve-like intents that the
//! runner ([`crate::run`]) resolves against the model's current state, so
//! every sequence, and every sequence proptest shrinks it to, is valid.
//!
//! An operation names regions by index (modulo the number populated) and
//! addresses relative to regions or to interesting boundaries; one that
//! cannot apply (a populate that would overlap, a fault without a region)
//! is skipped.

use proptest::prelude::*;

use crate::library::{Format, Prot, MTRR_UC, MTRR_WB};
use crate::model::{PAGE, SPACE_END};

/// Where a new region starts.
#[derive(Clone, Debug)]
pub enum Base {
    /// `k` units of `1 << shift` (2 MiB, 1 GiB, 512 GiB) plus `delta`
    /// pages (which may be negative).
    Boundary { shift: u32, k: u64, delta: i64 },
    /// Low memory: page `page`.
    Low { page: u64 },
    /// The top of the 48-bit space: the region ends `gap` pages below it.
    Top { gap: u64 },
    /// Right after the `region`-th region, `gap` pages on (often sharing
    /// its last leaf table).
    After { region: usize, gap: u64 },
    /// Right before the `region`-th region, `gap` pages below it.
    Before { region: usize, gap: u64 },
}

/// A GPA to operate on.
#[derive(Clone, Debug)]
pub enum Target {
    /// Page `page` (modulo its size) of the `region`-th region.
    In { region: usize, page: u64 },
    /// `pages` pages outside the `region`-th region: below its start
    /// (`below`) or from its end on; often in a leaf table it shares.
    Near {
        region: usize,
        below: bool,
        pages: u64,
    },
    /// Any page of the 48-bit space.
    Anywhere { page: u64 },
}

/// A page mapping: host PFN, protection, memory type.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub pfn: u64,
    pub prot: Prot,
    pub attr: u8,
}

/// One operation on the GPT.
#[derive(Clone, Debug)]
pub enum Op {
    /// `vmspace_map`: populate a new region (skipped if it would overlap
    /// one or leave the 48-bit space).
    Populate { base: Base, pages: u64 },
    /// `vmspace_populate`: iterate part of a region (`first`, `count`
    /// pages) and `map_at` each entry, skipping every `skip`-th (0: none).
    MapRange {
        region: usize,
        first: u64,
        count: u64,
        skip: u8,
        map: Mapping,
    },
    /// A page fault: walk to `LEVEL1`, `is_mapped`, `map_at` if empty (or
    /// a losing `map_at` of the same page if mapped).
    Fault { at: Target, map: Mapping },
    /// `vmm_gpt_walk` to a depth, checked at every level.
    Walk { at: Target, depth: u32 },
    /// Iterate a range (`pages` pages from the target) and check the yield.
    Iterate { at: Target, pages: u64 },
    /// `vmm_gpt_unmap` of one page.
    Unmap { at: Target },
    /// `vmm_gpt_unmap_region` over an arbitrary range.
    UnmapRange { at: Target, pages: u64 },
    /// `vmspace_unmap`: `unmap_region` + `vacate_region` of a whole region.
    Remove { region: usize },
    /// The hardware sets accessed and/or dirty in a mapped leaf entry.
    HwSetAd {
        at: Target,
        accessed: bool,
        dirty: bool,
    },
    /// `vmm_gpte_reset_accessed` (`on` only on mapped entries).
    ResetAccessed { at: Target, on: bool },
    /// `vmm_gpte_reset_dirty` (`on` only on mapped entries).
    ResetDirty { at: Target, on: bool },
    /// `vmm_gpte_query_accessed`, `vmm_gpte_query_dirty`, `vmm_gpte_is_mapped`.
    Query { at: Target },
    /// Dirty tracking over a region: iterate, query and reset dirty bits.
    ScanDirty { region: usize },
    /// `vmm_gpt_get_pmtp` and `vmm_gpt_can_track_dirty`, with the format's
    /// A/D support switched to `hw_ad`.
    Pmtp { track: bool, hw_ad: bool },
    /// Populate (inside a region) or vacate an empty range: nothing changes.
    Empty { at: Target, vacate: bool },
}

impl Op {
    /// The variant's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Populate { .. } => "Populate",
            Op::MapRange { .. } => "MapRange",
            Op::Fault { .. } => "Fault",
            Op::Walk { .. } => "Walk",
            Op::Iterate { .. } => "Iterate",
            Op::Unmap { .. } => "Unmap",
            Op::UnmapRange { .. } => "UnmapRange",
            Op::Remove { .. } => "Remove",
            Op::HwSetAd { .. } => "HwSetAd",
            Op::ResetAccessed { .. } => "ResetAccessed",
            Op::ResetDirty { .. } => "ResetDirty",
            Op::Query { .. } => "Query",
            Op::ScanDirty { .. } => "ScanDirty",
            Op::Pmtp { .. } => "Pmtp",
            Op::Empty { .. } => "Empty",
        }
    }
}

/// A whole case: operations, then how the GPT ends.
#[derive(Clone, Debug)]
pub struct Case {
    pub ops: Vec<Op>,
    /// Free the GPT with whatever is still populated and mapped, instead of
    /// unmapping and vacating every region first as the consumer does.
    pub free_populated: bool,
}

fn base() -> impl Strategy<Value = Base> {
    prop_oneof![
        3 => (prop_oneof![Just(21u32), Just(30), Just(39)], 0u64..8, -4i64..=4)
            .prop_map(|(shift, k, delta)| Base::Boundary { shift, k, delta }),
        1 => (0u64..1024).prop_map(|page| Base::Low { page }),
        1 => prop_oneof![Just(0u64), 0u64..600].prop_map(|gap| Base::Top { gap }),
        2 => (any::<usize>(), prop_oneof![Just(0u64), 0u64..600])
            .prop_map(|(region, gap)| Base::After { region, gap }),
        1 => (any::<usize>(), prop_oneof![Just(0u64), 0u64..600])
            .prop_map(|(region, gap)| Base::Before { region, gap }),
    ]
}

/// Region sizes in pages: mostly small, some around 2 MiB multiples, a few
/// up to 1 GiB.
fn region_pages() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(1u64),
        4 => 1u64..=16,
        3 => 1u64..=2048,
        2 => (1u64..=4, -2i64..=2).prop_map(|(n, d)| (n * 512).saturating_add_signed(d).max(1)),
        1 => (1u64..=512).prop_map(|n| n * 512),
        1 => Just(1u64 << 18),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (any::<usize>(), any::<u64>()).prop_map(|(region, page)| Target::In { region, page }),
        3 => (any::<usize>(), any::<bool>(), prop_oneof![1u64..=8, 1u64..=1024])
            .prop_map(|(region, below, pages)| Target::Near { region, below, pages }),
        1 => (0u64..SPACE_END / PAGE).prop_map(|page| Target::Anywhere { page }),
    ]
}

fn mapping(format: Format) -> impl Strategy<Value = Mapping> {
    let attr = match format {
        // The EPT format takes any memory type (it keeps the low 3 bits).
        Format::Ept => prop_oneof![Just(MTRR_WB), Just(MTRR_UC), any::<u8>()].boxed(),
        Format::Rvi => prop_oneof![Just(MTRR_WB), Just(MTRR_UC)].boxed(),
    };
    // A page is mapped with some access: PROT_NONE is never mapped.
    (0u64..1 << 36, 1u32..=7, attr).prop_map(|(pfn, prot, attr)| Mapping {
        pfn,
        prot: Prot::from_bits_retain(prot),
        attr,
    })
}

fn span_pages() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..=16,
        3 => 0u64..=2048,
        1 => Just(1u64 << 18),
        1 => Just(1u64 << 27),
    ]
}

/// One bhyve-like operation for `format`.
pub fn op(format: Format) -> impl Strategy<Value = Op> {
    prop_oneof![
        7 => populate(),
        4 => (any::<usize>(), any::<u64>(), prop_oneof![1u64..=64, 1u64..=4096], 0u8..4, mapping(format))
            .prop_map(|(region, first, count, skip, map)| Op::MapRange { region, first, count, skip, map }),
        5 => (target(), mapping(format)).prop_map(|(at, map)| Op::Fault { at, map }),
        3 => (target(), 0u32..=3).prop_map(|(at, depth)| Op::Walk { at, depth }),
        2 => (target(), span_pages()).prop_map(|(at, pages)| Op::Iterate { at, pages }),
        2 => target().prop_map(|at| Op::Unmap { at }),
        2 => (target(), span_pages()).prop_map(|(at, pages)| Op::UnmapRange { at, pages }),
        3 => any::<usize>().prop_map(|region| Op::Remove { region }),
        3 => (target(), any::<bool>(), any::<bool>())
            .prop_map(|(at, accessed, dirty)| Op::HwSetAd { at, accessed, dirty }),
        2 => (target(), any::<bool>()).prop_map(|(at, on)| Op::ResetAccessed { at, on }),
        2 => (target(), any::<bool>()).prop_map(|(at, on)| Op::ResetDirty { at, on }),
        2 => target().prop_map(|at| Op::Query { at }),
        1 => any::<usize>().prop_map(|region| Op::ScanDirty { region }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(track, hw_ad)| Op::Pmtp { track, hw_ad }),
        1 => (target(), any::<bool>()).prop_map(|(at, vacate)| Op::Empty { at, vacate }),
    ]
}

fn populate() -> impl Strategy<Value = Op> {
    (base(), region_pages()).prop_map(|(base, pages)| Op::Populate { base, pages })
}

/// A case for `format`: one to four populates (as a VM's memory map starts),
/// then up to `max_ops` operations of any kind.
pub fn case(format: Format, max_ops: usize) -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(populate(), 1..=4),
        prop::collection::vec(op(format), 0..=max_ops),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(mut ops, more, free_populated)| {
            ops.extend(more);
            Case {
                ops,
                free_populated,
            }
        })
}
