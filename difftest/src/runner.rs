//! Applying a sequence to both implementations and comparing them.

use std::ffi::c_uint;
use std::fmt::Write as _;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use vmm_gpt::abi::{vmm_gpt_entry_t, vmm_gpt_iter_t, vmm_gpt_t};

use crate::impls::{self, Api, LIB_DOMAIN, REF_DOMAIN};
use crate::regions::{self, Regions, Tables, VacatePlan};
use crate::{
    exclusive, Divergence, Fill, Format, Op, Prot, Side, Stats, GPA_END, LEVEL1, LEVEL4, PAGE,
};

/// Physical-address bits of an entry (both formats): table addresses,
/// masked out of non-leaf entries before comparing.
const PA_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Host page numbers the operations use (40 bits, what fits in PA_MASK).
pub(crate) const PFN_MASK: u64 = (1 << 40) - 1;
/// Most populated bytes a run accepts live (memory: 2 MiB of tables per
/// GiB and implementation).
pub(crate) const RUN_MAX_LIVE: u64 = 1 << 40;
/// Whole-tree comparisons come at least this many operations apart, and
/// at least one operation per live table (so they cost at most one table
/// comparison per operation).
const CHECK_INTERVAL: u64 = 1000;
/// What a walk leaves in the entries it must not write.
const SENTINEL: *mut vmm_gpt_entry_t = 0x5e5e_5e5e_5e5e_5e58_u64 as usize as *mut vmm_gpt_entry_t;
const NAMES: [&str; 4] = ["LEVEL4", "LEVEL3", "LEVEL2", "LEVEL1"];

type Entries = [*mut vmm_gpt_entry_t; 4];
type Res<T> = Result<T, String>;

/// The operation being applied, for the panic hook.
struct Context {
    ops: *const Op,
    len: usize,
    index: AtomicUsize,
    format: Format,
    lib_name: &'static str,
    ref_name: &'static str,
}

static CONTEXT: AtomicPtr<Context> = AtomicPtr::new(ptr::null_mut());
/// Where a forked run reports a panic (see `isolate`), -1: nowhere.
pub(crate) static PANIC_FD: AtomicU64 = AtomicU64::new(u64::MAX);

#[cfg(vmm_gpt_sanitize)]
extern "C" {
    /// The sanitizer runtimes call this before they end the process.
    fn __sanitizer_set_death_callback(callback: Option<unsafe extern "C" fn()>);
}

/// Says which operation a kernel panic (or, with the sanitizers, a
/// sanitizer's error) happened in, before the process ends.
unsafe extern "C" fn panic_hook() {
    let ctx = CONTEXT.load(Ordering::SeqCst);
    if ctx.is_null() {
        return;
    }
    // SAFETY: CONTEXT points at the running `run()`'s Context (cleared
    // before it returns), on this thread, whose `ops` slice is alive.
    let ctx = unsafe { &*ctx };
    let i = ctx.index.load(Ordering::SeqCst);
    let op = if i < ctx.len {
        // SAFETY: i < len, inside the slice.
        format!("{:?}", unsafe { &*ctx.ops.add(i) })
    } else {
        "the final teardown".to_string()
    };
    // SAFETY: reads the calling thread's domain: the implementation that
    // was called last (every call is preceded by `Impl::enter`).
    let side = match unsafe { impls::ktest_kmem_domain() } {
        LIB_DOMAIN => "lib",
        REF_DOMAIN => "ref",
        _ => "-",
    };
    eprintln!(
        "difftest: the failure above happened in op #{i} of {} ({:?}), in the {}: {op}",
        ctx.len,
        ctx.format,
        match side {
            "lib" => ctx.lib_name,
            "ref" => ctx.ref_name,
            _ => "driver",
        }
    );
    let fd = PANIC_FD.load(Ordering::SeqCst);
    if fd != u64::MAX {
        let msg = format!("panic {i} {side}\n");
        // SAFETY: writing a live buffer to the result pipe of this forked
        // child; a short or failed write only loses the op index.
        unsafe { libc::write(fd as i32, msg.as_ptr().cast(), msg.len()) };
    }
}

/// One implementation with its GPT.
struct Impl {
    api: &'static Api,
    gpt: *mut vmm_gpt_t,
}

impl Impl {
    /// Charges what follows to this implementation's kmem domain.
    fn enter(&self) {
        // SAFETY: the domain is LIB_DOMAIN or REF_DOMAIN, both valid.
        unsafe { impls::ktest_kmem_set_domain(self.api.domain) }
    }

    fn walk(&self, gpa: u64, depth: u32) -> (Entries, u64) {
        let mut e: Entries = [SENTINEL; 4];
        self.enter();
        // SAFETY: a live GPT of this implementation; `e` has the
        // MAX_GPT_LEVEL entries a walk fills; depth is at most LEVEL1.
        let g = unsafe { (self.api.walk)(self.gpt, gpa, e.as_mut_ptr(), depth) };
        (e, g)
    }

    fn leaf(&self, gpa: u64) -> *mut vmm_gpt_entry_t {
        let (e, _) = self.walk(gpa, LEVEL1);
        e[LEVEL1 as usize]
    }

