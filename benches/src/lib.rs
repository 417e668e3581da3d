//! # Benchmarks of vmm-gpt against the original `vmm_gpt.c`
//!
//! Both implementations run in one process, in the same kernel stand-in
//! (`harness/c/kernel.c`), with the same PTE format, through the function
//! tables of `vmm-gpt-impls`: the
//! library as itself, the original compiled from `$ILLUMOS_GATE` with its
//! symbols renamed.  Each implementation's `kmem_zalloc`s are charged to a
//! kmem domain of its own, so kernel memory is measured per implementation.
//!
//! The original benchmarked is the one compiled without `DEBUG` (ASSERTs
//! off), as production kernels are; the library is its release build
//! (`debug_assertions` off).  Without `ILLUMOS_GATE` at build time only the
//! library runs.
//!
//! A [`Workload`] is run once by [`Bench::run`]: an untimed setup, the
//! timed operations, an untimed teardown; every run checks its results
//! (counts of pages mapped, bits found, lookups that hit) and leaves no
//! kernel memory behind.  `benches/gpt.rs` (criterion) and the
//! `bench-summary` binary (paired, alternating runs) both use it.
//!
//! A [`HarvestWorkload`] is run by [`Bench::run_harvest`] one [`Scan`] at a
//! time: `vmspace_bits_operate()`'s loop over the original and over the
//! library, `vmm_gpt_harvest_dirty` of the opt-in staticlib (linked when
//! `VMM_GPT_HARVEST_STATICLIB` is set at build time, see
//! [`harvest_missing`]), and a locked-CAS floor over the same tables.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;
use std::time::Duration;

use vmm_gpt_harness::{layout, set_domain, HarvestFlags, Prot, Region, Rng, MTRR_UC, MTRR_WB};
pub use vmm_gpt_harness::{Format, Gpt, Pte, PAGE};
use vmm_gpt_impls::{self as impls, LIB};
pub use vmm_gpt_impls::{Api, Harvest};

pub use vmm_gpt_harness::{GIB, KIB, MIB};

/// Where the contiguous regions start: 4 GiB, where bhyve puts high RAM.
const BASE: u64 = 4 * GIB;
/// The first host page mapped.
const FIRST_PFN: u64 = 0x10_0000;

/// The implementations available: the library, then the original if
/// build.rs compiled it.
pub fn implementations() -> Vec<&'static Api> {
    let mut v = vec![&LIB];
    v.extend(original());
    v
}

/// The original as benchmarked: compiled without `DEBUG`.
pub fn original() -> Option<&'static Api> {
    impls::reference_ndebug()
}

/// Sizes of the workloads.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// The contiguous region of most workloads (1 GiB).
    pub region: u64,
    /// The large region: populate, and the guest of the random lookups
    /// (64 GiB).
    pub large: u64,
    /// Random lookups (10^6).
    pub lookups: u64,
    /// Fragmented one-page regions, 2 MiB apart (8192).
    pub one_page_regions: u64,
    /// Fragmented two-page regions, 8 KiB apart (10 000).
    pub two_page_regions: u64,
    /// RAM of the lifecycle's guest (4 GiB, the demo's default).
    pub guest_ram: u64,
    /// Dirty-tracking rounds of the lifecycle (3, the demo's default).
    pub rounds: u32,
}

impl Scale {
    /// The recorded sizes (benches/README.md).
    pub const FULL: Scale = Scale {
        region: GIB,
        large: 64 * GIB,
        lookups: 1_000_000,
        one_page_regions: 8192,
        two_page_regions: 10_000,
        guest_ram: 4 * GIB,
        rounds: 3,
    };
    /// Small sizes, for the tests.
    pub const SMALL: Scale = Scale {
        region: 8 * MIB,
        large: 64 * MIB,
        lookups: 10_000,
        one_page_regions: 600,
        two_page_regions: 300,
        guest_ram: 64 * MIB,
        rounds: 1,
    };
}

/// Fragmented layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frag {
    /// One-page regions 2 MiB apart: one leaf table each, 512 per parent.
    OnePage,
    /// Two-page regions 8 KiB apart: 128 regions share a leaf table.
    TwoPages,
}

impl Frag {
    /// (count, stride, length) of the regions.
    fn layout(self, s: &Scale) -> (u64, u64, u64) {
        match self {
            Frag::OnePage => (s.one_page_regions, 2 * MIB, PAGE),
            Frag::TwoPages => (s.two_page_regions, 4 * PAGE, 2 * PAGE),
        }
    }
}

