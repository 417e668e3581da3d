//! The litmus test of the accessed/dirty barrier (`ctest/c/test_litmus.c`)
//! with `vmm_gpt_harvest_dirty` as the scanner.
//!
//! `vmp_release()` in vmm_vm.c marks a page dirty after the page was
//! written; with the opt-in extension, the migration scan that takes the
//! dirty bits is one harvest, `vmspace_bits_operate()` calling
//! `vmm_gpt_harvest_dirty(gpt, gpa, len, bitmap, RESET | BITMAP_OUT)`:
//!
//! ```text
//! publisher:  page data word = t;  vmm_gpte_reset_dirty(ptep, true)
//! scanner:    n = vmm_gpt_harvest_dirty(gpt, gpa, len, bitmap, RESET | BITMAP_OUT);
//!             if (the page's bit of bitmap) copy = word
//! ```
//!
//! Each trial starts with the page's dirty bit already set (as the hardware
//! sets it) and the word old: then only the publisher's locked
//! compare-and-swap orders its store of the word before its look at the
//! entry, and only the harvest's locked read-modify-write orders its take
//! of the bit before the scanner's read of the word.  A lost dirty page:
//! after both threads finished a trial, the bit is clear and the scanner
//! did not copy the new word (the next scan would not see the page, and
//! the copy is stale).  The scanner alternates two harvests: of the page
//! alone (`PAGESIZE`), and of a 32-page range around it that crosses a
//! leaf-table boundary, with another dirty page before it (in the other
//! leaf table), a clean mapped page after it and an unmapped one last; for
//! both, the returned count and the whole bitmap (written over a pattern
//! each trial) must say exactly what was dirty.
//!
//! The timing is test_litmus.c's (a barrier per half-trial, each side's
//! start moved by 0 or 1 pause), with one addition: the harvest walks from
//! the root (and, for the range, along 29 entries and into the next table)
//! before it reaches the entry, so the publisher starts after a random 0 to
//! [`SPREAD`] steps of an empty loop (0 to about 110 ns on the 2-CPU test
//! machine), which puts its store and its look at the entry around the
//! harvest's take for some trials of both shapes.  Without it the natural
//! control lost about 1 trial in 10^5 with the page alone and none with
//! the range (unpinned, 2026-12-01); with it, about 1 in 4000 of each then,
//! and now, pinned, from none to 0.59% of its trials (docs/race-tests.md).  The page is near the end
//! of the range for the same reason: the less the harvest does after its
//! take, the less time the publisher's store has to become visible before
//! the scanner reads the word.  The two threads are pinned to two CPUs, as
//! in test_litmus.c.
//!
//! Every opt-in copy linked ([`vmm_gpt_impls::harvests`]: the staticlib of
//! the feature `harvest-dirty`, the kernel objects of `build.sh --harvest`)
//! runs three phases per PTE format, test_litmus.c's:
//!
//! 1. `VMM_GPT_LITMUS_TRIALS` trials with its own `vmm_gpte_reset_dirty`
//!    as the publisher: no page may be lost, and every harvest's count and
//!    bitmap must be exact.
//! 2. The natural control, reported, never judged: a publisher that skips
//!    the compare-and-swap when the bit is already set (a plain load, no
//!    store, as the library once did), in program order, for at most
//!    [`NATURAL_TRIALS`] trials or [`NATURAL_LIMIT`].  Only the store buffer
//!    can make it lose, and in some runs it lost nothing: it cannot be a
//!    verdict.
//! 3. The reordered control, judged: the same publisher with its look at
//!    the entry before its store of the word and 0 to [`WINDOW`] - 1 spins
//!    between them, the store buffer's reordering made explicit.  It must
//!    lose pages with both harvests, which shows that the test can see the
//!    loss it is for; it stops after [`CONTROL_ENOUGH`] losses (with one CPU
//!    it runs but cannot fail).
//!
//! A correct tree fails this test with probability far below 10^-9 per run
//! (docs/race-tests.md, 200 runs of scripts/race-repeat.sh, half of them
//! beside two busy processes): phase 1 cannot lose a page, and its limit
//! (120 s) is 15 times its longest measured duration (7.9 s); each harvest
//! shape of phase 3 lost at least 0.57% of its trials in every run, at
//! 6 200 trials a second or more (half of 12 400), so within the 120 s
//! limit it loses none with probability (1 - 0.0057)^(7.4 x 10^5), about
//! e^-4300, or e^-170 were the trials correlated over whole 4 ms time
//! slices.
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_LITMUS_TRIALS` | 1000000 | trials of phase 1 per copy and format (the natural control: at most 100 000 of them) |
//! | `VMM_GPT_LITMUS_LIMIT_S` | 120 | seconds of phase 1 before it fails, and of the reordered control before it stops |
//!
//! Without an opt-in copy linked the test skips, and fails instead under
//! `VMM_GPT_REQUIRE_HARVEST=1` (CI).  It needs no original.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::env;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vmm_gpt::abi::{vmm_gpt_entry_t, vmm_gpt_t};
use vmm_gpt_difftest::{impls, program, Format, GIB, MIB, PAGE};
use vmm_gpt_harness::{set_domain, Gpt, HarvestFlags, Prot, MTRR_WB};
use vmm_gpt_impls::{Api, Harvest, HarvestFn};

const NAME: &str = "harvest_litmus";

/// The natural control's time limit: it stops there, without a verdict.
const NATURAL_LIMIT: Duration = Duration::from_secs(5);

/// The reordered control stops once it lost this many, at least one with
/// each harvest shape.
const CONTROL_ENOUGH: u64 = 1000;

/// The reordered control's window: its store of the word comes 0 to
/// `WINDOW - 1` spin-loop hints after its look at the entry.
const WINDOW: u64 = 64;

/// Trials of the natural control (reported, never judged), at most.
const NATURAL_TRIALS: u64 = 100_000;

/// Who publishes: the copy's `vmm_gpte_reset_dirty`, or a control.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Publisher {
    /// The copy under test, which must lose nothing.
    Copy,
    /// The old behaviour in program order (store the word, then look at
    /// the entry): only the store buffer can make it lose; reported.
    Natural,
    /// The old behaviour with its look at the entry first, then a window,
    /// then the store of the word: what a store buffer allows, stretched;
    /// it must lose.
    Reordered,
}

/// The publisher's start moves by a random 0 to `SPREAD - 1` steps of an
/// empty loop (module comment).
const SPREAD: u64 = 200;

/// The 32-page range of the multi-page harvest: from 24 pages below a
/// leaf-table boundary (2 MiB) past 1 GiB to 8 pages above it.
const RANGE: u64 = GIB + 2 * MIB - 24 * PAGE;
const RANGE_PAGES: u64 = 32;
/// The page under test: page 29 of the range, in the second leaf table.
const TARGET_INDEX: u64 = 29;
const TARGET: u64 = RANGE + TARGET_INDEX * PAGE;
/// Dirtied by the scanner each trial too, before the target in the
/// harvest's order (in the first leaf table).
const NEIGHBOR_INDEX: u64 = 3;
/// Never mapped (its entry is zero: clean); page 30 is mapped and clean.
const HOLE_INDEX: u64 = 31;

/// The two harvests the scanner alternates: `(what, gpa, len, bit of the
/// target, the other pages found dirty)`.
const SHAPES: [(&str, u64, u64, u64, u64); 2] = [
    ("the page alone", TARGET, PAGE, 0, 0),
    (
        "32 pages around it",
        RANGE,
        RANGE_PAGES * PAGE,
        TARGET_INDEX,
        1 << NEIGHBOR_INDEX,
    ),
];

/// `vmm_gpte_reset_dirty`'s type: the copy's, or the control's.
type ResetFn = unsafe extern "C" fn(*mut vmm_gpt_entry_t, bool) -> bool;

/// A value on a cache line of its own.
#[repr(align(64))]
struct Line<T>(T);

/// What both threads share for one phase, laid out as test_litmus.c's
/// `litmus_t`: the settings, the word's line, the barrier's line.
#[repr(C)]
struct Litmus<'a> {
    /// The page's leaf entry, in a live leaf table.
    target: &'a AtomicU64,
    /// The neighbor's.
    neighbor: &'a AtomicU64,
    /// The format's dirty bit.
    dirty: u64,
    gpt: *mut vmm_gpt_t,
    harvest: HarvestFn,
    reset: ResetFn,
    publisher: Publisher,
    trials: u64,
    /// Losses to stop at, one per shape at least (0: none).
    enough: u64,
    limit: Duration,
    /// The page's data word.
    word: Line<AtomicU64>,
    sync: Line<Barrier>,
}

