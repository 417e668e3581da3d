//! `vmm_gpt_harvest_dirty` against the loop it replaces, over the original.
//!
//! The opt-in builds (the staticlib with the feature `harvest-dirty`, the
//! kernel objects of `build.sh --harvest`) export `vmm_gpt_harvest_dirty`,
//! which must do exactly what `vmspace_bits_operate()` in vmm_vm.c does for
//! `VBO_GET_DIRTY` / `VBO_RESET_DIRTY`, with and without
//! `VBO_FLAG_BITMAP_IN` / `_OUT`: iterate the range, query or reset each
//! entry's dirty bit, and keep one bit per page in the bitmap.  Here each
//! opt-in copy and the original of its build (non-DEBUG with non-DEBUG,
//! DEBUG with DEBUG) get the same random tree: regions populated (some
//! across leaf-table, 1 GiB and 512 GiB boundaries, one at the top of the
//! 48-bit space), pages mapped at random with random accessed and dirty
//! bits (and a few stray dirty bits in unmapped entries), and leaf tables
//! missing between the regions.  Then, again and again, a random range
//! (anywhere around the regions, past them, aliased at and above 2^48,
//! wrapping past 2^64 and unaligned for the non-DEBUG pairs), random flags
//! and a random input bitmap with guard bytes on both sides: the opt-in
//! copy harvests, the loop runs over the original, and the counts, the
//! whole bitmaps (guards included) and every leaf entry of both trees must
//! be identical afterwards.
//!
//! Then, each in a forked child, what must panic: a bitmap flag with a
//! NULL bitmap (where the loop would write through it), unknown flags, an
//! unaligned start whose first page has a leaf table with a bitmap flag
//! (the loop's bitmap index wraps there), and in DEBUG builds the
//! iterator's ASSERTs (unaligned, wrapping).
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_HARVEST_TREES` | 40 | trees per copy and format |
//! | `VMM_GPT_HARVEST_OPS` | 60 | harvests per tree |
//! | `VMM_GPT_HARVEST_SEED` | 20261201 | |
//!
//! Without an opt-in copy linked the test skips, and fails instead under
//! `VMM_GPT_REQUIRE_HARVEST=1` (CI); the same for the original and
//! `VMM_GPT_REQUIRE_REFERENCE=1`.

use std::env;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;

use std::ffi::c_uint;
use std::sync::atomic::{AtomicUsize, Ordering};
use vmm_gpt_difftest::{impls, program, Format, GIB, MIB, PAGE};
use vmm_gpt_harness::{set_domain, Gpt, HarvestFlags, Prot, Rng, MTRR_WB};

use vmm_gpt::abi::vmm_gpt_t;
use vmm_gpt_impls::{Api, Harvest, HarvestFn};

const NAME: &str = "harvest";

const RESET: HarvestFlags = HarvestFlags::RESET;
const BITMAP_IN: HarvestFlags = HarvestFlags::BITMAP_IN;
const BITMAP_OUT: HarvestFlags = HarvestFlags::BITMAP_OUT;

/// Guard bytes on each side of a bitmap.
const GUARD: usize = 16;
/// The top of the 48-bit guest-physical space.
const TOP: u64 = 1 << 48;

/// One implementation's side: its table, its GPT, the regions populated
/// in it (vacated when dropped, also after a failed check: the original
/// panics freeing a GPT with populated regions).
struct Side {
    api: &'static Api,
    gpt: Gpt,
    regions: Vec<(u64, u64)>,
}

impl Drop for Side {
    fn drop(&mut self) {
        set_domain(self.api.domain);
        for &(s, l) in &self.regions {
            self.gpt.unmap_region(s, l);
            self.gpt.vacate(s, l);
        }
    }
}

impl Side {
    fn new(api: &'static Api) -> Side {
        set_domain(api.domain);
        Side {
            api,
            gpt: Gpt::alloc(api),
            regions: Vec::new(),
        }
    }

    /// Every leaf entry over `regions`, as `(gpa, value)`.
    fn leaves(&self, regions: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        for &(addr, len) in regions {
            self.gpt
                .for_each_leaf(addr, len, |gpa, pte| v.push((gpa, pte.load())));
        }
        v
    }
}

/// The bytes of a bitmap for `[gpa, gpa + len)`: one bit per page the
/// iterator can yield, `ceil(ceil(len / PAGE) / 8)`.
fn bitmap_bytes(len: u64) -> usize {
    (len.div_ceil(PAGE).div_ceil(8)) as usize
}

/// A random tree, the same in both sides: returns the regions populated.
fn build_tree(rng: &mut Rng, format: Format, a: &mut Side, b: &mut Side) -> Vec<(u64, u64)> {
    // Bases near the boundaries the iteration crosses: leaf tables (2 MiB),
    // L2 tables (1 GiB), L3 tables (512 GiB), the top of the space.
    let bases = [0, 2 * MIB, GIB, 4 * GIB, 512 * GIB, TOP - 4 * MIB];
    let mut regions: Vec<(u64, u64)> = Vec::new();
    let n = 1 + rng.next() % 5;
    while (regions.len() as u64) < n {
        let base = bases[(rng.next() % bases.len() as u64) as usize];
        let start = match rng.next() % 3 {
            0 => base.saturating_sub((rng.next() % 700) * PAGE),
            1 => base + (rng.next() % 700) * PAGE,
            _ => (rng.next() % (16 * GIB / PAGE)) * PAGE,
        };
        let pages = 1 + rng.next() % 1400;
        let end = (start + pages * PAGE).min(TOP);
        if end <= start || regions.iter().any(|&(s, l)| start < s + l && s < end) {
            continue;
        }
        regions.push((start, end - start));
    }
    let (accessed, dirty) = (format.bit_accessed(), format.bit_dirty());
    for side in [&mut *a, &mut *b] {
        set_domain(side.api.domain);
        for &(s, l) in &regions {
            side.gpt.populate(s, l);
        }
        side.regions = regions.clone();
    }
    let density = rng.next() % 4; // 0: sparse .. 3: dense
    for &(s, l) in &regions {
        for gpa in (s..s + l).step_by(PAGE as usize) {
            let r = rng.next();
            let (pa, pb) = (
                a.gpt.leaf(gpa).expect("a populated page has a leaf table"),
                b.gpt.leaf(gpa).expect("a populated page has a leaf table"),
            );
            if r % 4 <= density {
                let pfn = 0x1000 + (r >> 20) % 0x10_0000;
                let prot = Prot::from_bits_retain(1 + ((r >> 8) % 7) as u32);
                assert!(pa.map_at(pfn, prot, MTRR_WB) && pb.map_at(pfn, prot, MTRR_WB));
                let mut bits = 0;
                if r & 0x10 != 0 {
                    bits |= accessed;
                }
                if r & 0x20 != 0 {
                    bits |= dirty | accessed;
                }
                pa.hw_set(bits);
                pb.hw_set(bits);
            } else if r.is_multiple_of(97) {
                // A stray dirty bit in an empty entry: the loop's query
                // sees it, so must the harvest.
                pa.hw_set(dirty);
                pb.hw_set(dirty);
            }
        }
    }
    regions
}

/// A random range for a harvest over `regions`; `debug`: only what the
/// DEBUG builds accept (aligned, not wrapping).
fn pick_range(rng: &mut Rng, regions: &[(u64, u64)], debug: bool) -> (u64, u64) {
    let &(s, l) = &regions[(rng.next() % regions.len() as u64) as usize];
    let mut start = match rng.next() % 4 {
        0 => s,
        1 => s + (rng.next() % (l / PAGE)) * PAGE,
        2 => s.saturating_sub((rng.next() % 1100) * PAGE),
        _ => (rng.next() % (TOP / PAGE)) * PAGE,
    };
    let mut len = match rng.next() % 5 {
        0 => l,
        1 => 0,
        _ => (1 + rng.next() % 2600) * PAGE,
    };
    match rng.next() % 12 {
        // Aliased: the walk uses bits 47:12 only.
        0 => start += (1 + rng.next() % 0xffff) << 48,
        1 => start |= 0xffff << 48,
        2 if !debug => {
            // Wrapping past 2^64 (the non-DEBUG iterator yields nothing).
            start = 0u64.wrapping_sub((1 + rng.next() % 600) * PAGE);
            len = (700 + rng.next() % 600) * PAGE;
        }
        3 if !debug => len += 1 + rng.next() % (PAGE - 1),
        4 if !debug => start += 1 + rng.next() % (PAGE - 1),
        _ => {}
    }
    if debug && start.checked_add(len).is_none() {
        // An alias that would wrap: the DEBUG builds assert on it.
        start &= TOP - 1;
    }
    (start, len)
}

/// Formats installed in implementations: uninstalled when dropped.
struct Installed([&'static Api; 2]);

impl Drop for Installed {
    fn drop(&mut self) {
        for api in self.0 {
            // SAFETY: the caller holds the process-wide lock and dropped
            // every GPT of these implementations first.
            unsafe { (api.fini)() };
        }
    }
}

/// One copy against its build's original: `trees` random trees per format.
fn run_pair(
    h: &Harvest,
    reference: &'static Api,
    seed: u64,
    trees: u64,
    ops: u64,
) -> Result<u64, String> {
    let _lock = vmm_gpt_difftest::exclusive();
    let mut rng = Rng(seed | 1);
    let mut harvests = 0;
    let mut pages_seen = 0u64;
    for format in Format::ALL {
        // SAFETY: the process-wide lock is held; each implementation gets
        // the stand-in's format.
        unsafe {
            assert!((h.api.init)(format.pte_impl()) && (reference.init)(format.pte_impl()));
        }
        // Uninstalled on every way out, after the trees (declared later)
        // are gone.
        let _installed = Installed([h.api, reference]);
        for tree in 0..trees {
            let mut a = Side::new(h.api);
            let mut b = Side::new(reference);
            let regions = build_tree(&mut rng, format, &mut a, &mut b);
            for op in 0..ops {
                let (gpa, len) = pick_range(&mut rng, &regions, h.api.debug);
                // Every one of the 8 flag sets.
                let mut flags = HarvestFlags::from_bits_retain((rng.next() % 8) as u32);
                if gpa % PAGE != 0
                    && flags.intersects(BITMAP_IN | BITMAP_OUT)
                    && b.gpt.leaf(gpa).is_some()
                {
                    // The loop would index 2^49 bytes past the bitmap (the
                    // harvest panics: the death tests below).
                    flags &= RESET;
                }
                let n = bitmap_bytes(len).min(1 << 20);
                let mut bm_a = vec![0u8; n + 2 * GUARD];
                for byte in bm_a.iter_mut() {
                    *byte = rng.next() as u8;
                }
                let mut bm_b = bm_a.clone();
                set_domain(h.api.domain);
                // SAFETY: a live GPT of this copy; the bitmap has a byte
                // for every page of the range (and guards).
                let got = unsafe {
                    (h.harvest_dirty)(
                        a.gpt.as_ptr(),
                        gpa,
                        len as usize,
                        bm_a.as_mut_ptr().add(GUARD),
                        flags.bits(),
                    )
                };
                set_domain(reference.domain);
                let want = b.gpt.bits_operate(gpa, len, &mut bm_b[GUARD..], flags);
                harvests += 1;
                pages_seen += want as u64;
                let what = || {
                    format!(
                        "{} vs {}, {format:?}, seed {seed}, tree {tree}, harvest {op}: \
                         vmm_gpt_harvest_dirty(0x{gpa:x}, 0x{len:x}, {flags:?})",
                        h.api.name, reference.name
                    )
                };
                if got != want {
                    return Err(format!("{}: returned {got}, the loop found {want}", what()));
                }
                if let Some(i) = (0..bm_a.len()).find(|&i| bm_a[i] != bm_b[i]) {
                    return Err(format!(
                        "{}: bitmap byte {} is 0x{:02x}, the loop's 0x{:02x}{}",
                        what(),
                        i as i64 - GUARD as i64,
                        bm_a[i],
                        bm_b[i],
                        if i < GUARD || i >= GUARD + n {
                            " (a guard byte)"
                        } else {
                            ""
                        }
                    ));
                }
                if op % 8 == 7 || op + 1 == ops {
                    let (la, lb) = (a.leaves(&regions), b.leaves(&regions));
                    if la != lb {
                        let i = (0..la.len().min(lb.len()))
                            .find(|&i| la[i] != lb[i])
                            .unwrap_or(la.len().min(lb.len()));
                        return Err(format!(
                            "{}: afterwards the leaf entries differ at #{i}: {:x?} vs the \
                             original's {:x?}",
                            what(),
                            la.get(i),
                            lb.get(i)
                        ));
                    }
                }
            }
        }
    }
    println!(
        "{NAME}:   {} vs {}: {harvests} harvests identical ({pages_seen} pages found dirty)",
        h.api.name, reference.name
    );
    Ok(harvests)
}

/// Runs `f` in a forked child, its stderr captured: the signal that ended
/// it (or its exit code) and what it wrote.
fn in_child(f: impl FnOnce() -> i32) -> (Result<i32, i32>, String) {
    let mut out = tempfile();
    // SAFETY: this test program is single-threaded; the child only calls
    // the implementations and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: redirects the child's output to the capture file.
        unsafe {
            libc::dup2(out.as_raw_fd(), 1);
            libc::dup2(out.as_raw_fd(), 2);
        }
        let code = f();
        // SAFETY: ends the child without the parent's atexit handlers.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let mut text = String::new();
    // The child moved the shared file offset: read from the start.
    let _ = out.seek(SeekFrom::Start(0));
    let _ = out.read_to_string(&mut text);
    let outcome = if libc::WIFSIGNALED(status) {
        Err(libc::WTERMSIG(status))
    } else {
        Ok(libc::WEXITSTATUS(status))
    };
    (outcome, text)
}

/// An unlinked temporary file, read back from its start.
fn tempfile() -> fs::File {
    let path = env::temp_dir().join(format!("vmm-gpt-harvest-{}", std::process::id()));
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("a temporary file");
    let _ = fs::remove_file(&path);
    f
}

/// What must panic, each in a child: `(what, gpa, len, NULL bitmap?,
/// flags, only in DEBUG builds?)`, over a tree with 16 mapped, dirty
/// pages at 2 MiB.
fn must_panic(h: &Harvest) -> Result<(), String> {
    let _lock = vmm_gpt_difftest::exclusive();
    let cases: [(&str, u64, u64, bool, HarvestFlags, bool); 7] = [
        (
            "bitmap flag, NULL bitmap",
            2 * MIB,
            16 * PAGE,
            true,
            BITMAP_OUT,
            false,
        ),
        (
            "bitmap in, NULL bitmap",
            2 * MIB,
            16 * PAGE,
            true,
            BITMAP_IN | RESET,
            false,
        ),
        (
            "unknown flags",
            2 * MIB,
            16 * PAGE,
            false,
            HarvestFlags::from_bits_retain(8),
            false,
        ),
        (
            "unaligned start over a leaf, bitmap out",
            2 * MIB + 8,
            16 * PAGE,
            false,
            BITMAP_OUT,
            false,
        ),
        (
            "wrapping range",
            0u64.wrapping_sub(PAGE),
            2 * PAGE,
            false,
            HarvestFlags::empty(),
            true,
        ),
        (
            "unaligned start",
            2 * MIB + 8,
            16 * PAGE,
            false,
            RESET,
            true,
        ),
        (
            "unaligned length",
            2 * MIB,
            16 * PAGE + 1,
            false,
            RESET,
            true,
        ),
    ];
    for (what, gpa, len, null, flags, debug_only) in cases {
        let (outcome, text) = in_child(|| {
            // SAFETY: a fresh child: install the format, build the tree,
            // harvest; the bitmap has room for the range.
            unsafe {
                set_domain(h.api.domain);
                if !(h.api.init)(Format::Ept.pte_impl()) {
                    return 3;
                }
                let gpt = Gpt::alloc(h.api);
                gpt.populate(2 * MIB, 16 * PAGE);
                for i in 0..16 {
                    let pte = gpt.leaf(2 * MIB + i * PAGE).expect("populated");
                    pte.map_at(0x1000 + i, Prot::all(), MTRR_WB);
                    pte.hw_set(Format::Ept.bit_dirty() | Format::Ept.bit_accessed());
                }
                let mut bitmap = [0xffu8; 8];
                let bm = if null {
                    std::ptr::null_mut()
                } else {
                    bitmap.as_mut_ptr()
                };
                (h.harvest_dirty)(gpt.as_ptr(), gpa, len as usize, bm, flags.bits());
                std::mem::forget(gpt);
                0
            }
        });
        let expect_panic = !debug_only || h.api.debug;
        let ok = match outcome {
            Err(sig) => {
                expect_panic && sig == libc::SIGABRT && text.contains("vmm_gpt_harvest_dirty")
            }
            Ok(code) => !expect_panic && code == 0,
        };
        if !ok {
            return Err(format!(
                "{}: {what} (0x{gpa:x} + 0x{len:x}, {flags:?}): ended {outcome:?} (Err: \
                 signal), expected {}; output: {text}",
                h.api.name,
                if expect_panic {
                    "a panic naming vmm_gpt_harvest_dirty"
                } else {
                    "a return"
                }
            ));
        }
    }
    println!(
        "{NAME}:   {}: the 4 corrupting calls panic{}",
        h.api.name,
        if h.api.debug {
            ", and the 3 ASSERTs"
        } else {
            "; the ASSERTed ones return"
        }
    );
    Ok(())
}

/// The real harvest behind the doctored ones below.
static REAL: std::sync::Mutex<Option<HarvestFn>> = std::sync::Mutex::new(None);
/// Which doctoring [`doctored`] applies.
static DOCTOR: AtomicUsize = AtomicUsize::new(0);

/// The real harvest, doctored: (1) one output bit flipped, (2) the last
/// page left out, (3) a query that resets, (4) the count off by one.  Each
/// must make [`run_pair`] fail: a test of the comparison.
unsafe extern "C" fn doctored(
    gpt: *mut vmm_gpt_t,
    gpa: u64,
    len: usize,
    bitmap: *mut u8,
    flags: c_uint,
) -> usize {
    let real = REAL.lock().unwrap().expect("the real harvest");
    // SAFETY: the caller's arguments, passed on (narrowed for doctoring 2,
    // which only drops the last page; 3 only adds RESET).
    unsafe {
        match DOCTOR.load(Ordering::Relaxed) {
            1 => {
                let n = real(gpt, gpa, len, bitmap, flags);
                if n > 0 && flags & BITMAP_OUT.bits() != 0 {
                    *bitmap ^= 0x80;
                }
                n
            }
            2 => real(gpt, gpa, len.saturating_sub(PAGE as usize), bitmap, flags),
            3 => real(gpt, gpa, len, bitmap, flags | RESET.bits()),
            _ => real(gpt, gpa, len, bitmap, flags).wrapping_add(usize::from(len > 64 * 4096)),
        }
    }
}

/// The comparison catches each doctored harvest.
fn doctored_harvests_fail(h: &Harvest, reference: &'static Api, seed: u64) -> Result<(), String> {
    *REAL.lock().unwrap() = Some(h.harvest_dirty);
    let fake = Harvest {
        api: h.api,
        harvest_dirty: doctored,
    };
    for (d, what) in [
        (1, "an output bit flipped"),
        (2, "the last page left out"),
        (3, "a query that resets"),
        (4, "the count off by one"),
    ] {
        DOCTOR.store(d, Ordering::Relaxed);
        match run_pair(&fake, reference, seed, 4, 60) {
            Err(e) => println!(
                "{NAME}:   doctored ({what}) caught: {}",
                e.lines().next().unwrap_or("")
            ),
            Ok(n) => {
                return Err(format!(
                    "a harvest with {what} passed {n} comparisons with the loop"
                ))
            }
        }
    }
    Ok(())
}

fn skip_or_fail(var: &str, why: &str) -> ! {
    if env::var(var).is_ok_and(|v| v == "1") {
        println!("{NAME}: {var}=1, but {why}");
        program::close(NAME, 0, 1, 0);
    }
    println!("{NAME}: {why}: skipped");
    program::close(NAME, 0, 0, 1);
}

fn main() {
    program::answer_list(NAME);
    let trees = program::env_u64(NAME, "VMM_GPT_HARVEST_TREES", 40);
    let ops = program::env_u64(NAME, "VMM_GPT_HARVEST_OPS", 60);
    let seed = program::env_u64(NAME, "VMM_GPT_HARVEST_SEED", 20261201);
    let copies = impls::harvests();
    if copies.is_empty() {
        skip_or_fail(
            "VMM_GPT_REQUIRE_HARVEST",
            "no opt-in build is linked (VMM_GPT_HARVEST_STATICLIB, \
             VMM_GPT_KERNEL_OBJECT_HARVEST[_DEBUG]: scripts/test.sh sets them)",
        );
    }
    if !vmm_gpt_difftest::reference_available() {
        skip_or_fail(
            "VMM_GPT_REQUIRE_REFERENCE",
            "the original is not built (ILLUMOS_GATE unset)",
        );
    }
    let (mut passed, mut failed) = (0, 0);
    for h in &copies {
        let reference = impls::reference_for(h.api).expect("the original is built");
        for result in [
            run_pair(h, reference, seed, trees, ops).map(|_| ()),
            must_panic(h),
            doctored_harvests_fail(h, reference, seed),
        ] {
            match result {
                Ok(()) => passed += 1,
                Err(e) => {
                    println!("{NAME}: FAILED: {e}");
                    failed += 1;
                }
            }
        }
    }
    program::close(NAME, passed, failed, 0);
}