/// A benchmarked operation sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `populate_region` of one contiguous region ([`Scale::region`], or
    /// with `large` [`Scale::large`]).
    Populate { large: bool },
    /// Iterate a populated region and `map_at` every page.
    MapAt,
    /// Iterate a mapped region and `reset_dirty(false)` every page, all
    /// clean (`dirty: false`) or all dirty.
    ResetDirty { dirty: bool },
    /// Iterate a mapped region and `query_accessed` every page (every
    /// other one accessed).
    QueryAccessed,
    /// Random `walk` + `is_mapped` lookups over a mapped large guest.
    RandomWalk,
    /// `unmap_region` of a mapped region.
    UnmapRegion,
    /// `vacate_region` of a populated region.
    Vacate,
    /// `vacate_region` of a populated region, then `vmm_gpt_free`.
    VacateFree,
    /// Populate every region of a fragmented layout, in address order.
    FragPopulate(Frag),
    /// Vacate every region of a fragmented layout, in address order (the
    /// order they were populated in).  The original's best case: the table
    /// a region is in is always the first of its siblings.
    FragVacate(Frag),
    /// The same in reverse address order: the original's worst case, the
    /// table is the last of its siblings.
    FragVacateReverse(Frag),
    /// The demo's bhyve-like guest lifecycle, alloc to free.
    Lifecycle,
}

impl Workload {
    /// Every workload, in the order of the summary.
    pub const ALL: [Workload; 17] = [
        Workload::Populate { large: false },
        Workload::Populate { large: true },
        Workload::MapAt,
        Workload::ResetDirty { dirty: false },
        Workload::ResetDirty { dirty: true },
        Workload::QueryAccessed,
        Workload::RandomWalk,
        Workload::UnmapRegion,
        Workload::Vacate,
        Workload::VacateFree,
        Workload::FragPopulate(Frag::OnePage),
        Workload::FragVacate(Frag::OnePage),
        Workload::FragVacateReverse(Frag::OnePage),
        Workload::FragPopulate(Frag::TwoPages),
        Workload::FragVacate(Frag::TwoPages),
        Workload::FragVacateReverse(Frag::TwoPages),
        Workload::Lifecycle,
    ];

    /// A short name, also the criterion group's.
    pub fn name(self, s: &Scale) -> String {
        let r = size(s.region);
        match self {
            Workload::Populate { large: false } => format!("populate {r}"),
            Workload::Populate { large: true } => format!("populate {}", size(s.large)),
            Workload::MapAt => format!("iterate+map_at {r}"),
            Workload::ResetDirty { dirty: false } => format!("iterate+reset_dirty clean {r}"),
            Workload::ResetDirty { dirty: true } => format!("iterate+reset_dirty dirty {r}"),
            Workload::QueryAccessed => format!("iterate+query_accessed {r}"),
            Workload::RandomWalk => format!(
                "{} random walk+is_mapped, {} mapped",
                s.lookups,
                size(s.large)
            ),
            Workload::UnmapRegion => format!("unmap_region {r}"),
            Workload::Vacate => format!("vacate_region {r}"),
            Workload::VacateFree => format!("vacate+free {r}"),
            Workload::FragPopulate(f)
            | Workload::FragVacate(f)
            | Workload::FragVacateReverse(f) => {
                let op = match self {
                    Workload::FragPopulate(_) => "populate",
                    Workload::FragVacate(_) => "vacate",
                    _ => "vacate (reverse order)",
                };
                let (n, stride, len) = f.layout(s);
                format!("fragmented {op} {n} x {} @ {}", size(len), size(stride))
            }
            Workload::Lifecycle => format!(
                "lifecycle (demo, {} guest, {} rounds)",
                size(s.guest_ram),
                s.rounds
            ),
        }
    }

    /// How many units one run does.
    pub fn units(self, s: &Scale) -> u64 {
        match self {
            Workload::Populate { large: true } => s.large / PAGE,
            Workload::RandomWalk => s.lookups,
            Workload::FragPopulate(f)
            | Workload::FragVacate(f)
            | Workload::FragVacateReverse(f) => f.layout(s).0,
            Workload::Lifecycle => layout(s.guest_ram).iter().map(|r| r.len / PAGE).sum(),
            _ => s.region / PAGE,
        }
    }

    /// What one unit of the workload is.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::RandomWalk => "lookup",
            Workload::FragPopulate(_)
            | Workload::FragVacate(_)
            | Workload::FragVacateReverse(_) => "region",
            _ => "page",
        }
    }
}

/// `VMM_GPT_HARVEST_RESET | VMM_GPT_HARVEST_BITMAP_OUT`
/// (`include/sys/vmm_gpt_ext.h`): `VBO_RESET_DIRTY` with
/// `VBO_FLAG_BITMAP_OUT`, what live migration asks for.
pub const HARVEST_RESET_BITMAP_OUT: HarvestFlags =
    HarvestFlags::RESET.union(HarvestFlags::BITMAP_OUT);

/// The opt-in staticlib (`VMM_GPT_HARVEST_STATICLIB` at build time,
/// `hv_*`), whose `vmm_gpt_harvest_dirty` the harvest workloads measure.
pub fn harvest_staticlib() -> Option<Harvest> {
    impls::harvest_staticlib()
}

/// Why the harvest workloads cannot run, if they cannot.
pub fn harvest_missing() -> Option<&'static str> {
    harvest_staticlib().is_none().then_some(
        "the opt-in staticlib is not linked (build with VMM_GPT_HARVEST_STATICLIB set to \
         `cargo build --release -p vmm-gpt --features harvest-dirty`'s libvmm_gpt.a; \
         benches/summary.sh does)",
    )
}