/// The barrier: arrivals (2 per phase, 2 phases per trial; 32 bits, for
/// futex()), threads asleep in it, and the abort flag.
struct Barrier {
    arrived: AtomicU32,
    sleepers: AtomicU32,
    abort: AtomicBool,
}

// SAFETY: the raw GPT pointer is only passed to the copy's harvest, which
// runs concurrently with entry updates by design (under the VM's read
// lock in the kernel); the GPT outlives both threads (scoped), and nothing
// changes its tables meanwhile.
unsafe impl Sync for Litmus<'_> {}

/// What a phase found.
#[derive(Default)]
struct Outcome {
    /// Trials completed.
    done: u64,
    /// Lost dirty pages, per shape.
    lost: [u64; 2],
    /// The first trial that lost one, or 0.
    first_lost: u64,
    /// The first trial whose count or bitmap was wrong.
    wrong: Option<String>,
    seconds: f64,
}

impl Outcome {
    /// The losses of a control: "N lost dirty pages (P%; a the page alone,
    /// b 32 pages around it)", the rate with `digits` decimals.
    fn losses(&self, digits: usize) -> String {
        let lost = self.lost[0] + self.lost[1];
        format!(
            "{lost} lost dirty pages ({:.digits$}%; {} {}, {} {})",
            100.0 * lost as f64 / self.done.max(1) as f64,
            self.lost[0],
            SHAPES[0].0,
            self.lost[1],
            SHAPES[1].0,
        )
    }

