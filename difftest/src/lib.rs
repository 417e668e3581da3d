//! # Differential testing of vmm-gpt against the original `vmm_gpt.c`
//!
//! The implementations live in one process: the Rust library as itself,
//! the original (compiled by build.rs from `$ILLUMOS_GATE`, once with
//! `-DDEBUG` and once without) with every global symbol renamed (`ref_*`,
//! `ref_ndebug_*`) and its own three hot-patched stubs, and, when named,
//! the kernel objects and the release staticlib, renamed the same way
//! ([`impls`]).  A run compares one implementation under test (the library,
//! or what [`impls::select`] chose) with the original of the same build:
//! DEBUG with DEBUG (both check the original's `ASSERT`s), non-DEBUG with
//! non-DEBUG (what production kernels run).  The kernel stand-in
//! (`harness/c/kernel.c`) is shared; each side's kernel memory is charged to
//! a kmem domain of its own.
//!
//! The driver applies one sequence of operations ([`Op`]) to both and
//! compares everything observable after each: return values, walk results
//! (NULL pattern, entry values with table addresses masked out above the
//! leaves, entry positions, GPAs), iterator sequences, the PTEs each
//! operation changes, live table pages per implementation after every
//! operation, and periodically (and at every free) the whole hardware table
//! tree of each, entry by entry.  At every free both must hold no kernel
//! memory at all.
//!
//! ```no_run
//! use vmm_gpt_difftest::{generate, run, shrink, Format};
//! let ops = generate(1, 10_000, Format::Ept);
//! if let Err(d) = run(Format::Ept, &ops) {
//!     eprintln!("{d}\nminimal: {:#?}", shrink(Format::Ept, &ops));
//! }
//! ```
//!
//! | function | does |
//! | --- | --- |
//! | [`generate`] | a random, valid, bhyve-like sequence from a seed |
//! | [`from_bytes`] | any bytes (a fuzzer's input) to a valid sequence |
//! | [`run`] | applies a sequence to both, compares; in this process |
//! | [`run_isolated`] | the same in a forked child, so crashes are outcomes |
//! | [`shrink`] | a minimal sequence that still fails |
//!
//! Hot-patching and the kernel stand-in are process-global: [`run`] holds
//! a global lock ([`exclusive`]); anything else in the same process that
//! calls `vmm_gpt_init` must hold it too.  [`run`] uses kmem domains 1 (the
//! library) and 2 (the original); others should use domain 0.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::fmt;

mod gen;
pub use vmm_gpt_impls as impls;
mod isolate;
pub mod program;
pub mod regions;
mod runner;

pub use gen::{from_bytes, from_bytes_with, generate, generate_with, GenConfig};
pub use isolate::{run_isolated, shrink, spawn, Child, Outcome};
pub use runner::run;

pub use vmm_gpt::abi::{LEVEL1, LEVEL4};
pub use vmm_gpt_harness::{Prot, GIB, MIB, PAGE};
/// The end of the 48-bit guest-physical space that populate accepts.
pub const GPA_END: u64 = 1 << 48;

/// A PTE format: which `struct vmm_pte_impl` both implementations get.
pub use vmm_gpt_harness::Format;

/// The operands of [`Op::Fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fill {
    pub addr: u64,
    pub len: u64,
    pub prot: Prot,
    pub attr: u8,
    pub skip: u64,
    pub pfn: u64,
}

/// One side of the comparison, for the fault-injection operations and
/// panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The implementation under test: the Rust library (or what
    /// [`impls::select`] chose).
    Lib,
    /// The original `vmm_gpt.c` (of the same build).
    Ref,
}