    /// `vmm_gpte_is_mapped` with both out-pointers.
    fn mapped(&self, ptep: *mut vmm_gpt_entry_t) -> Option<u64> {
        let mut pfn: libc::c_ulong = 0;
        let mut prot: c_uint = 0;
        self.enter();
        // SAFETY: ptep is an entry of a live leaf table (from a walk or the
        // iterator); the out-pointers are locals.
        let m = unsafe { (self.api.is_mapped)(ptep, &mut pfn, &mut prot) };
        m.then_some(pfn)
    }

    fn live_pages(&self) -> u64 {
        impls::domain_stats(self.api.domain).live_pages
    }

    /// The root table, as the walk of LEVEL4 finds it.
    fn root(&self) -> *const u64 {
        let (e, _) = self.walk(0, LEVEL4);
        (e[0] as usize & !0xfff) as *const u64
    }

    fn iter_init(&self, addr: u64, len: u64) -> vmm_gpt_iter_t {
        let mut it = vmm_gpt_harness::iter_zeroed();
        self.enter();
        // SAFETY: a live GPT and a range the original's ASSERTs accept in
        // this pair's build (checked by the caller); `it` is ours.
        unsafe { (self.api.iter_init)(&mut it, self.gpt, addr, len) };
        it
    }

    fn iter_next(&self, it: &mut vmm_gpt_iter_t) -> Option<(u64, *mut vmm_gpt_entry_t)> {
        let mut e = vmm_gpt_harness::iter_entry_zeroed();
        self.enter();
        // SAFETY: an iterator this implementation initialized, over its
        // live GPT, which no table change has invalidated since.
        unsafe { (self.api.iter_next)(it, &mut e) }.then_some((e.vgie_gpa, e.vgie_ptep))
    }
}

/// Reads an entry (single-threaded: no one else writes it meanwhile).
fn read(p: *const vmm_gpt_entry_t) -> u64 {
    // SAFETY: callers pass entries of live tables found by the
    // implementations' own walks and iterators; entries are 8-byte aligned
    // and accessed atomically by everyone.
    unsafe { AtomicU64::from_ptr(p as *mut u64) }.load(Ordering::SeqCst)
}

fn offset(p: *const vmm_gpt_entry_t) -> usize {
    p as usize & 0xfff
}

struct Runner<'a> {
    format: Format,
    /// A DEBUG pair: `ASSERT`-only inputs are skipped.
    debug: bool,
    lib: Impl,
    orig: Impl,
    regions: Regions,
    /// The model of the original's table tree (checked against both
    /// implementations' table counts, unless a fault was injected).
    tables: Tables,
    injected: bool,
    stats: Stats,
    since_check: u64,
    ops: &'a [Op],
    index: usize,
}

/// Applies `ops` to the implementation under test ([`impls::library`]) and
/// the original of its build ([`impls::reference_for`]: DEBUG for DEBUG,
/// non-DEBUG for non-DEBUG), with `format` installed in both, comparing
/// after every operation; ends with a whole-tree comparison,
/// unmapping and vacating every live region, and freeing both GPTs, after
/// which neither may hold any kernel memory.  On the first difference it
/// abandons both GPTs (their memory is reclaimed through the kmem domains)
/// and returns it.  Either way both formats are uninstalled again, so it
/// can be called again in the same process.
///
/// In a DEBUG pair, operations whose inputs only the original's `ASSERT`s
/// reject (iteration ranges that wrap past 2^64 or are unaligned) are
/// skipped as invalid: the DEBUG original panics on them.  In a non-DEBUG
/// pair they run, and must agree.
///
/// Panics when the original is not built ([`crate::reference_available`]).
/// Holds [`exclusive`] throughout.
pub fn run(format: Format, ops: &[Op]) -> Result<Stats, Divergence> {
    // The library, or what impls::select chose, and its build's original.
    let lib_api = impls::library();
    let orig_api = impls::reference_for(lib_api).unwrap_or_else(|| {
        panic!("vmm-gpt-difftest: the original vmm_gpt.c was not built (set ILLUMOS_GATE)")
    });
    let _guard = exclusive();
    // SAFETY: reads the calling thread's domain.
    let saved_domain = unsafe { impls::ktest_kmem_domain() };
    for d in [LIB_DOMAIN, REF_DOMAIN] {
        let s = impls::domain_stats(d);
        assert!(
            s.live_allocs == 0,
            "vmm-gpt-difftest: kmem domain {d} holds {} allocations before the run \
             (a previous user leaked)",
            s.live_allocs
        );
    }
    let ctx = Context {
        ops: ops.as_ptr(),
        len: ops.len(),
        index: AtomicUsize::new(0),
        format,
        lib_name: lib_api.name,
        ref_name: orig_api.name,
    };
    CONTEXT.store(&ctx as *const Context as *mut Context, Ordering::SeqCst);
    // SAFETY: installs a hook with the right signature; the previous one
    // is restored below.
    let old_hook = unsafe { impls::ktest_set_panic_hook(Some(panic_hook)) };
    #[cfg(vmm_gpt_sanitize)]
    // SAFETY: registers a function of the right signature; unset below.
    unsafe {
        __sanitizer_set_death_callback(Some(panic_hook))
    };

    let pte_impl = format.pte_impl();
    for api in [lib_api, orig_api] {
        // SAFETY: sets the calling thread's domain to a valid one.
        unsafe { impls::ktest_kmem_set_domain(api.domain) };
        // SAFETY: a format of the kernel stand-in, alive forever; nothing
        // is installed (fini at the end of every run, under the lock).
        let ok = unsafe { (api.init)(pte_impl) };
        assert!(ok, "vmm-gpt-difftest: {} vmm_gpt_init failed", api.name);
    }
    let mut r = Runner {
        format,
        debug: lib_api.debug,
        lib: Impl {
            api: lib_api,
            gpt: ptr::null_mut(),
        },
        orig: Impl {
            api: orig_api,
            gpt: ptr::null_mut(),
        },
        regions: Regions::default(),
        tables: Tables::default(),
        injected: false,
        stats: Stats::default(),
        since_check: 0,
        ops,
        index: 0,
    };
    let result = r.run_all(&ctx);
    if result.is_err() {
        // Abandon both GPTs: whatever state they are in, their memory goes.
        for d in [LIB_DOMAIN, REF_DOMAIN] {
            // SAFETY: nothing of either implementation is used afterwards
            // (the GPTs are dropped with the runner).
            unsafe { impls::ktest_kmem_domain_reclaim(d) };
        }
    }
    for api in [lib_api, orig_api] {
        // SAFETY: the installing init above succeeded.
        unsafe {
            impls::ktest_kmem_set_domain(api.domain);
            (api.fini)();
        }
    }
    // SAFETY: plain setters of the kernel stand-in's state; the saved
    // domain was valid.
    unsafe {
        impls::ktest_set_hw_ad_supported(true);
        impls::ktest_kmem_set_domain(saved_domain);
        impls::ktest_set_panic_hook(old_hook);
    }
    #[cfg(vmm_gpt_sanitize)]
    // SAFETY: unregisters the callback.
    unsafe {
        __sanitizer_set_death_callback(None)
    };
    CONTEXT.store(ptr::null_mut(), Ordering::SeqCst);
    result.map(|()| r.stats)
}