    /// What every phase must show whoever publishes: each harvest's count
    /// and bitmap right (`self.wrong`), the entry changed in its dirty bit
    /// only (`check`).  Fails each that does not, naming `what`.
    fn invariants(
        &self,
        what: &str,
        check: Result<(), String>,
        fail: &mut impl FnMut(String),
    ) -> bool {
        let mut ok = true;
        if let Some(w) = &self.wrong {
            ok = false;
            fail(format!("{what}a harvest reported wrongly: {w}"));
        }
        if let Err(e) = check {
            ok = false;
            fail(format!("{what}{e}"));
        }
        ok
    }
}

fn futex_wait(addr: &AtomicU32, val: u32) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    // SAFETY: FUTEX_WAIT on a live 32-bit atomic of ours, with a timeout;
    // it only reads the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0,
        );
    }
}

fn futex_wake(addr: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live 32-bit atomic of ours.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        );
    }
}

impl Litmus<'_> {
    /// Arrives at barrier `phase` (1-based: trial t has phases 2t - 1,
    /// before the operations, and 2t, after them) and waits for the other
    /// thread; false when the run was aborted.  It spins, so that both
    /// threads leave it together on two CPUs, and after a while sleeps
    /// until the other arrives (test_litmus.c's barrier).
    fn barrier(&self, phase: u64) -> bool {
        let arrived = &self.sync.0.arrived;
        let want = (2 * phase) as u32;
        if arrived.fetch_add(1, Ordering::SeqCst).wrapping_add(1) >= want {
            if self.sync.0.sleepers.load(Ordering::SeqCst) != 0 {
                futex_wake(arrived);
            }
            return true;
        }
        for _ in 0..1000 {
            if arrived.load(Ordering::Acquire) >= want {
                return true;
            }
            std::hint::spin_loop();
        }
        self.sync.0.sleepers.fetch_add(1, Ordering::SeqCst);
        loop {
            let v = arrived.load(Ordering::SeqCst);
            if v >= want {
                break;
            }
            if self.sync.0.abort.load(Ordering::Relaxed) {
                self.sync.0.sleepers.fetch_sub(1, Ordering::SeqCst);
                return false;
            }
            futex_wait(arrived, v);
        }
        self.sync.0.sleepers.fetch_sub(1, Ordering::SeqCst);
        true
    }

    /// The publisher: write the word, then mark the page dirty.
    fn publisher(&self) {
        let mut rng = vmm_gpt_harness::Rng(0x9e37_79b9_7f4a_7c15);
        for t in 1..=self.trials {
            if !self.barrier(2 * t - 1) {
                break;
            }
            // Somewhere in the harvest's way to the entry (see SPREAD).
            for i in 0..(rng.next() >> 20) % SPREAD {
                std::hint::black_box(i);
            }
            jitter(&mut rng);
            if self.publisher == Publisher::Reordered {
                self.publish_reordered(t, &mut rng);
            } else {
                self.word.0.store(t, Ordering::Relaxed);
                // Only the CPU may move the store past the reset's look at
                // the entry (the store buffer), not the compiler.
                compiler_fence(Ordering::SeqCst);
                // SAFETY: the target's entry, in a live leaf table; the
                // reset is the copy's (or the natural control's), atomic on
                // the entry.
                unsafe { (self.reset)(self.target.as_ptr(), true) };
            }
            if !self.barrier(2 * t) {
                break;
            }
        }
    }

    /// The reordered control's publisher: the old behaviour's look at the
    /// entry (a plain load; nothing stored when the bit is already set)
    /// first, then 0 to `WINDOW - 1` spin-loop hints, then the store of the
    /// word.
    fn publish_reordered(&self, t: u64, rng: &mut vmm_gpt_harness::Rng) {
        let pte = self.target.load(Ordering::Acquire);
        for _ in 0..(rng.next() >> 40) % WINDOW {
            std::hint::spin_loop();
        }
        self.word.0.store(t, Ordering::Relaxed);
        if pte & self.dirty == 0 {
            self.target.fetch_or(self.dirty, Ordering::SeqCst);
        }
    }

    /// The scanner, which also sets each trial up (the word old, the dirty
    /// bits set as the hardware sets them, the bitmap a pattern) and judges
    /// it once both are done.
    fn scanner(&self) -> Outcome {
        let mut rng = vmm_gpt_harness::Rng(0x2545_f491_4f6c_dd1d);
        let start = Instant::now();
        let mut out = Outcome::default();
        for t in 1..=self.trials {
            let shape = (t % 2) as usize;
            let (_, gpa, len, bit, others) = SHAPES[shape];
            let pattern = if t & 2 != 0 { 0xff } else { 0 };
            let mut bitmap = [pattern; (RANGE_PAGES / 8) as usize];
            let mut copy = 0;

            self.word.0.store(0, Ordering::Relaxed);
            self.target.fetch_or(self.dirty, Ordering::SeqCst);
            if others != 0 {
                self.neighbor.fetch_or(self.dirty, Ordering::SeqCst);
            }
            if !self.barrier(2 * t - 1) {
                break;
            }
            jitter(&mut rng);
            // SAFETY: a live GPT of the copy, its format installed; the
            // bitmap has a bit for every page of the range (32 at most).
            let found = unsafe {
                (self.harvest)(
                    self.gpt,
                    gpa,
                    len as usize,
                    bitmap.as_mut_ptr(),
                    (HarvestFlags::RESET | HarvestFlags::BITMAP_OUT).bits(),
                )
            };
            compiler_fence(Ordering::SeqCst);
            let took = bitmap[(bit / 8) as usize] & (1 << (bit % 8)) != 0;
            if took {
                copy = self.word.0.load(Ordering::Relaxed);
            }
            if !self.barrier(2 * t) {
                break;
            }

            let pte = self.target.load(Ordering::SeqCst);
            if pte & self.dirty == 0 && copy != t {
                if out.lost[0] + out.lost[1] == 0 {
                    out.first_lost = t;
                }
                out.lost[shape] += 1;
            }
            // Exactly the pages dirty at the harvest, the target if it
            // took it and the neighbor in the range, written over the
            // pattern; the bits of no other page touched.
            let visited = ((1u64 << (len / PAGE)) - 1) as u32;
            let dirty_bits = others as u32 | (u32::from(took) << bit);
            let expected = (u32::from_le_bytes([pattern; 4]) & !visited) | dirty_bits;
            if out.wrong.is_none()
                && (u32::from_le_bytes(bitmap) != expected
                    || found != dirty_bits.count_ones() as usize
                    || self.neighbor.load(Ordering::SeqCst) & self.dirty != 0)
            {
                out.wrong = Some(format!(
                    "trial {t}, {}: returned {found}, bitmap {bitmap:02x?} (written over \
                     0x{pattern:02x}), expected {:02x?} and {}; the neighbor's entry 0x{:x} \
                     afterwards",
                    SHAPES[shape].0,
                    expected.to_le_bytes(),
                    dirty_bits.count_ones(),
                    self.neighbor.load(Ordering::SeqCst)
                ));
            }
            out.done = t;
            let enough = self.enough != 0
                && out.lost.iter().all(|&l| l > 0)
                && out.lost[0] + out.lost[1] >= self.enough;
            if enough || (t % 4096 == 0 && start.elapsed() > self.limit) {
                self.sync.0.abort.store(true, Ordering::Relaxed);
                break;
            }
        }
        out.seconds = start.elapsed().as_secs_f64();
        out
    }
}