/// One operation, applied to both implementations as the consumer
/// (`vmm_vm.c`'s vmspace) or the hardware would.
///
/// Any sequence is safe to [`run`]: an operation that is not valid in the
/// state the sequence has reached at that point (a populate overlapping a
/// live region, a vacate of no live region, a mapping outside every
/// populated region, a memory type the format rejects, ...) is skipped
/// (counted in [`Stats::skipped`]), so a shrunk sequence stays valid.
/// [`generate`] and [`from_bytes`] produce only valid operations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `vmspace_map`: `vmm_gpt_populate_region(addr, len)` of a new region.
    /// Valid when below 2^48, ending (unless it wraps) at most at 2^48, the
    /// pages it counts (from `addr` to the end, both rounded down) not
    /// overlapping a live region, and the live populated total stays at
    /// most 1 TiB; in a DEBUG pair also page-aligned.  An empty range, or
    /// one that wraps past 2^64, only creates the tables covering `addr`
    /// (as the original does); the runner frees such tables before the GPT
    /// (populating and vacating a page in each).
    Populate { addr: u64, len: u64 },
    /// `vmspace_unmap`: `vmm_gpt_unmap_region` then `vmm_gpt_vacate_region`
    /// over exactly the live region that starts at `addr`.
    Vacate { addr: u64 },
    /// `vmm_gpt_unmap_region` then `vmm_gpt_vacate_region` of any range
    /// (a part of a region, several regions and the gaps between them, a
    /// range starting in a gap, an empty one ...) that is valid for the
    /// model of the original's tables ([`regions::vacate_check`]: every leaf
    /// table the original's traversal takes entries off has all their
    /// pages populated; page-aligned and not wrapping in a DEBUG pair).
    /// The pages taken off leave the live regions.
    VacateRange { addr: u64, len: u64 },
    /// `vmspace_populate`: iterate `[addr, addr + len)` and `vmm_gpt_map_at`
    /// every entry inside a live region, except the `i`-th entry yielded
    /// where bit `i % 64` of `skip` is set; host page `pfn + (gpa - addr) /
    /// 4096` (an entry already mapped is mapped again with its own PFN, as a
    /// racing fault would).
    Fill(Fill),
    /// A fault: `walk(gpa, LEVEL1)`, `vmm_gpte_is_mapped`, and inside a live
    /// region `vmm_gpt_map_at` (of host page `pfn`, or the one mapped).
    Fault {
        gpa: u64,
        prot: Prot,
        attr: u8,
        pfn: u64,
    },
    /// `vmm_gpt_walk(gpa, depth)`, any GPA (the original takes it mod
    /// 2^48), depth `LEVEL4` (0) .. `LEVEL1` (3).
    Walk { gpa: u64, depth: u32 },
    /// Walk to the leaf, then `vmm_gpte_is_mapped`, asking for the PFN
    /// (`want & 1`) and the protection (`want & 2`).
    IsMapped { gpa: u64, want: u8 },
    /// The hardware sets the accessed and/or dirty bit (an atomic OR of the
    /// format's bits) in the leaf entry of `gpa`, if it maps a page.
    HwSetAd {
        gpa: u64,
        accessed: bool,
        dirty: bool,
    },
    /// `vmm_gpte_reset_accessed(leaf of gpa, on)` on a mapped leaf.
    ResetAccessed { gpa: u64, on: bool },
    /// `vmm_gpte_reset_dirty(leaf of gpa, on)` on a mapped leaf.
    ResetDirty { gpa: u64, on: bool },
    /// `vmm_gpte_query_accessed` and `_dirty` on the leaf of `gpa`.
    Query { gpa: u64 },
    /// Dirty tracking (`vmspace_bits_operate`): iterate `[addr, addr +
    /// len)`, `vmm_gpte_query_dirty` each entry and, with `reset`, on each
    /// mapped one `vmm_gpte_reset_dirty(on)`.  Any range (from user space:
    /// at or above 2^48, empty, ...); in a DEBUG pair one that wraps past
    /// 2^64 or is unaligned is skipped (the DEBUG original `ASSERT`s).
    Track {
        addr: u64,
        len: u64,
        reset: Option<bool>,
    },
    /// `vmm_gpt_unmap(gpa)`, any GPA.
    Unmap { gpa: u64 },
    /// `vmm_gpt_unmap_region(addr, len)`, any range; in a DEBUG pair, one
    /// that wraps past 2^64 or is unaligned is skipped (as for `Track`).
    UnmapRegion { addr: u64, len: u64 },
    /// `vmm_gpt_get_pmtp(track_dirty)`.
    GetPmtp { track_dirty: bool },
    /// `vmm_gpt_can_track_dirty` with the formats' hardware A/D support
    /// set to `hw_ad` (restored to true at the end of the run).
    CanTrackDirty { hw_ad: bool },
    /// Compare the whole table trees now.
    Check,
    /// `vmspace_destroy` + `vmspace_alloc`: unmap and vacate every live
    /// region, `vmm_gpt_free`, `vmm_gpt_alloc`.
    Realloc,
    /// Fault injection (tests of the checker only; never generated): flip
    /// bit `bit` (0..63) of the leaf entry of `gpa` on one side, if its
    /// leaf table exists.
    InjectFlipBit { side: Side, gpa: u64, bit: u32 },
    /// Fault injection (tests of the checker only; never generated):
    /// populate the one page at `gpa` on one side only, which adds one
    /// reference to its leaf table (and creates tables if missing) there.
    InjectExtraPopulate { side: Side, gpa: u64 },
}