/// A harvest workload: reading and clearing the dirty bits of a mapped
/// region with a bitmap out, as `vmspace_bits_operate(VBO_RESET_DIRTY |
/// VBO_FLAG_BITMAP_OUT)` does for live migration, done the four ways of
/// [`Scan`]; every page clean, or every page dirty (A and D set on each,
/// untimed, before each run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HarvestWorkload {
    pub dirty: bool,
    /// [`Scale::large`] (64 GiB) rather than [`Scale::region`] (1 GiB).
    pub large: bool,
}

impl HarvestWorkload {
    /// Every harvest workload, in the order of the summary.
    pub const ALL: [HarvestWorkload; 4] = [
        HarvestWorkload {
            dirty: false,
            large: false,
        },
        HarvestWorkload {
            dirty: true,
            large: false,
        },
        HarvestWorkload {
            dirty: false,
            large: true,
        },
        HarvestWorkload {
            dirty: true,
            large: true,
        },
    ];

    /// The region's length.
    pub fn len(self, s: &Scale) -> u64 {
        if self.large {
            s.large
        } else {
            s.region
        }
    }

    /// A short name, also the criterion group's.
    pub fn name(self, s: &Scale) -> String {
        format!(
            "harvest {} {}",
            if self.dirty { "dirty" } else { "clean" },
            size(self.len(s))
        )
    }

    /// Pages per run.
    pub fn units(self, s: &Scale) -> u64 {
        self.len(s) / PAGE
    }
}

/// One way of doing a harvest workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// `vmspace_bits_operate()`'s loop over the original (non-DEBUG):
    /// `vmm_gpt_iter_init`, then per page `vmm_gpt_iter_next` +
    /// `vmm_gpte_reset_dirty(ptep, false)` and the bitmap bit set or
    /// cleared.
    OriginalLoop,
    /// The same loop over the library.
    LibraryLoop,
    /// `vmm_gpt_harvest_dirty(RESET | BITMAP_OUT)` of the opt-in staticlib,
    /// over its own GPT.
    Harvest,
    /// The floor of one locked read-modify-write per entry: the same GPT's
    /// leaf tables walked directly (one `vmm_gpt_walk` per table), each
    /// entry's dirty bit cleared with `AtomicU64::fetch_update` (a load and
    /// a `lock cmpxchg`), the bits gathered into the bitmap a byte at a
    /// time.
    LockedCas,
}

impl Scan {
    /// Every scan, in the order of the summary.
    pub const ALL: [Scan; 4] = [
        Scan::OriginalLoop,
        Scan::LibraryLoop,
        Scan::Harvest,
        Scan::LockedCas,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scan::OriginalLoop => "original loop",
            Scan::LibraryLoop => "library loop",
            Scan::Harvest => "harvest",
            Scan::LockedCas => "locked CAS",
        }
    }

    /// Whose GPT it scans: 0 the original's, 1 the library's, 2 the opt-in
    /// staticlib's.
    fn owner(self) -> usize {
        match self {
            Scan::OriginalLoop => 0,
            Scan::LibraryLoop => 1,
            Scan::Harvest | Scan::LockedCas => 2,
        }
    }
}

/// `1 GiB`, `8 MiB`, `4 KiB`.
pub fn size(b: u64) -> String {
    match b {
        b if b >= GIB && b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b => format!("{} KiB", b / KIB),
    }
}

/// One run of a workload by one implementation.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Time of the timed part.
    pub elapsed: Duration,
    /// Units done in it.
    pub units: u64,
    /// Kernel memory (bytes from `kmem_zalloc`) of the GPT at its largest
    /// point in the workload.
    pub kmem_bytes: u64,
    /// Guest-physical bytes populated then.
    pub populated: u64,
}

impl Sample {
    pub fn ns_per_unit(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.units.max(1) as f64
    }

    /// Kernel memory per populated (vmspace-mapped) GiB.
    pub fn kmem_per_gib(&self) -> f64 {
        self.kmem_bytes as f64 * GIB as f64 / self.populated.max(1) as f64
    }
}

/// Live kernel memory of an implementation.
fn kmem_live(api: &Api) -> u64 {
    vmm_gpt_harness::domain_stats(api.domain).live_bytes
}

/// The large mapped guest of the random lookups, kept across runs.
struct Guest {
    gpt: Gpt,
    kmem_bytes: u64,
}

/// A mapped region of one implementation for the harvest workloads, kept
/// across runs: its GPT, its kernel memory, and its leaf tables in address
/// order (for the "hardware" that dirties every entry).
struct ScanGuest {
    api: &'static Api,
    gpt: Gpt,
    len: u64,
    kmem_bytes: u64,
    tables: Vec<*mut u64>,
}