/// Moves this side's start by 0 or 1 pause (random), as test_litmus.c
/// does: measured there, this spread makes the control lose the most.
#[inline]
fn jitter(rng: &mut vmm_gpt_harness::Rng) {
    if (rng.next() >> 40) & 1 != 0 {
        std::hint::spin_loop();
    }
}

/// The format's dirty bit, for [`control_reset_dirty`].
static CONTROL_DIRTY_BIT: AtomicU64 = AtomicU64::new(0);

/// The old behaviour, for the control: a plain load, and no
/// compare-and-swap at all when the bit already holds the requested value.
/// Not inlined (and called through a pointer, as the copies' are), so that
/// the compiler cannot move the caller's store of the word past its load:
/// only the CPU's store buffer can.
#[inline(never)]
unsafe extern "C" fn control_reset_dirty(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool {
    let bit = CONTROL_DIRTY_BIT.load(Ordering::Relaxed);
    // SAFETY: the caller passes a live, aligned entry; every access to it
    // is atomic.
    let e = unsafe { AtomicU64::from_ptr(ptep) };
    let pte = e.load(Ordering::Acquire);
    if (pte & bit != 0) == on {
        return pte & bit != 0;
    }
    let old = if on {
        e.fetch_or(bit, Ordering::SeqCst)
    } else {
        e.fetch_and(!bit, Ordering::SeqCst)
    };
    old & bit != 0
}

/// CPUs this process may run on.
fn cpus_available() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set) as usize
    }
}