impl Runner<'_> {
    fn run_all(&mut self, ctx: &Context) -> Result<(), Divergence> {
        self.alloc().map_err(|w| self.divergence(w))?;
        for (i, op) in self.ops.iter().enumerate() {
            self.index = i;
            ctx.index.store(i, Ordering::SeqCst);
            self.apply(op).map_err(|w| self.divergence(w))?;
            self.after_op().map_err(|w| self.divergence(w))?;
        }
        self.index = self.ops.len();
        ctx.index.store(self.index, Ordering::SeqCst);
        self.teardown().map_err(|w| self.divergence(w))
    }

    fn divergence(&self, detail: String) -> Divergence {
        let what = match self.ops.get(self.index) {
            Some(op) => format!("{op:?}: {detail}"),
            None => format!("final teardown: {detail}"),
        };
        Divergence {
            op_index: self.index,
            what,
        }
    }

    fn both(&self) -> [&Impl; 2] {
        [&self.lib, &self.orig]
    }

    /// Calls `call` on each side (entered), with its entry of `entries`
    /// (NULL for calls on the GPT alone), and compares the results: a
    /// difference is reported as "`what` returned X (library) vs Y
    /// (original)".
    fn call_both<T: PartialEq + std::fmt::Debug>(
        &self,
        entries: [*mut vmm_gpt_entry_t; 2],
        what: impl FnOnce() -> String,
        mut call: impl FnMut(&Impl, *mut vmm_gpt_entry_t) -> T,
    ) -> Res<T> {
        let [l, o] = [(&self.lib, entries[0]), (&self.orig, entries[1])].map(|(side, p)| {
            side.enter();
            call(side, p)
        });
        if l != o {
            return Err(format!(
                "{} returned {l:?} (library) vs {o:?} (original)",
                what()
            ));
        }
        Ok(l)
    }

    fn alloc(&mut self) -> Res<()> {
        for side in [&mut self.lib, &mut self.orig] {
            side.enter();
            // SAFETY: allocates a new GPT.
            side.gpt = unsafe { (side.api.alloc)() };
        }
        self.compare_pages("vmm_gpt_alloc")
    }

    /// Unmaps and vacates every live region, frees the tables left by
    /// populates that only created tables (populating and vacating a page
    /// in each, as a consumer would have to: the original's free would
    /// fail its VERIFY), frees both GPTs, and checks that neither holds
    /// any kernel memory.
    fn free(&mut self) -> Res<()> {
        self.compare_trees("before vmm_gpt_free")?;
        for (addr, len) in self.regions.sorted() {
            self.vacate_checked(addr, len)?;
        }
        while let Some(base) = self.tables.any() {
            if self.injected {
                break;
            }
            self.stats.cleanups += 1;
            let before = self.tables.len();
            self.populate_checked(base, PAGE)?;
            self.vacate_checked(base, PAGE)?;
            if self.tables.len() >= before {
                return Err(format!(
                    "the model of the original's tables frees nothing when a page at 0x{base:x} \
                     is populated and vacated (a bug of difftest)"
                ));
            }
        }
        self.regions.clear();
        self.tables.clear();
        let (l, o) = (self.lib.live_pages(), self.orig.live_pages());
        if l != 1 || o != 1 {
            return Err(format!(
                "with every region vacated, the library holds {l} table pages, the \
                 original {o} (only the root should be left)"
            ));
        }
        for side in self.both() {
            side.enter();
            // SAFETY: a live GPT with nothing populated, freed once.
            unsafe { (side.api.free)(side.gpt) };
        }
        self.lib.gpt = ptr::null_mut();
        self.orig.gpt = ptr::null_mut();
        let l = impls::domain_stats(LIB_DOMAIN);
        let o = impls::domain_stats(REF_DOMAIN);
        if l.live_allocs != 0 || o.live_allocs != 0 {
            return Err(format!(
                "after vmm_gpt_free the library holds {} allocations ({} bytes), the \
                 original {} ({} bytes)",
                l.live_allocs, l.live_bytes, o.live_allocs, o.live_bytes
            ));
        }
        Ok(())
    }

    fn teardown(&mut self) -> Res<()> {
        self.free()
    }

    /// Checks after every operation: live table pages, and now and then
    /// the whole trees.
    fn after_op(&mut self) -> Res<()> {
        self.stats.ops += 1;
        self.compare_pages("after the operation")?;
        self.since_check += 1;
        let tables = self.lib.live_pages();
        if self.since_check >= CHECK_INTERVAL.max(tables) {
            self.compare_trees("periodic check")?;
        }
        Ok(())
    }

    fn compare_pages(&mut self, when: &str) -> Res<()> {
        let (l, o) = (self.lib.live_pages(), self.orig.live_pages());
        if l != o {
            return Err(format!(
                "{when}: the library holds {l} table pages, the original {o}"
            ));
        }
        let m = self.tables.len() as u64 + 1;
        if !self.injected && m != o {
            return Err(format!(
                "{when}: both hold {o} table pages, but the model of the original's tables \
                 has {m} (a bug of difftest's model)"
            ));
        }
        self.stats.peak_tables = self.stats.peak_tables.max(l);
        Ok(())
    }

    fn skip(&mut self) -> Res<()> {
        self.stats.skipped += 1;
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Res<()> {
        match *op {
            Op::Populate { addr, len } => self.populate(addr, len),
            Op::Vacate { addr } => match self.regions.length_at(addr) {
                Some(len) => self.vacate_checked(addr, len),
                None => self.skip(),
            },
            Op::VacateRange { addr, len } => {
                match regions::vacate_check(&self.tables, &self.regions, addr, len, self.debug) {
                    Some(plan) => {
                        self.stats.odd_vacates += 1;
                        self.vacate(addr, len, &plan)
                    }
                    None => self.skip(),
                }
            }
            Op::Fill(f) => self.fill(f),
            Op::Fault {
                gpa,
                prot,
                attr,
                pfn,
            } => self.fault(gpa, prot, attr, pfn),
            Op::Walk { gpa, depth } => {
                if depth > LEVEL1 {
                    return self.skip();
                }
                self.walk(gpa, depth).map(drop)
            }
            Op::IsMapped { gpa, want } => self.is_mapped(gpa, want),
            Op::HwSetAd {
                gpa,
                accessed,
                dirty,
            } => self.hw_set_ad(gpa, accessed, dirty),
            Op::ResetAccessed { gpa, on } => self.reset(gpa, on, false),
            Op::ResetDirty { gpa, on } => self.reset(gpa, on, true),
            Op::Query { gpa } => self.query(gpa),
            Op::Track { addr, len, reset } => self.track(addr, len, reset),
            Op::Unmap { gpa } => self.unmap(gpa),
            Op::UnmapRegion { addr, len } => self.unmap_region(addr, len),
            Op::GetPmtp { track_dirty } => self.get_pmtp(track_dirty),
            Op::CanTrackDirty { hw_ad } => self.can_track_dirty(hw_ad),
            Op::Check => self.compare_trees("Check"),
            Op::Realloc => {
                self.stats.reallocs += 1;
                self.free()?;
                self.alloc()
            }
            Op::InjectFlipBit { side, gpa, bit } => {
                if bit >= 64 {
                    return self.skip();
                }
                let leaf = self.side(side).leaf(gpa);
                if !leaf.is_null() {
                    // SAFETY: an entry of a live leaf table of that side.
                    unsafe { AtomicU64::from_ptr(leaf) }.fetch_xor(1 << bit, Ordering::SeqCst);
                }
                Ok(())
            }
            Op::InjectExtraPopulate { side, gpa } => {
                if gpa >= GPA_END {
                    return self.skip();
                }
                self.injected = true;
                let this = self.side(side);
                this.enter();
                // SAFETY: a live GPT; one page-aligned page below 2^48.
                unsafe { (this.api.populate_region)(this.gpt, gpa & !(PAGE - 1), PAGE) };
                Ok(())
            }
        }
    }

    fn side(&self, side: Side) -> &Impl {
        match side {
            Side::Lib => &self.lib,
            Side::Ref => &self.orig,
        }
    }

    fn populate(&mut self, addr: u64, len: u64) -> Res<()> {
        let Some(region) =
            regions::populate_check(&self.regions, addr, len, self.debug, RUN_MAX_LIVE)
        else {
            return self.skip();
        };
        let aligned = addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE);
        if region.is_none() || !aligned {
            self.stats.odd_populates += 1;
        }
        self.populate_unchecked(addr, len, region)
    }

    /// A populate the caller knows to be valid.
    fn populate_checked(&mut self, addr: u64, len: u64) -> Res<()> {
        match regions::populate_check(&self.regions, addr, len, self.debug, RUN_MAX_LIVE) {
            Some(region) => self.populate_unchecked(addr, len, region),
            None => Err(format!(
                "vmm_gpt_populate_region(0x{addr:x}, 0x{len:x}) is not valid for the model \
                 (a bug of difftest)"
            )),
        }
    }

    fn populate_unchecked(&mut self, addr: u64, len: u64, region: Option<(u64, u64)>) -> Res<()> {
        for side in self.both() {
            side.enter();
            // SAFETY: a live GPT; a range the original completes without
            // corrupting its tree, in this pair's build (populate_check).
            unsafe { (side.api.populate_region)(side.gpt, addr, len) };
        }
        self.tables.populate(addr, len);
        if let Some((a, l)) = region {
            self.regions.insert(a, l);
        }
        self.stats.populates += 1;
        self.stats.peak_populated = self.stats.peak_populated.max(self.regions.live_bytes());
        self.compare_pages("after vmm_gpt_populate_region")
    }

    /// `vmm_gpt_unmap_region` + `vmm_gpt_vacate_region` of a range the
    /// caller knows to be valid (a live region, a page populated for the
    /// cleanup).
    fn vacate_checked(&mut self, addr: u64, len: u64) -> Res<()> {
        match regions::vacate_check(&self.tables, &self.regions, addr, len, self.debug) {
            Some(plan) => self.vacate(addr, len, &plan),
            None => Err(format!(
                "vacating [0x{addr:x}, +0x{len:x}) is not valid for the model (a bug of \
                 difftest)"
            )),
        }
    }

    /// `vmm_gpt_unmap_region` + `vmm_gpt_vacate_region` of `[addr, addr +
    /// len)` in both, and in the model as `plan` says.
    fn vacate(&mut self, addr: u64, len: u64, plan: &VacatePlan) -> Res<()> {
        self.unmap_region(addr, len)?;
        for side in self.both() {
            side.enter();
            // SAFETY: a live GPT; a range whose pages are unmapped and
            // whose leaf tables count every entry it takes off (the plan).
            unsafe { (side.api.vacate_region)(side.gpt, addr, len) };
        }
        self.tables.vacate_apply(plan);
        regions::depopulate(&mut self.regions, plan);
        self.stats.vacates += 1;
        self.compare_pages("after vmm_gpt_vacate_region")
    }

    /// Compares the walks of both to `gpa` at `depth`; returns the leaf
    /// entries (at `depth`) of both.
    fn walk(&mut self, gpa: u64, depth: u32) -> Res<[*mut vmm_gpt_entry_t; 2]> {
        self.stats.walks += 1;
        let (el, gl) = self.lib.walk(gpa, depth);
        let (eo, go) = self.orig.walk(gpa, depth);
        let ctx = || format!("vmm_gpt_walk(0x{gpa:x}, {})", NAMES[depth as usize]);
        if gl != go {
            return Err(format!(
                "{}: returned 0x{gl:x} (library) vs 0x{go:x} (original)",
                ctx()
            ));
        }
        for lvl in 0..4 {
            let (a, b) = (el[lvl], eo[lvl]);
            if lvl > depth as usize {
                if a != SENTINEL || b != SENTINEL {
                    return Err(format!(
                        "{}: entries[{}] beyond the depth written: library {a:p}, \
                         original {b:p} (was {SENTINEL:p})",
                        ctx(),
                        NAMES[lvl]
                    ));
                }
                continue;
            }
            self.compare_entry(a, b, lvl, &ctx)?;
        }
        let d = depth as usize;
        Ok([el[d], eo[d]])
    }

    /// Compares two entry pointers of one level: NULL pattern, position in
    /// the table, value (table address masked out above the leaves).
    fn compare_entry(
        &self,
        a: *mut vmm_gpt_entry_t,
        b: *mut vmm_gpt_entry_t,
        lvl: usize,
        ctx: &dyn Fn() -> String,
    ) -> Res<()> {
        if a.is_null() != b.is_null() {
            return Err(format!(
                "{}: {} entry: library {a:p}, original {b:p} (NULL in one only)",
                ctx(),
                NAMES[lvl]
            ));
        }
        if a.is_null() {
            return Ok(());
        }
        if offset(a) != offset(b) {
            return Err(format!(
                "{}: {} entry at table offset 0x{:x} (library) vs 0x{:x} (original)",
                ctx(),
                NAMES[lvl],
                offset(a),
                offset(b)
            ));
        }
        let (x, y) = (read(a), read(b));
        if !self.same_entry(x, y, lvl) {
            return Err(format!(
                "{}: {} entry (offset 0x{:x}) is 0x{x:x} (library) vs 0x{y:x} (original)",
                ctx(),
                NAMES[lvl],
                offset(a)
            ));
        }
        Ok(())
    }

    /// Does the format see a present entry (a table link or a page)?  The
    /// PFN if so.
    fn parse(&self, pte: u64) -> Option<u64> {
        let parse = self.format.pte_impl().vpi_pte_parse?;
        let mut pfn: libc::c_ulong = 0;
        // SAFETY: the format's parse function; `pfn` is a local, protp NULL.
        unsafe { parse(pte, &mut pfn, ptr::null_mut()) }.then_some(pfn)
    }

    /// Equal, but for the address of a linked table above the leaves.
    fn same_entry(&self, x: u64, y: u64, lvl: usize) -> bool {
        if lvl == LEVEL1 as usize || x == y {
            return x == y;
        }
        match (self.parse(x), self.parse(y)) {
            (Some(_), Some(_)) => x & !PA_MASK == y & !PA_MASK,
            _ => false,
        }
    }

    /// Whether both leaves map a page (the same answer, compared).
    fn both_mapped(&self, l: *mut vmm_gpt_entry_t, o: *mut vmm_gpt_entry_t) -> Res<Option<u64>> {
        if l.is_null() {
            return Ok(None);
        }
        let (ml, mo) = (self.lib.mapped(l), self.orig.mapped(o));
        if ml != mo {
            return Err(format!(
                "vmm_gpte_is_mapped of entry 0x{:x}: library {ml:?}, original {mo:?}",
                read(l)
            ));
        }
        Ok(ml)
    }

    fn compare_values(
        &self,
        what: &str,
        l: *mut vmm_gpt_entry_t,
        o: *mut vmm_gpt_entry_t,
    ) -> Res<()> {
        let (x, y) = (read(l), read(o));
        if x != y {
            return Err(format!(
                "{what}: the entry is 0x{x:x} (library) vs 0x{y:x} (original)"
            ));
        }
        Ok(())
    }

    fn valid_mapping(&self, prot: Prot, attr: u8) -> bool {
        !prot.is_empty() && Prot::all().contains(prot) && self.format.memory_types().contains(&attr)
    }

    /// `vmm_gpt_map_at` on both leaves (non-NULL, inside a live region).
    fn map_at(
        &mut self,
        leaves: [*mut vmm_gpt_entry_t; 2],
        pfn: u64,
        prot: Prot,
        attr: u8,
    ) -> Res<()> {
        let [l, o] = leaves;
        let pfn = match self.both_mapped(l, o)? {
            Some(mapped) => mapped,
            None => pfn & PFN_MASK,
        };
        let what = || format!("vmm_gpt_map_at(pfn 0x{pfn:x}, {prot:?}, attr {attr})");
        // SAFETY: an entry of a live leaf table; if it maps a page it is
        // mapped with its own PFN, as a racing fault would.
        let mapped = self.call_both(leaves, what, |side, p| unsafe {
            (side.api.map_at)(side.gpt, p, pfn as libc::c_ulong, prot.bits(), attr)
        })?;
        if mapped {
            self.stats.maps += 1;
        }
        self.compare_values("after vmm_gpt_map_at", l, o)
    }

    /// Iterates `[addr, addr + len)` in both, in step, comparing every
    /// entry and the iterator state; `each` acts on each pair of entries
    /// (gpa, index in the sequence, entries).
    fn iterate(
        &mut self,
        addr: u64,
        len: u64,
        mut each: impl FnMut(&mut Self, u64, u64, [*mut vmm_gpt_entry_t; 2]) -> Res<()>,
    ) -> Res<()> {
        let ctx = || format!("iteration over [0x{addr:x}, +0x{len:x})");
        let mut il = self.lib.iter_init(addr, len);
        let mut io = self.orig.iter_init(addr, len);
        self.compare_iter(&il, &io, &ctx)?;
        let mut n = 0u64;
        loop {
            let (a, b) = (self.lib.iter_next(&mut il), self.orig.iter_next(&mut io));
            match (a, b) {
                (None, None) => break,
                (Some((ga, pa)), Some((gb, pb))) => {
                    self.stats.iterated += 1;
                    let at = || format!("{}, entry #{n} at 0x{ga:x}", ctx());
                    if ga != gb {
                        return Err(format!(
                            "{}: gpa 0x{ga:x} (library) vs 0x{gb:x} (original)",
                            at()
                        ));
                    }
                    if pa.is_null() || pb.is_null() {
                        return Err(format!("{}: NULL entry: {pa:p} vs {pb:p}", at()));
                    }
                    self.compare_entry(pa, pb, LEVEL1 as usize, &at)?;
                    each(self, ga, n, [pa, pb])?;
                    self.compare_iter(&il, &io, &at)?;
                }
                (a, b) => {
                    return Err(format!(
                        "{}, after {n} entries: next is {:?} (library) vs {:?} (original)",
                        ctx(),
                        a.map(|e| e.0),
                        b.map(|e| e.0)
                    ))
                }
            }
            n += 1;
        }
        Ok(())
    }

    /// The iterators' visible state: range, position, entry pattern.
    fn compare_iter(
        &self,
        a: &vmm_gpt_iter_t,
        b: &vmm_gpt_iter_t,
        ctx: &dyn Fn() -> String,
    ) -> Res<()> {
        let pa = (a.vgi_addr, a.vgi_end, a.vgi_current);
        let pb = (b.vgi_addr, b.vgi_end, b.vgi_current);
        if pa != pb {
            return Err(format!(
                "{}: iterator (addr, end, current) = {pa:x?} (library) vs {pb:x?} (original)",
                ctx()
            ));
        }
        for ((&x, &y), name) in a.vgi_entries.iter().zip(&b.vgi_entries).zip(NAMES) {
            if x.is_null() != y.is_null() || (!x.is_null() && offset(x) != offset(y)) {
                return Err(format!(
                    "{}: iterator {name} entry {x:p} (library) vs {y:p} (original)",
                    ctx()
                ));
            }
        }
        Ok(())
    }

    /// Whether an iteration of `[addr, addr + len)` (iter_init,
    /// unmap_region) passes the original's `ASSERT`s: page-aligned, not
    /// wrapping past 2^64.  Any range is valid in a non-DEBUG pair.
    fn range_ok(&self, addr: u64, len: u64) -> bool {
        !self.debug
            || (addr.is_multiple_of(PAGE)
                && len.is_multiple_of(PAGE)
                && addr.checked_add(len).is_some())
    }

    fn fill(&mut self, f: Fill) -> Res<()> {
        if !self.range_ok(f.addr, f.len) || !self.valid_mapping(f.prot, f.attr) {
            return self.skip();
        }
        self.iterate(f.addr, f.len, |r, gpa, n, leaves| {
            if f.skip & (1 << (n % 64)) != 0 || r.regions.containing(gpa).is_none() {
                return Ok(());
            }
            let page = f.pfn.wrapping_add(gpa.wrapping_sub(f.addr) / PAGE);
            r.map_at(leaves, page, f.prot, f.attr)
        })
    }

    fn fault(&mut self, gpa: u64, prot: Prot, attr: u8, pfn: u64) -> Res<()> {
        if !self.valid_mapping(prot, attr) {
            return self.skip();
        }
        let leaves = self.walk(gpa, LEVEL1)?;
        if leaves[0].is_null() || self.regions.containing(gpa).is_none() {
            return Ok(());
        }
        self.map_at(leaves, pfn, prot, attr)
    }

    fn is_mapped(&mut self, gpa: u64, want: u8) -> Res<()> {
        let [l, o] = self.walk(gpa, LEVEL1)?;
        if l.is_null() {
            return Ok(());
        }
        let what = || format!("vmm_gpte_is_mapped(want {want}) as (mapped, pfn, prot)");
        self.call_both([l, o], what, |side, p| {
            let mut pfn: libc::c_ulong = 0xdead_beef;
            let mut prot: c_uint = 0xdead;
            let pfnp: *mut libc::c_ulong = if want & 1 != 0 {
                &mut pfn
            } else {
                ptr::null_mut()
            };
            let protp: *mut c_uint = if want & 2 != 0 {
                &mut prot
            } else {
                ptr::null_mut()
            };
            // SAFETY: an entry of a live leaf table; each out-pointer is a
            // local or NULL.
            let m = unsafe { (side.api.is_mapped)(p, pfnp, protp) };
            (m, pfn, prot)
        })
        .map(drop)
    }

    fn hw_set_ad(&mut self, gpa: u64, accessed: bool, dirty: bool) -> Res<()> {
        let [l, o] = self.walk(gpa, LEVEL1)?;
        if self.both_mapped(l, o)?.is_none() {
            return Ok(());
        }
        let pte_impl = self.format.pte_impl();
        let bits = if accessed {
            pte_impl.vpi_bit_accessed
        } else {
            0
        } | if dirty { pte_impl.vpi_bit_dirty } else { 0 };
        for p in [l, o] {
            // SAFETY: an entry of a live leaf table that maps a page; the
            // hardware sets A/D bits with an atomic OR.
            unsafe { AtomicU64::from_ptr(p) }.fetch_or(bits, Ordering::SeqCst);
        }
        Ok(())
    }

    fn reset(&mut self, gpa: u64, on: bool, dirty: bool) -> Res<()> {
        let [l, o] = self.walk(gpa, LEVEL1)?;
        if self.both_mapped(l, o)?.is_none() {
            return Ok(());
        }
        self.reset_entry([l, o], on, dirty)
    }

    fn reset_entry(&mut self, leaves: [*mut vmm_gpt_entry_t; 2], on: bool, dirty: bool) -> Res<()> {
        let [l, o] = leaves;
        let name = if dirty {
            "vmm_gpte_reset_dirty"
        } else {
            "vmm_gpte_reset_accessed"
        };
        self.call_both(
            leaves,
            || format!("{name}({on})"),
            // SAFETY: an entry of a live leaf table that maps a page.
            |side, p| unsafe {
                if dirty {
                    (side.api.reset_dirty)(p, on)
                } else {
                    (side.api.reset_accessed)(p, on)
                }
            },
        )?;
        self.compare_values(&format!("after {name}({on})"), l, o)
    }

    fn query_entry(&self, leaves: [*mut vmm_gpt_entry_t; 2]) -> Res<()> {
        let what = || {
            format!(
                "vmm_gpte_query_accessed/_dirty of entry 0x{:x}",
                read(leaves[0])
            )
        };
        // SAFETY: an entry of a live leaf table.
        self.call_both(leaves, what, |side, p| unsafe {
            ((side.api.query_accessed)(p), (side.api.query_dirty)(p))
        })
        .map(drop)
    }

    fn query(&mut self, gpa: u64) -> Res<()> {
        let leaves = self.walk(gpa, LEVEL1)?;
        if leaves[0].is_null() {
            return Ok(());
        }
        self.query_entry(leaves)
    }

    fn track(&mut self, addr: u64, len: u64, reset: Option<bool>) -> Res<()> {
        if !self.range_ok(addr, len) {
            return self.skip();
        }
        self.iterate(addr, len, |r, _gpa, _n, leaves| {
            r.query_entry(leaves)?;
            match reset {
                Some(on) if r.both_mapped(leaves[0], leaves[1])?.is_some() => {
                    r.reset_entry(leaves, on, true)
                }
                _ => Ok(()),
            }
        })
    }

    fn unmap(&mut self, gpa: u64) -> Res<()> {
        let what = || format!("vmm_gpt_unmap(0x{gpa:x})");
        // SAFETY: a live GPT; any GPA (the walk takes it mod 2^48).
        let unmapped = self.call_both([ptr::null_mut(); 2], what, |side, _| unsafe {
            (side.api.unmap)(side.gpt, gpa)
        })?;
        self.stats.unmaps += u64::from(unmapped);
        // What it cleared (or did not) is compared through a walk.
        self.walk(gpa, LEVEL1).map(drop)
    }

    fn unmap_region(&mut self, addr: u64, len: u64) -> Res<()> {
        if !self.range_ok(addr, len) {
            return self.skip();
        }
        let what = || format!("vmm_gpt_unmap_region(0x{addr:x}, 0x{len:x})");
        // SAFETY: a live GPT; a range the original's ASSERTs accept in this
        // pair's build.
        let unmapped = self.call_both([ptr::null_mut(); 2], what, |side, _| unsafe {
            (side.api.unmap_region)(side.gpt, addr, len)
        })?;
        self.stats.unmaps += unmapped as u64;
        Ok(())
    }

    fn get_pmtp(&mut self, track_dirty: bool) -> Res<()> {
        let mut out = [(0u64, 0u64); 2];
        for (k, side) in self.both().into_iter().enumerate() {
            side.enter();
            // SAFETY: a live GPT.
            let v = unsafe { (side.api.get_pmtp)(side.gpt, track_dirty) };
            let root = side.root() as u64;
            if v & PA_MASK != root {
                return Err(format!(
                    "vmm_gpt_get_pmtp({track_dirty}) of the {} is 0x{v:x}, whose address is \
                     not its root table's (0x{root:x})",
                    side.api.name
                ));
            }
            out[k] = (v & !PA_MASK, v);
        }
        if out[0].0 != out[1].0 {
            return Err(format!(
                "vmm_gpt_get_pmtp({track_dirty}): 0x{:x} (library) vs 0x{:x} (original), \
                 beyond the root's address",
                out[0].1, out[1].1
            ));
        }
        Ok(())
    }

    fn can_track_dirty(&mut self, hw_ad: bool) -> Res<()> {
        // SAFETY: a setter of the stand-in formats' state.
        unsafe { impls::ktest_set_hw_ad_supported(hw_ad) };
        let what = || format!("vmm_gpt_can_track_dirty with hardware A/D {hw_ad}");
        // SAFETY: a live GPT.
        let can = self.call_both([ptr::null_mut(); 2], what, |side, _| unsafe {
            (side.api.can_track_dirty)(side.gpt)
        })?;
        if can != hw_ad {
            return Err(format!(
                "vmm_gpt_can_track_dirty with hardware A/D {hw_ad} returned {can} in both"
            ));
        }
        Ok(())
    }

    /// Compares the whole hardware table trees from the roots: structure
    /// and every entry bit but the table addresses; and that each holds
    /// exactly the table pages it can reach.
    fn compare_trees(&mut self, when: &str) -> Res<()> {
        self.since_check = 0;
        self.stats.tree_checks += 1;
        let mut counts = [1u64; 2];
        self.compare_tables([self.lib.root(), self.orig.root()], 0, 0, &mut counts)
            .map_err(|e| format!("{when}: table trees differ: {e}"))?;
        self.stats.tables_compared += counts[0];
        for (side, n) in self.both().into_iter().zip(counts) {
            let held = side.live_pages();
            if held != n {
                return Err(format!(
                    "{when}: the {} holds {held} table pages, but {n} are linked from its root",
                    side.api.name
                ));
            }
        }
        Ok(())
    }

    fn compare_tables(
        &self,
        t: [*const u64; 2],
        lvl: usize,
        base: u64,
        counts: &mut [u64; 2],
    ) -> Res<()> {
        // SAFETY: both are live table pages (the roots, or tables linked by
        // present entries of live tables), 512 aligned entries each, which
        // nothing changes while we read (single-threaded).
        let (a, b) = unsafe { (&*(t[0] as *const [u64; 512]), &*(t[1] as *const [u64; 512])) };
        let span = 1u64 << (39 - 9 * lvl);
        if lvl == LEVEL1 as usize {
            if a != b {
                let i = (0..512).find(|&i| a[i] != b[i]).unwrap_or(0);
                return Err(format!(
                    "LEVEL1 table of 0x{base:x}: entry {i} (gpa 0x{:x}) is 0x{:x} (library) \
                     vs 0x{:x} (original)",
                    base + i as u64 * span,
                    a[i],
                    b[i]
                ));
            }
            return Ok(());
        }
        for i in 0..512 {
            let (x, y) = (a[i], b[i]);
            let gpa = base + i as u64 * span;
            if !self.same_entry(x, y, lvl) {
                let mut s = String::new();
                let _ = write!(
                    s,
                    "{} table of 0x{base:x}: entry {i} (gpa 0x{gpa:x}) is 0x{x:x} (library) vs \
                     0x{y:x} (original)",
                    NAMES[lvl]
                );
                return Err(s);
            }
            if let (Some(pl), Some(po)) = (self.parse(x), self.parse(y)) {
                counts[0] += 1;
                counts[1] += 1;
                // The stand-in's hat_kpm_pfn2va: identity.
                let next = [(pl << 12) as *const u64, (po << 12) as *const u64];
                self.compare_tables(next, lvl + 1, gpa, counts)?;
            }
        }
        Ok(())
    }
}