/// The installed format and everything the workloads share; holds the
/// harness's process-wide lock (`vmm_gpt_harness::exclusive`; hot-patching is global) until
/// dropped, which uninstalls the format again.
pub struct Bench {
    scale: Scale,
    apis: Vec<&'static Api>,
    /// The opt-in staticlib, when linked (the harvest workloads).
    harvest: Option<Harvest>,
    /// The harvest workloads' regions, per [`Scan::owner`].
    scan_guests: [Option<ScanGuest>; 3],
    /// Their bitmap.
    bitmap: Vec<u8>,
    accessed: u64,
    dirty: u64,
    /// The random lookups' GPAs, and the sum of the PFNs they must find.
    lookups: Vec<u64>,
    lookup_pfn_sum: u64,
    /// The lifecycle: per round the pages "hardware" dirties, and how many
    /// distinct ones that is.
    dirtied: Vec<Vec<u64>>,
    dirtied_distinct: Vec<u64>,
    guests: Vec<Option<Guest>>,
    _lock: MutexGuard<'static, ()>,
}

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to fill; the clock exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f`, timing it: the CPU time of this thread (user and system, so
/// page faults count), not the wall-clock time, so that being preempted by
/// other processes on a busy machine does not count.
#[inline]
fn timed<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let t = thread_cpu_time();
    let r = f();
    (thread_cpu_time().saturating_sub(t), r)
}

impl Bench {
    /// Installs `format` in every implementation.
    pub fn new(format: Format, scale: Scale) -> Bench {
        let lock = vmm_gpt_harness::exclusive();
        // The stand-in's kmem_zalloc is posix_memalign + memset.  glibc
        // gives memory freed at the top of the heap back to the system
        // (trimming), so that the next run's tables page-fault anew, in
        // amounts that depend on what ran before: noise.  A kernel's kmem
        // caches keep freed memory; so does malloc, with trimming off.
        // SAFETY: mallopt only changes the allocator's tunables.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) };
        let apis = implementations();
        let harvest = harvest_staticlib();
        for api in apis.iter().chain(harvest.as_ref().map(|h| &h.api)) {
            set_domain(api.domain);
            // SAFETY: a format of the kernel stand-in, alive forever;
            // nothing is installed (the lock excludes every other user,
            // and each user uninstalls before releasing it).
            let ok = unsafe { (api.init)(format.pte_impl()) };
            assert!(ok, "{}: vmm_gpt_init refused the format", api.name);
        }
        set_domain(0);

        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let pages = scale.large / PAGE;
        let lookups: Vec<u64> = (0..scale.lookups)
            .map(|_| BASE + rng.next() % pages * PAGE)
            .collect();
        let lookup_pfn_sum = lookups
            .iter()
            .map(|g| FIRST_PFN + (g - BASE) / PAGE)
            .fold(0u64, u64::wrapping_add);

        let ram: Vec<Region> = layout(scale.guest_ram)
            .into_iter()
            .filter(|r| !r.mmio)
            .collect();
        let ram_pages: u64 = ram.iter().map(|r| r.len / PAGE).sum();
        let mut dirtied = Vec::new();
        let mut dirtied_distinct = Vec::new();
        for _ in 0..scale.rounds {
            let v: Vec<u64> = (0..(ram_pages / 16).max(1))
                .map(|_| {
                    let r = ram[(rng.next() % ram.len() as u64) as usize];
                    r.gpa + rng.next() % (r.len / PAGE) * PAGE
                })
                .collect();
            let distinct: std::collections::HashSet<u64> = v.iter().copied().collect();
            dirtied_distinct.push(distinct.len() as u64);
            dirtied.push(v);
        }

        let imp = format.pte_impl();
        Bench {
            scale,
            guests: apis.iter().map(|_| None).collect(),
            apis,
            harvest,
            scan_guests: [None, None, None],
            bitmap: Vec::new(),
            accessed: imp.vpi_bit_accessed,
            dirty: imp.vpi_bit_dirty,
            lookups,
            lookup_pfn_sum,
            dirtied,
            dirtied_distinct,
            _lock: lock,
        }
    }

    /// The implementations, the library first.
    pub fn apis(&self) -> &[&'static Api] {
        &self.apis
    }

    pub fn scale(&self) -> &Scale {
        &self.scale
    }

    /// Frees the large guests kept for the random lookups.
    pub fn drop_guests(&mut self) {
        for (i, g) in self.guests.iter_mut().enumerate() {
            if let Some(g) = g.take() {
                set_domain(self.apis[i].domain);
                // As vmspace does: the original cannot free a populated
                // GPT (docs/abi.md, "The defect the library fixes").
                g.gpt.unmap_region(BASE, self.scale.large);
                g.gpt.vacate(BASE, self.scale.large);
                g.gpt.free();
            }
        }
        for owner in 0..self.scan_guests.len() {
            self.drop_scan_guest(owner);
        }
        set_domain(0);
    }

    /// Runs workload `w` once on implementation `which` (an index into
    /// [`Bench::apis`]).  Panics if a result is wrong or kernel memory is
    /// left behind.
    pub fn run(&mut self, w: Workload, which: usize) -> Sample {
        let api = self.apis[which];
        set_domain(api.domain);
        if w == Workload::RandomWalk {
            self.guest(which);
        }
        let before = kmem_live(api);
        let s = match w {
            Workload::Populate { large } => self.populate(api, large),
            Workload::MapAt => self.map_at(api),
            Workload::ResetDirty { dirty } => self.reset_dirty(api, dirty),
            Workload::QueryAccessed => self.query_accessed(api),
            Workload::RandomWalk => self.random_walk(which),
            Workload::UnmapRegion => self.unmap_region(api),
            Workload::Vacate => self.vacate(api, false),
            Workload::VacateFree => self.vacate(api, true),
            Workload::FragPopulate(f) => self.frag(api, f, None),
            Workload::FragVacate(f) => self.frag(api, f, Some(false)),
            Workload::FragVacateReverse(f) => self.frag(api, f, Some(true)),
            Workload::Lifecycle => self.lifecycle(api),
        };
        assert_eq!(
            kmem_live(api),
            before,
            "{}: {w:?} left kernel memory behind",
            api.name
        );
        set_domain(0);
        s
    }

    /// A GPT with the region populated, and its kernel memory.
    fn populated(&self, api: &'static Api) -> (Gpt, u64) {
        let before = kmem_live(api);
        let g = Gpt::alloc(api);
        g.populate(BASE, self.scale.region);
        let bytes = kmem_live(api) - before;
        (g, bytes)
    }

    /// Maps every page of `[addr, addr + len)` (iterate + `map_at`);
    /// returns how many were mapped.
    #[inline]
    fn map_all(g: &Gpt, addr: u64, len: u64) -> u64 {
        let mut n = 0;
        g.for_each_leaf(addr, len, |gpa, l| {
            n += u64::from(l.map_at(FIRST_PFN + (gpa - addr) / PAGE, Prot::all(), MTRR_WB));
        });
        n
    }

    /// A GPT with the region populated and mapped.
    fn mapped(&self, api: &'static Api) -> (Gpt, u64) {
        let (g, bytes) = self.populated(api);
        let n = Self::map_all(&g, BASE, self.scale.region);
        assert_eq!(n, self.scale.region / PAGE, "{}: map_at", api.name);
        (g, bytes)
    }

    /// Unmaps, vacates and frees the region's GPT.
    fn teardown(&self, g: Gpt) {
        g.unmap_region(BASE, self.scale.region);
        g.vacate(BASE, self.scale.region);
        g.free();
    }

    fn sample(&self, elapsed: Duration, units: u64, kmem_bytes: u64, populated: u64) -> Sample {
        Sample {
            elapsed,
            units,
            kmem_bytes,
            populated,
        }
    }

    fn populate(&self, api: &'static Api, large: bool) -> Sample {
        let len = if large {
            self.scale.large
        } else {
            self.scale.region
        };
        let before = kmem_live(api);
        let g = Gpt::alloc(api);
        let (t, ()) = timed(|| g.populate(BASE, len));
        let bytes = kmem_live(api) - before;
        g.vacate(BASE, len);
        g.free();
        self.sample(t, len / PAGE, bytes, len)
    }

    fn map_at(&self, api: &'static Api) -> Sample {
        let len = self.scale.region;
        let (g, bytes) = self.populated(api);
        let (t, n) = timed(|| Self::map_all(&g, BASE, len));
        assert_eq!(n, len / PAGE, "{}: map_at", api.name);
        self.teardown(g);
        self.sample(t, len / PAGE, bytes, len)
    }

    fn reset_dirty(&self, api: &'static Api, dirty: bool) -> Sample {
        let len = self.scale.region;
        let (g, bytes) = self.mapped(api);
        if dirty {
            let bits = self.accessed | self.dirty;
            g.for_each_leaf(BASE, len, |_, l| l.hw_set(bits));
        }
        let (t, found) = timed(|| {
            let mut found = 0u64;
            g.for_each_leaf(BASE, len, |_, l| found += u64::from(l.reset_dirty(false)));
            found
        });
        let want = if dirty { len / PAGE } else { 0 };
        assert_eq!(found, want, "{}: reset_dirty found", api.name);
        self.teardown(g);
        self.sample(t, len / PAGE, bytes, len)
    }

    fn query_accessed(&self, api: &'static Api) -> Sample {
        let len = self.scale.region;
        let (g, bytes) = self.mapped(api);
        let bit = self.accessed;
        // Even pages accessed, odd ones not (the AMD format maps pages
        // with the accessed bit set).
        g.for_each_leaf(BASE, len, |gpa, l| {
            if gpa & PAGE == 0 {
                l.hw_set(bit)
            } else {
                l.hw_clear(bit)
            }
        });
        let (t, found) = timed(|| {
            let mut found = 0u64;
            g.for_each_leaf(BASE, len, |_, l| found += u64::from(l.query_accessed()));
            found
        });
        assert_eq!(found, len / PAGE / 2, "{}: query_accessed found", api.name);
        self.teardown(g);
        self.sample(t, len / PAGE, bytes, len)
    }

    /// The large mapped guest of implementation `which`, made on first use
    /// and kept until [`Bench::drop_guests`].
    fn guest(&mut self, which: usize) -> &Guest {
        let api = self.apis[which];
        let large = self.scale.large;
        self.guests[which].get_or_insert_with(|| {
            let before = kmem_live(api);
            let gpt = Gpt::alloc(api);
            gpt.populate(BASE, large);
            let n = Self::map_all(&gpt, BASE, large);
            assert_eq!(n, large / PAGE, "{}: map_at", api.name);
            Guest {
                kmem_bytes: kmem_live(api) - before,
                gpt,
            }
        })
    }

    fn random_walk(&mut self, which: usize) -> Sample {
        let api = self.apis[which];
        self.guest(which);
        let Some(guest) = &self.guests[which] else {
            unreachable!("made above")
        };
        let g = &guest.gpt;
        let lookups = &self.lookups;
        let (t, (hits, sum)) = timed(|| {
            let (mut hits, mut sum) = (0u64, 0u64);
            for &gpa in lookups {
                if let Some((pfn, _)) = g.leaf(gpa).and_then(|l| l.is_mapped()) {
                    hits += 1;
                    sum = sum.wrapping_add(pfn);
                }
            }
            (hits, sum)
        });
        assert_eq!(hits, lookups.len() as u64, "{}: lookups", api.name);
        assert_eq!(sum, self.lookup_pfn_sum, "{}: PFNs found", api.name);
        self.sample(t, lookups.len() as u64, guest.kmem_bytes, self.scale.large)
    }

    fn unmap_region(&self, api: &'static Api) -> Sample {
        let len = self.scale.region;
        let (g, bytes) = self.mapped(api);
        let (t, n) = timed(|| g.unmap_region(BASE, len) as u64);
        assert_eq!(n, len / PAGE, "{}: unmap_region", api.name);
        g.vacate(BASE, len);
        g.free();
        self.sample(t, len / PAGE, bytes, len)
    }

    fn vacate(&self, api: &'static Api, free: bool) -> Sample {
        let len = self.scale.region;
        let (g, bytes) = self.populated(api);
        let t = if free {
            timed(|| {
                g.vacate(BASE, len);
                g.free();
            })
            .0
        } else {
            let t = timed(|| g.vacate(BASE, len)).0;
            g.free();
            t
        };
        self.sample(t, len / PAGE, bytes, len)
    }

    /// Populates (`vacate: None`) or vacates (`Some(reverse)`) a fragmented
    /// layout.
    fn frag(&self, api: &'static Api, f: Frag, vacate: Option<bool>) -> Sample {
        let (n, stride, len) = f.layout(&self.scale);
        let before = kmem_live(api);
        let mut g = Gpt::alloc(api);
        let populate_all = |g: &mut Gpt| {
            for i in 0..n {
                g.populate(BASE + i * stride, len);
            }
        };
        let vacate_all = |g: &mut Gpt, reverse: bool| {
            if reverse {
                for i in (0..n).rev() {
                    g.vacate(BASE + i * stride, len);
                }
            } else {
                for i in 0..n {
                    g.vacate(BASE + i * stride, len);
                }
            }
        };
        let (t, bytes) = match vacate {
            None => {
                let t = timed(|| populate_all(&mut g)).0;
                let bytes = kmem_live(api) - before;
                vacate_all(&mut g, false);
                (t, bytes)
            }
            Some(reverse) => {
                populate_all(&mut g);
                let bytes = kmem_live(api) - before;
                (timed(|| vacate_all(&mut g, reverse)).0, bytes)
            }
        };
        g.free();
        self.sample(t, n, bytes, n * len)
    }

    /// The demo's lifecycle, all timed: alloc, populate the regions, fault
    /// RAM in (iterate + `map_at`) and MMIO (walk + `is_mapped` +
    /// `map_at`), dirty-tracking rounds (the "hardware" dirties pages found
    /// by walks, then iterate + `query_dirty` + `reset_dirty`), unmap and
    /// vacate every region, free.
    fn lifecycle(&self, api: &'static Api) -> Sample {
        let regions = layout(self.scale.guest_ram);
        let total: u64 = regions.iter().map(|r| r.len / PAGE).sum();
        let populated: u64 = regions.iter().map(|r| r.len).sum();
        let bits = self.accessed | self.dirty;
        let before = kmem_live(api);
        let (t, (mapped, bytes, found, unmapped)) = timed(|| {
            let g = Gpt::alloc(api);
            for r in &regions {
                g.populate(r.gpa, r.len);
            }
            let mut pfn = FIRST_PFN;
            let mut mapped = 0u64;
            for r in regions.iter().filter(|r| !r.mmio) {
                g.for_each_leaf(r.gpa, r.len, |_, l| {
                    mapped += u64::from(l.map_at(pfn, Prot::all(), MTRR_WB));
                    pfn += 1;
                });
            }
            for r in regions.iter().filter(|r| r.mmio) {
                let mut gpa = r.gpa;
                while gpa < r.gpa + r.len {
                    if let Some(l) = g.leaf(gpa) {
                        if l.is_mapped().is_none()
                            && l.map_at(0xfe_0000 + (gpa >> 12), Prot::RW, MTRR_UC)
                        {
                            mapped += 1;
                        }
                    }
                    gpa += PAGE;
                }
            }
            let bytes = kmem_live(api) - before;
            let mut found = Vec::with_capacity(self.dirtied.len());
            for round in &self.dirtied {
                for &gpa in round {
                    if let Some(l) = g.leaf(gpa) {
                        l.hw_set(bits);
                    }
                }
                let mut n = 0u64;
                for r in regions.iter().filter(|r| !r.mmio) {
                    g.for_each_leaf(r.gpa, r.len, |_, l| {
                        n += u64::from(l.query_dirty() && l.reset_dirty(false));
                    });
                }
                found.push(n);
            }
            let mut unmapped = 0;
            for r in &regions {
                unmapped += g.unmap_region(r.gpa, r.len) as u64;
                g.vacate(r.gpa, r.len);
            }
            g.free();
            (mapped, bytes, found, unmapped)
        });
        assert_eq!(mapped, total, "{}: lifecycle mapped", api.name);
        assert_eq!(
            found, self.dirtied_distinct,
            "{}: lifecycle dirty",
            api.name
        );
        assert_eq!(unmapped, mapped, "{}: lifecycle unmapped", api.name);
        self.sample(t, total, bytes, populated)
    }
}

/// Harvest workloads.
impl Bench {
    /// The scans of the harvest workloads, in the order of [`Scan::ALL`]:
    /// none without the opt-in staticlib, no [`Scan::OriginalLoop`]
    /// without the original.
    pub fn scans(&self) -> Vec<Scan> {
        if self.harvest.is_none() {
            return Vec::new();
        }
        Scan::ALL
            .into_iter()
            .filter(|&s| s != Scan::OriginalLoop || self.apis.len() > 1)
            .collect()
    }

    /// The implementation whose GPT `scan` scans.
    fn scan_api(&self, scan: Scan) -> &'static Api {
        match scan.owner() {
            0 => self.apis.get(1).copied().expect("the original is built"),
            1 => self.apis[0],
            _ => self.harvest.as_ref().expect("the opt-in staticlib").api,
        }
    }

    /// Unmaps, vacates and frees the harvest region of `owner`.
    fn drop_scan_guest(&mut self, owner: usize) {
        if let Some(g) = self.scan_guests[owner].take() {
            set_domain(g.api.domain);
            g.gpt.unmap_region(BASE, g.len);
            g.gpt.vacate(BASE, g.len);
            g.gpt.free();
        }
    }

    /// The region of `len` bytes of `scan`'s implementation, populated and
    /// mapped, made on first use (another length replaces it).
    fn scan_guest(&mut self, scan: Scan, len: u64) -> &ScanGuest {
        let owner = scan.owner();
        if self.scan_guests[owner]
            .as_ref()
            .is_some_and(|g| g.len != len)
        {
            self.drop_scan_guest(owner);
        }
        let api = self.scan_api(scan);
        set_domain(api.domain);
        self.scan_guests[owner].get_or_insert_with(|| {
            assert!(
                len.is_multiple_of(2 * MIB),
                "harvest regions are whole leaf tables"
            );
            let before = kmem_live(api);
            let gpt = Gpt::alloc(api);
            gpt.populate(BASE, len);
            let n = Self::map_all(&gpt, BASE, len);
            assert_eq!(n, len / PAGE, "{}: map_at", api.name);
            let tables = (0..len / (2 * MIB))
                .map(|t| {
                    let l = gpt.leaf(BASE + t * 2 * MIB).expect("populated");
                    assert_eq!(l.index(), 0);
                    l.addr() as *mut u64
                })
                .collect();
            ScanGuest {
                api,
                kmem_bytes: kmem_live(api) - before,
                gpt,
                len,
                tables,
            }
        })
    }

    /// Runs harvest workload `w` once the way of `scan`.  Panics if a
    /// result is wrong or kernel memory is left behind.
    pub fn run_harvest(&mut self, w: HarvestWorkload, scan: Scan) -> Sample {
        let len = w.len(&self.scale);
        let pages = len / PAGE;
        let api = self.scan_api(scan);
        let bits = self.accessed | self.dirty;
        let dirty = self.dirty;
        let harvest_dirty = self
            .harvest
            .as_ref()
            .expect("the opt-in staticlib")
            .harvest_dirty;
        self.scan_guest(scan, len);
        let mut bitmap = std::mem::take(&mut self.bitmap);
        bitmap.clear();
        bitmap.resize((pages / 8) as usize, 0x5a);
        let Some(g) = &self.scan_guests[scan.owner()] else {
            unreachable!("made above")
        };
        let before = kmem_live(api);
        if w.dirty {
            // The "hardware": A and D on every page.
            for &table in &g.tables {
                for i in 0..512 {
                    // SAFETY: entry i of a live leaf table of the region;
                    // every access to it is atomic.
                    unsafe { AtomicU64::from_ptr(table.add(i)) }.fetch_or(bits, Ordering::SeqCst);
                }
            }
        }
        let (t, found) = timed(|| match scan {
            Scan::OriginalLoop | Scan::LibraryLoop => {
                g.gpt
                    .bits_operate(BASE, len, &mut bitmap, HARVEST_RESET_BITMAP_OUT)
                    as u64
            }
            // SAFETY: a live GPT of the opt-in staticlib, its format
            // installed; the bitmap has a bit for every page of the range.
            Scan::Harvest => unsafe {
                harvest_dirty(
                    g.gpt.as_ptr(),
                    BASE,
                    len as usize,
                    bitmap.as_mut_ptr(),
                    HARVEST_RESET_BITMAP_OUT.bits(),
                ) as u64
            },
            Scan::LockedCas => locked_cas(&g.gpt, BASE, len, dirty, &mut bitmap),
        });
        let (want, byte) = if w.dirty { (pages, 0xff) } else { (0, 0) };
        assert_eq!(found, want, "{}: {} found", api.name, scan.name());
        assert!(
            bitmap.iter().all(|&b| b == byte),
            "{}: {} left a bitmap byte other than 0x{byte:02x}",
            api.name,
            scan.name()
        );
        assert_eq!(
            kmem_live(api),
            before,
            "{}: {} allocated kernel memory",
            api.name,
            scan.name()
        );
        let kmem_bytes = g.kmem_bytes;
        self.bitmap = bitmap;
        set_domain(0);
        self.sample(t, pages, kmem_bytes, len)
    }
}

/// The locked floor ([`Scan::LockedCas`]): every leaf table of `[gpa, gpa +
/// len)` found by one walk, each entry's `dirty` bit cleared by a load and
/// a `lock cmpxchg` (again while it fails), the bits gathered a byte at a
/// time into the bitmap; returns the pages found dirty.
#[inline]
fn locked_cas(g: &Gpt, gpa: u64, len: u64, dirty: u64, bitmap: &mut [u8]) -> u64 {
    let mut found = 0u64;
    for (t, bytes) in bitmap.chunks_exact_mut(64).enumerate() {
        debug_assert!((t as u64) < len / (2 * MIB));
        let leaf = g.leaf(gpa + t as u64 * 2 * MIB).expect("populated");
        let table = leaf.addr() as *mut u64;
        for (b, byte) in bytes.iter_mut().enumerate() {
            let mut bits = 0u8;
            for i in 0..8 {
                // SAFETY: entry 8 * b + i < 512 of a live leaf table (the
                // walk found its first entry); every access is atomic.
                let e = unsafe { AtomicU64::from_ptr(table.add(8 * b + i)) };
                let old = e
                    .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |v| Some(v & !dirty))
                    .unwrap_or_else(|v| v);
                bits |= u8::from(old & dirty != 0) << i;
            }
            *byte = bits;
            found += u64::from(bits.count_ones());
        }
    }
    found
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.drop_guests();
        for api in self
            .apis
            .iter()
            .chain(self.harvest.as_ref().map(|h| &h.api))
        {
            set_domain(api.domain);
            // SAFETY: Bench::new installed the format in every
            // implementation; no GPT of theirs is used any more.
            unsafe { (api.fini)() };
        }
        set_domain(0);
    }
}