/// The first two CPUs of this process's set, when it has two.
fn two_cpus() -> Option<[usize; 2]> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // fills it, and CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let mut cpus = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set));
        Some([cpus.next()?, cpus.next()?])
    }
}

/// Pins the calling thread to `cpu` (test_litmus.c's pin_pair: each side
/// then shares its CPU with other work at most, never with the other side,
/// so that beside busy processes the two still run at once rather than
/// hand over through futex sleeps).
fn pin_self(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes one
    // bit of it within CPU_SETSIZE (cpu came from the process's set);
    // sched_setaffinity(0, ..) only changes the calling thread's mask.
    unsafe {
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
    }
}

/// The copy's format, installed until dropped (with the lock held).
struct Installed(&'static Api);

impl Drop for Installed {
    fn drop(&mut self) {
        // SAFETY: the caller holds the process-wide lock and dropped every
        // GPT of this copy first.
        unsafe { (self.0.fini)() };
    }
}

/// The GPT of one phase: the range populated, every page but the hole
/// mapped; unmapped, vacated and freed when dropped.
struct Tables {
    gpt: Gpt,
}

impl Tables {
    fn new(api: &'static Api) -> Tables {
        let gpt = Gpt::alloc(api);
        gpt.populate(RANGE, RANGE_PAGES * PAGE);
        for i in (0..RANGE_PAGES).filter(|&i| i != HOLE_INDEX) {
            let pte = gpt.leaf(RANGE + i * PAGE).expect("a populated page");
            assert!(
                pte.map_at(0x1000 + i, Prot::all(), MTRR_WB),
                "{}: map_at",
                api.name
            );
        }
        Tables { gpt }
    }

    /// The leaf entry of `gpa`, as an atomic, valid while `self` is.
    fn entry(&self, gpa: u64) -> &AtomicU64 {
        let pte = self.gpt.leaf(gpa).expect("a populated page");
        // SAFETY: an aligned entry of a live leaf table, which lives until
        // the GPT is vacated in drop (after every borrow of self ended);
        // every access to it is atomic.
        unsafe { AtomicU64::from_ptr(pte.addr() as *mut u64) }
    }
}

impl Drop for Tables {
    fn drop(&mut self) {
        self.gpt.unmap_region(RANGE, RANGE_PAGES * PAGE);
        self.gpt.vacate(RANGE, RANGE_PAGES * PAGE);
    }
}

/// One phase: `trials` trials of `reset` against `h`'s harvest, in two
/// threads.
fn run_phase(
    h: &Harvest,
    format: Format,
    publisher: Publisher,
    trials: u64,
    enough: u64,
    limit: Duration,
) -> (Outcome, Result<(), String>) {
    let tables = Tables::new(h.api);
    let target = tables.entry(TARGET);
    let neighbor = tables.entry(RANGE + NEIGHBOR_INDEX * PAGE);
    let dirty = format.bit_dirty();
    let mapped = target.load(Ordering::SeqCst);
    let lm = Litmus {
        target,
        neighbor,
        dirty,
        gpt: tables.gpt.as_ptr(),
        harvest: h.harvest_dirty,
        reset: match publisher {
            Publisher::Natural => control_reset_dirty,
            _ => h.api.reset_dirty,
        },
        publisher,
        trials,
        enough,
        limit,
        word: Line(AtomicU64::new(0)),
        sync: Line(Barrier {
            arrived: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            abort: AtomicBool::new(false),
        }),
    };
    let cpus = two_cpus();
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(c) = cpus {
                pin_self(c[0]);
            }
            lm.publisher()
        });
        s.spawn(|| {
            if let Some(c) = cpus {
                pin_self(c[1]);
            }
            lm.scanner()
        })
        .join()
        .expect("the scanner")
    });
    // Nothing but the dirty bits ever changed.
    let now = target.load(Ordering::SeqCst);
    let check = if now & !dirty != mapped & !dirty {
        Err(format!(
            "the target entry went from 0x{mapped:x} to 0x{now:x}: more than its dirty bit \
             changed"
        ))
    } else {
        Ok(())
    };
    (out, check)
}