/// The first difference found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index in the sequence of the operation after which the difference
    /// showed; the sequence's length for the checks of the final teardown.
    pub op_index: usize,
    /// What differs, precisely (operation, place, both values).
    pub what: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "divergence at op #{}: {}", self.op_index, self.what)
    }
}

impl std::error::Error for Divergence {}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations applied to both.
    pub ops: u64,
    /// Operations skipped as not valid in their state.
    pub skipped: u64,
    /// Regions populated, vacated; GPTs freed (and allocated again).
    pub populates: u64,
    pub vacates: u64,
    pub reallocs: u64,
    /// Of those: populates that only created tables (empty, wrapping, or
    /// unaligned covering no page) or were unaligned; vacates of a range
    /// that is not exactly a region; tables left by those that the runner
    /// freed before a free (a page populated and vacated in each).
    pub odd_populates: u64,
    pub odd_vacates: u64,
    pub cleanups: u64,
    /// New mappings made by `vmm_gpt_map_at` (both agreeing).
    pub maps: u64,
    /// Pages `vmm_gpt_unmap`/`_unmap_region` reported unmapped.
    pub unmaps: u64,
    /// Walks compared (including those inside other operations).
    pub walks: u64,
    /// Iterator entries compared.
    pub iterated: u64,
    /// Whole-tree comparisons, and the tables they compared.
    pub tree_checks: u64,
    pub tables_compared: u64,
    /// Largest number of live table pages of one implementation.
    pub peak_tables: u64,
    /// Largest live populated total, bytes.
    pub peak_populated: u64,
}

impl Stats {
    /// Adds another run's counts (peaks: the maximum).
    pub fn merge(&mut self, o: &Stats) {
        self.ops += o.ops;
        self.skipped += o.skipped;
        self.populates += o.populates;
        self.vacates += o.vacates;
        self.reallocs += o.reallocs;
        self.odd_populates += o.odd_populates;
        self.odd_vacates += o.odd_vacates;
        self.cleanups += o.cleanups;
        self.maps += o.maps;
        self.unmaps += o.unmaps;
        self.walks += o.walks;
        self.iterated += o.iterated;
        self.tree_checks += o.tree_checks;
        self.tables_compared += o.tables_compared;
        self.peak_tables = self.peak_tables.max(o.peak_tables);
        self.peak_populated = self.peak_populated.max(o.peak_populated);
    }

    fn to_words(&self) -> [u64; 16] {
        [
            self.ops,
            self.skipped,
            self.populates,
            self.vacates,
            self.reallocs,
            self.odd_populates,
            self.odd_vacates,
            self.cleanups,
            self.maps,
            self.unmaps,
            self.walks,
            self.iterated,
            self.tree_checks,
            self.tables_compared,
            self.peak_tables,
            self.peak_populated,
        ]
    }

    fn from_words(w: &[u64]) -> Option<Stats> {
        let w: &[u64; 16] = w.try_into().ok()?;
        Some(Stats {
            ops: w[0],
            skipped: w[1],
            populates: w[2],
            vacates: w[3],
            reallocs: w[4],
            odd_populates: w[5],
            odd_vacates: w[6],
            cleanups: w[7],
            maps: w[8],
            unmaps: w[9],
            walks: w[10],
            iterated: w[11],
            tree_checks: w[12],
            tables_compared: w[13],
            peak_tables: w[14],
            peak_populated: w[15],
        })
    }
}

/// Whether build.rs built the originals (`ILLUMOS_GATE` was set).
/// Without them [`run`] panics; tests skip.
pub fn reference_available() -> bool {
    impls::reference().is_some() && impls::reference_ndebug().is_some()
}

/// Where the original was compiled from (empty without it).
pub fn reference_source() -> &'static str {
    impls::ORIGINAL_PATH
}

/// Whether the C side was built with ASan and UBSan (`VMM_GPT_SANITIZE=1`).
pub fn sanitized() -> bool {
    cfg!(vmm_gpt_sanitize)
}

/// The process-wide lock of the hot-patched stubs and the kernel
/// stand-in's global state; [`run`] holds it.
pub use vmm_gpt_harness::exclusive;