/// The median of some values (the mean of the middle two for an even
/// count); NaN for none.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every workload, small, on every implementation and both formats:
    /// the runs check their own results and that no memory is left.
    #[test]
    fn every_workload_runs() {
        for format in Format::ALL {
            let mut b = Bench::new(format, Scale::SMALL);
            for w in Workload::ALL {
                for i in 0..b.apis().len() {
                    let s = b.run(w, i);
                    assert_eq!(s.units, w.units(b.scale()), "{w:?}");
                    assert!(s.kmem_bytes > 0, "{w:?}: {s:?}");
                }
            }
        }
    }

    /// Every harvest workload, small, every scan, both formats; without
    /// the opt-in staticlib linked, a message (and a failure under
    /// `VMM_GPT_REQUIRE_HARVEST=1`).
    #[test]
    fn every_harvest_workload_runs() {
        if let Some(why) = harvest_missing() {
            assert!(
                std::env::var("VMM_GPT_REQUIRE_HARVEST").map_or(true, |v| v != "1"),
                "VMM_GPT_REQUIRE_HARVEST=1, but {why}"
            );
            eprintln!("harvest workloads skipped: {why}");
            return;
        }
        for format in Format::ALL {
            let mut b = Bench::new(format, Scale::SMALL);
            assert!(b.scans().len() >= 3);
            for w in HarvestWorkload::ALL {
                for scan in b.scans() {
                    // Twice: the second run finds the region as the first
                    // left it (clean).
                    for _ in 0..2 {
                        let s = b.run_harvest(w, scan);
                        assert_eq!(s.units, w.units(b.scale()), "{w:?} {scan:?}");
                        assert!(s.kmem_bytes > 0, "{w:?} {scan:?}: {s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