/// One copy, one format: the copy must lose nothing; the control must
/// lose something (on two CPUs).  Returns (passed, failed) checks.
fn run_copy(h: &Harvest, format: Format, trials: u64, limit: Duration) -> (u64, u64) {
    let _lock = vmm_gpt_harness::exclusive();
    set_domain(h.api.domain);
    // SAFETY: the process-wide lock is held; nothing is installed in the
    // copy (every user uninstalls before releasing the lock).
    let ok = unsafe { (h.api.init)(format.pte_impl()) };
    assert!(ok, "{}: vmm_gpt_init refused the format", h.api.name);
    let _installed = Installed(h.api);
    let (mut passed, mut failed) = (0, 0);
    let mut fail = |msg: String| {
        println!("{NAME}: FAILED: {}, {format:?}: {msg}", h.api.name);
        failed += 1;
    };

    let (out, check) = run_phase(h, format, Publisher::Copy, trials, 0, limit);
    println!(
        "{NAME}: {}, {format:?}: {} trials in {:.2} s, {} lost dirty pages ({} {}, {} {})",
        h.api.name,
        out.done,
        out.seconds,
        out.lost[0] + out.lost[1],
        out.lost[0],
        SHAPES[0].0,
        out.lost[1],
        SHAPES[1].0,
    );
    let mut ok = true;
    if out.done != trials {
        ok = false;
        fail(format!(
            "only {} of {trials} trials in {:.0} s (the limit, VMM_GPT_LITMUS_LIMIT_S): is the \
             machine that busy?",
            out.done,
            limit.as_secs_f64()
        ));
    }
    if out.lost != [0, 0] {
        ok = false;
        fail(format!(
            "{} of {} trials lost a dirty page (the first: trial {}): the harvest and the \
             reset(true) must each be a full barrier on the entry, as the original's \
             atomic_cas_64",
            out.lost[0] + out.lost[1],
            out.done,
            out.first_lost
        ));
    }
    if !out.invariants("", check, &mut fail) {
        ok = false;
    }
    if ok {
        passed += 1;
    }

    // The natural control: the old publisher in program order; its rate is
    // the test's power against the real defect, printed, never judged.
    CONTROL_DIRTY_BIT.store(format.bit_dirty(), Ordering::Relaxed);
    let (out, check) = run_phase(
        h,
        format,
        Publisher::Natural,
        NATURAL_TRIALS.min(trials),
        0,
        NATURAL_LIMIT,
    );
    println!(
        "{NAME}: natural control (no compare-and-swap when the bit is already set; not \
         judged), {}, {format:?}: {} trials in {:.2} s, {}",
        h.api.name,
        out.done,
        out.seconds,
        out.losses(4),
    );
    let mut ok = out.invariants("natural control: ", check, &mut fail);

    // The reordered control: the old publisher with its look at the entry
    // before its store loses pages against the same scanner (with two
    // CPUs; with one it cannot, and is not run).  Bounded by time and
    // losses; its trial count only keeps the barrier's 32-bit arrival
    // count (4 per trial) from wrapping.
    let cpus = cpus_available();
    if cpus < 2 {
        println!("{NAME}: reordered control: one CPU, where the loss cannot happen: not run");
        if ok {
            passed += 1;
        }
        set_domain(0);
        return (passed, failed);
    }
    let (out, check) = run_phase(
        h,
        format,
        Publisher::Reordered,
        1 << 30,
        CONTROL_ENOUGH,
        limit,
    );
    println!(
        "{NAME}: reordered control (look at the entry, 0-{} spins, store the word), {}, \
         {format:?}: {} trials in {:.3} s, {}, on {cpus} CPUs",
        WINDOW - 1,
        h.api.name,
        out.done,
        out.seconds,
        out.losses(2),
    );
    if out.lost[0] == 0 || out.lost[1] == 0 {
        ok = false;
        fail(format!(
            "reordered control: the old publisher lost {} and {} dirty pages with the two \
             harvests in {} trials ({:.0} s) on {cpus} CPUs: the test cannot see the loss it is \
             for",
            out.lost[0], out.lost[1], out.done, out.seconds
        ));
    }
    if !out.invariants("reordered control: ", check, &mut fail) {
        ok = false;
    }
    if ok {
        passed += 1;
    }
    set_domain(0);
    (passed, failed)
}

fn main() {
    program::answer_list(NAME);
    let trials = program::env_u64(NAME, "VMM_GPT_LITMUS_TRIALS", 1_000_000).max(1);
    let limit = Duration::from_secs(program::env_u64(NAME, "VMM_GPT_LITMUS_LIMIT_S", 120));
    let copies = impls::harvests();
    if copies.is_empty() {
        let why = "no opt-in build is linked (VMM_GPT_HARVEST_STATICLIB, \
                   VMM_GPT_KERNEL_OBJECT_HARVEST[_DEBUG]: scripts/test.sh sets them)";
        if env::var("VMM_GPT_REQUIRE_HARVEST").is_ok_and(|v| v == "1") {
            println!("{NAME}: VMM_GPT_REQUIRE_HARVEST=1, but {why}");
            program::close(NAME, 0, 1, 0);
        }
        println!("{NAME}: {why}: skipped");
        program::close(NAME, 0, 0, 1);
    }
    let start = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    for h in &copies {
        for format in Format::ALL {
            let (p, f) = run_copy(h, format, trials, limit);
            passed += p;
            failed += f;
        }
    }
    println!(
        "{NAME}: {} copies x 2 formats in {:.1} s",
        copies.len(),
        start.elapsed().as_secs_f64()
    );
    program::close(NAME, passed, failed, 0);
}
