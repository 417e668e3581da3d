//! The consumer test: bhyve's `vmm_vm.c`, the real caller of vmm_gpt,
//! compiled in userland (build.rs) once per implementation of vmm_gpt,
//! each copy driven by `c/driver.c` with the same seed, the transcripts
//! compared.
//!
//! Every run happens in a child process of its own ([`spawn`]): a panic of
//! vmm_vm.c or of an implementation (the stand-in's `panic()` aborts)
//! ends that run only and is reported with its message, a run that hangs
//! is killed after a time limit, and the process-global state (the
//! hot-patched stubs, the installed format, the kmem accounting) starts
//! fresh.  The child holds [`vmm_gpt_harness::exclusive`] while its copy
//! runs, as every user of that state does.  The test programs are plain
//! single-threaded `main`s (`harness = false`), so forking is safe.
//!
//! [`PAIRS`] says what is compared with what: each build of the library
//! with the original built the same way, the opt-in copies (the patched
//! `vmm_vm.c` over `vmm_gpt_harvest_dirty`) with the unpatched `vmm_vm.c`
//! over the original.  The transcripts must be identical; the first
//! difference is shown.

use std::ffi::{c_char, c_int, CStr};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// The library (plain `vmm_gpt_*` names) and the renamed implementations:
// linked for the copies' imports, which only the C archive references.
extern crate vmm_gpt;
pub use vmm_gpt_harness::Format;
pub use vmm_gpt_impls as impls;

/// `consumer_args_t` of `c/consumer.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Args {
    pub size: u32,
    pub format: u32,
    pub mode: u32,
    pub ops: u32,
    pub seed: u64,
    pub vcpus: u32,
    pub devices: u32,
}

/// The entry point of one copy: `consumer_<tag>_consumer_run`.
pub type RunFn = unsafe extern "C" fn(*const Args, *mut *mut c_char, *mut usize) -> c_int;

/// One copy of vmm_vm.c + driver over one implementation.
pub struct CopyDef {
    /// `consumer_<tag>_*`.
    pub tag: &'static str,
    /// The prefix of the implementation's symbols (`ref_`, ...; none for
    /// the library).
    pub prefix: &'static str,
    /// The vmm_vm.c it is built from (build.rs's `VARIANTS`): `fixed`
    /// (with `vmm_vm-unmap-held-pages.patch`), `harvest` (and
    /// `vmm_vm-harvest-dirty.patch`: the consumer of
    /// `vmm_gpt_harvest_dirty`), `unfixed` (the gate's as it is), `bounded`
    /// (the fix and `vmm_vm-hold-bounds.patch`).
    pub vmm_vm: &'static str,
    pub run: RunFn,
    /// Whether the implementation resolved (its imports may be weak).
    pub linked: unsafe extern "C" fn() -> c_int,
}

/// A mutant of the original: its copy's entry point, or why it was not
/// built.
pub struct MutantDef {
    pub name: &'static str,
    pub what: &'static str,
    pub run: Result<RunFn, &'static str>,
}

include!(concat!(env!("OUT_DIR"), "/copies.rs"));

/// `consumer.h`'s results.
const CONSUMER_OK: i32 = 0;
const CONSUMER_CHECK_FAILED: i32 = 1;

/// The scenario (`ca_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sequential,
    Concurrent,
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub format: Format,
    pub mode: Mode,
    pub seed: u64,
    /// Sequential: operations; concurrent: accesses per vCPU thread.
    pub ops: u32,
    pub vcpus: u32,
    pub devices: u32,
}

impl Params {
    /// A sequential run: `ops` operations from `seed` (no threads).
    pub fn sequential(format: Format, seed: u64, ops: u32) -> Params {
        Params {
            format,
            mode: Mode::Sequential,
            seed,
            ops,
            vcpus: 0,
            devices: 0,
        }
    }

    fn args(&self) -> Args {
        Args {
            size: std::mem::size_of::<Args>() as u32,
            format: match self.format {
                Format::Ept => 0,
                Format::Rvi => 1,
            },
            mode: match self.mode {
                Mode::Sequential => 0,
                Mode::Concurrent => 1,
            },
            ops: self.ops,
            seed: self.seed,
            vcpus: self.vcpus,
            devices: self.devices,
        }
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {} seed {}",
            self.format,
            match self.mode {
                Mode::Sequential => "sequential",
                Mode::Concurrent => "concurrent",
            },
            self.seed
        )
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// It ran to the end; `checks` false when an in-run check failed
    /// ("FAIL" lines in the transcript).
    Ran { transcript: String, checks: bool },
    /// It died (a panic aborts) or was killed at the time limit: how, and
    /// what it wrote to stderr.
    Died { how: String, stderr: String },
}

impl Outcome {
    /// The transcript of a run whose checks passed.
    pub fn clean(&self) -> Option<&str> {
        match self {
            Outcome::Ran {
                transcript,
                checks: true,
            } => Some(transcript),
            _ => None,
        }
    }

    /// What went wrong, for a message (the FAIL lines, or the death).
    pub fn trouble(&self) -> String {
        match self {
            Outcome::Ran { transcript, .. } => transcript
                .lines()
                .filter(|l| l.starts_with("FAIL"))
                .collect::<Vec<_>>()
                .join("\n"),
            Outcome::Died { how, stderr } => {
                let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("{how}; its stderr ends:\n{}", tail.join("\n"))
            }
        }
    }
}

/// A run in a child process.
pub struct Child {
    pid: libc::pid_t,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

/// The per-process scratch directory for the children's output.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmm-gpt-consumer.{}", std::process::id()));
    fs::create_dir_all(&dir).expect("creating the scratch directory");
    dir
}

/// Removes the scratch directory (at the end of a test program).
pub fn cleanup() {
    let _ = fs::remove_dir_all(scratch());
}

/// When a run counts as hung: after `cpu` of CPU time (user and system,
/// all its threads: a run spinning forever), or after `wall` of wall-clock
/// time (one that sleeps forever).  A CPU-time limit is what holds under
/// load: a busy machine stretches a run's wall-clock time (see
/// `tests/concurrent.rs` for the numbers), hardly its CPU time.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub cpu: Duration,
    pub wall: Duration,
}

/// Runs `run` with `params` in a child process, killed at `limit`.
pub fn spawn(run: RunFn, name: &str, params: &Params, limit: Limit) -> Child {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch();
    let out = dir.join(format!("{n}.{name}.out"));
    let err = dir.join(format!("{n}.{name}.err"));
    let args = params.args();
    let (out_c, err_c) = (cstring(&out), cstring(&err));
    // SAFETY: the test programs are single-threaded (`harness = false`),
    // so the child may run anything; it leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: in the child: plain system calls on paths we own, then
        // the copy's entry point with arguments of the layout it expects;
        // the transcript it returns is malloc()ed text of the given
        // length, written out and never used after the free.
        unsafe {
            let cpu = limit.cpu.as_secs().max(1) as libc::rlim_t;
            let rl = libc::rlimit {
                rlim_cur: cpu,
                rlim_max: cpu + 5,
            };
            if libc::setrlimit(libc::RLIMIT_CPU, &rl) != 0 {
                libc::_exit(4);
            }
            libc::alarm(limit.wall.as_secs().clamp(1, u64::from(u32::MAX)) as u32);
            let fd = libc::open(
                err_c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o644,
            );
            if fd >= 0 {
                libc::dup2(fd, 2);
                libc::close(fd);
            }
            let _guard = vmm_gpt_harness::exclusive();
            let mut buf: *mut c_char = std::ptr::null_mut();
            let mut len = 0usize;
            let r = run(&args, &mut buf, &mut len);
            let fd = libc::open(
                out_c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o644,
            );
            let mut off = 0;
            while fd >= 0 && off < len {
                let w = libc::write(fd, buf.add(off).cast(), len - off);
                if w <= 0 {
                    libc::_exit(3);
                }
                off += w as usize;
            }
            libc::free(buf.cast());
            libc::_exit(if fd >= 0 { r } else { 3 });
        }
    }
    Child {
        pid,
        out,
        err,
        started: Instant::now(),
    }
}

fn cstring(p: &std::path::Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("a path without NUL")
}

/// The slowest run so far in this process: wall-clock and CPU time (user
/// and system, all its threads), in microseconds.
static SLOWEST_WALL_US: AtomicU64 = AtomicU64::new(0);
static SLOWEST_CPU_US: AtomicU64 = AtomicU64::new(0);

/// The slowest run so far: its wall-clock and its CPU time (not
/// necessarily of the same run).
pub fn slowest() -> (Duration, Duration) {
    (
        Duration::from_micros(SLOWEST_WALL_US.load(Ordering::Relaxed)),
        Duration::from_micros(SLOWEST_CPU_US.load(Ordering::Relaxed)),
    )
}

impl Child {
    /// Waits for the run to end.
    pub fn wait(self) -> (Outcome, Duration) {
        let mut status = 0;
        // SAFETY: all-zero is a valid `rusage` (plain integers).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, writing into our locals.
        let r = unsafe { libc::wait4(self.pid, &mut status, 0, &mut usage) };
        assert_eq!(r, self.pid, "wait4 failed");
        let elapsed = self.started.elapsed();
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        SLOWEST_CPU_US.fetch_max(tv(usage.ru_utime) + tv(usage.ru_stime), Ordering::Relaxed);
        SLOWEST_WALL_US.fetch_max(elapsed.as_micros() as u64, Ordering::Relaxed);
        let stderr = fs::read(&self.err)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let transcript = fs::read(&self.out).map(|b| String::from_utf8_lossy(&b).into_owned());
        let _ = fs::remove_file(&self.out);
        let _ = fs::remove_file(&self.err);
        let outcome = if libc::WIFEXITED(status) {
            match (libc::WEXITSTATUS(status), transcript) {
                (code @ (CONSUMER_OK | CONSUMER_CHECK_FAILED), Ok(transcript)) => Outcome::Ran {
                    transcript,
                    checks: code == CONSUMER_OK,
                },
                (code, _) => Outcome::Died {
                    how: format!("exited with status {code}"),
                    stderr,
                },
            }
        } else {
            let sig = libc::WTERMSIG(status);
            // SAFETY: strsignal returns a static or thread-local string.
            let name = unsafe { CStr::from_ptr(libc::strsignal(sig)) }
                .to_string_lossy()
                .into_owned();
            let how = if sig == libc::SIGALRM {
                "killed at the wall-clock limit (a hang?)".to_string()
            } else if sig == libc::SIGXCPU || sig == libc::SIGKILL {
                "killed at the CPU-time limit (a hang?)".to_string()
            } else {
                format!("killed by signal {sig} ({name})")
            };
            Outcome::Died { how, stderr }
        };
        (outcome, elapsed)
    }
}

/// Runs every job, at most `jobs` at a time; results in the jobs' order.
pub fn run_all(work: &[(RunFn, String, Params)], jobs: usize, limit: Limit) -> Vec<Outcome> {
    let mut results: Vec<Option<Outcome>> = work.iter().map(|_| None).collect();
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut next = 0;
    while next < work.len() || !running.is_empty() {
        while running.len() < jobs.max(1) && next < work.len() {
            let (run, name, params) = &work[next];
            running.push((next, spawn(*run, name, params, limit)));
            next += 1;
        }
        let (i, child) = running.remove(0);
        results[i] = Some(child.wait().0);
    }
    results
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// The first line where two transcripts differ: its number and both
/// lines, with the lines before it for context.
/// Lines starting with `~` (statistics of an interleaving) are left out.
pub fn first_difference(a: &str, b: &str) -> Option<String> {
    fn compared(t: &str) -> Vec<&str> {
        t.lines().filter(|l| !l.starts_with('~')).collect()
    }
    let (la, lb) = (compared(a), compared(b));
    let n = la.len().max(lb.len());
    let i = (0..n).find(|&i| la.get(i) != lb.get(i))?;
    let mut s = String::new();
    let from = i.saturating_sub(6);
    for (k, line) in la[from..i].iter().enumerate() {
        s += &format!("      {:>6}  {}\n", from + k + 1, line);
    }
    s += &format!(
        "    - {:>6}  {}\n    + {:>6}  {}",
        i + 1,
        la.get(i).unwrap_or(&"<end of transcript>"),
        i + 1,
        lb.get(i).unwrap_or(&"<end of transcript>")
    );
    Some(s)
}

/// A comparison: the copy `tag` must give the transcript of the copy
/// `reference`.
pub struct Pair {
    pub tag: &'static str,
    pub reference: &'static str,
    pub what: &'static str,
    /// The variable that makes a missing `tag` a failure (`None`: the
    /// pair is optional).
    pub require: Option<&'static str>,
    /// How to get `tag` linked.
    pub how: &'static str,
}

const KOBJ_HOW: &str = "run illumos-build/build.sh and set VMM_GPT_KERNEL_OBJECT, \
                        VMM_GPT_KERNEL_OBJECT_DEBUG (scripts/test.sh does)";
const HARVEST_HOW: &str = "build the opt-in copies (build.sh --harvest, cargo build --release \
                           --features harvest-dirty) and set VMM_GPT_HARVEST_STATICLIB, \
                           VMM_GPT_KERNEL_OBJECT_HARVEST[_DEBUG] (scripts/test.sh does)";

/// Everything compared.
pub const PAIRS: &[Pair] = &[
    // The library as linked: one of these two, by its build (see
    // `available_pairs`).
    Pair {
        tag: "lib",
        reference: "ref_ndebug",
        what: "the library (non-DEBUG: VMM_GPT_DEBUG=0) vs the original, non-DEBUG",
        require: Some("VMM_GPT_REQUIRE_REFERENCE"),
        how: "set ILLUMOS_GATE",
    },
    Pair {
        tag: "lib",
        reference: "ref",
        what: "the library (DEBUG: the test profile) vs the original, DEBUG",
        require: Some("VMM_GPT_REQUIRE_REFERENCE"),
        how: "set ILLUMOS_GATE",
    },
    Pair {
        tag: "kobj",
        reference: "ref_ndebug",
        what: "the kernel object vs the original, non-DEBUG",
        require: Some("VMM_GPT_REQUIRE_KERNEL_OBJECT"),
        how: KOBJ_HOW,
    },
    Pair {
        tag: "kobj_debug",
        reference: "ref",
        what: "the DEBUG kernel object vs the original, DEBUG",
        require: Some("VMM_GPT_REQUIRE_KERNEL_OBJECT"),
        how: KOBJ_HOW,
    },
    Pair {
        tag: "rel",
        reference: "ref_ndebug",
        what: "the release staticlib vs the original, non-DEBUG",
        require: None,
        how: "set VMM_GPT_RELEASE_STATICLIB (scripts/test.sh does)",
    },
    Pair {
        tag: "hv",
        reference: "ref_ndebug",
        what: "patched vmm_vm.c over the opt-in staticlib vs vmm_vm.c over the original, non-DEBUG",
        require: Some("VMM_GPT_REQUIRE_HARVEST"),
        how: HARVEST_HOW,
    },
    Pair {
        tag: "kobj_hv",
        reference: "ref_ndebug",
        what: "patched vmm_vm.c over the opt-in kernel object vs vmm_vm.c over the original, non-DEBUG",
        require: Some("VMM_GPT_REQUIRE_HARVEST"),
        how: HARVEST_HOW,
    },
    Pair {
        tag: "kobj_hv_debug",
        reference: "ref",
        what: "patched vmm_vm.c over the opt-in DEBUG kernel object vs vmm_vm.c over the original, DEBUG",
        require: Some("VMM_GPT_REQUIRE_HARVEST"),
        how: HARVEST_HOW,
    },
];

/// The patched `vmm_vm.c` (the fix and `vmm_vm-hold-bounds.patch`, the
/// driver requiring every hold and fault beyond the vmspace to fail) over
/// the library and over the original (`tests/patches.rs`).
pub const BOUNDED_PAIRS: &[Pair] = &[
    Pair {
        tag: "lib_bounded",
        reference: "ref_ndebug_bounded",
        what: "bounded vmm_vm.c over the library (non-DEBUG) vs over the original, non-DEBUG",
        require: Some("VMM_GPT_REQUIRE_REFERENCE"),
        how: "set ILLUMOS_GATE",
    },
    Pair {
        tag: "lib_bounded",
        reference: "ref_bounded",
        what: "bounded vmm_vm.c over the library (DEBUG) vs over the original, DEBUG",
        require: Some("VMM_GPT_REQUIRE_REFERENCE"),
        how: "set ILLUMOS_GATE",
    },
];

/// The copy `tag`, when it was built and its implementation is linked.
pub fn copy(tag: &str) -> Option<&'static CopyDef> {
    COPIES
        .iter()
        // SAFETY: a generated C function without arguments or effects.
        .find(|c| c.tag == tag && unsafe { (c.linked)() } != 0)
}

/// Whether the variable `name` is `1`.
pub fn env_is_1(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// A number from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// How long a run may take before it counts as hung:
/// `VMM_GPT_CONSUMER_LIMIT` seconds of CPU time (default 120) and
/// `VMM_GPT_CONSUMER_WALL_LIMIT` seconds of wall-clock time (default 3600);
/// `tests/concurrent.rs` has the measurements these rest on.
pub fn limit() -> Limit {
    Limit {
        cpu: Duration::from_secs(env_u64("VMM_GPT_CONSUMER_LIMIT", 120)),
        wall: Duration::from_secs(env_u64("VMM_GPT_CONSUMER_WALL_LIMIT", 3600)),
    }
}

/// Runs at once: `VMM_GPT_CONSUMER_JOBS`, else the CPUs.
pub fn jobs() -> usize {
    env_u64(
        "VMM_GPT_CONSUMER_JOBS",
        std::thread::available_parallelism().map_or(2, |n| n.get()) as u64,
    ) as usize
}

/// The pairs of [`PAIRS`] whose copies are both there; the others, each
/// with the message of its skip and whether that is a failure.
pub fn available_pairs() -> (Vec<&'static Pair>, Vec<(String, bool)>) {
    available_pairs_of(PAIRS)
}

/// [`available_pairs`] of `list`.
pub fn available_pairs_of(list: &'static [Pair]) -> (Vec<&'static Pair>, Vec<(String, bool)>) {
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    for p in list {
        let lib_side = p.tag == "lib" || p.tag == "lib_bounded";
        let debug_ref = p.reference == "ref" || p.reference == "ref_bounded";
        if lib_side && debug_ref != impls::LIB.debug {
            // The library is paired with the original of its own build
            // only: DEBUG with DEBUG, non-DEBUG with non-DEBUG.
            continue;
        }
        let missing = [p.tag, p.reference]
            .into_iter()
            .filter(|t| copy(t).is_none())
            .collect::<Vec<_>>();
        if missing.is_empty() {
            ok.push(p);
            continue;
        }
        let unbuilt = missing.iter().any(|t| COPIES.iter().all(|c| c.tag != *t));
        let why = if MISSING.is_empty() && unbuilt {
            format!(
                "{}: {} not built (a patch of illumos-build/patches/ is missing)",
                p.what,
                missing.join(", ")
            )
        } else if MISSING.is_empty() {
            format!("{}: {} not linked ({})", p.what, missing.join(", "), p.how)
        } else {
            format!("{}: {MISSING}", p.what)
        };
        let required = match p.require {
            Some(var) => env_is_1(var),
            None => false,
        };
        skipped.push((why, required));
    }
    (ok, skipped)
}

/// The closing line of a test program, and its exit status.
pub fn close(name: &str, failed: usize, skipped: usize) -> ! {
    cleanup();
    if failed > 0 {
        println!("\n{name}: FAILED ({failed} failures, {skipped} skipped)");
        std::process::exit(1);
    }
    println!("\n{name}: ok ({skipped} skipped)");
    std::process::exit(0);
}

/// Reports what cannot run: `FAIL (required): why` when `required`, else
/// `skipped: why`.  Returns the failures it counts (1 or 0).
pub fn report_missing(why: &str, required: bool) -> usize {
    println!(
        "{}: {why}",
        if required {
            "FAIL (required)"
        } else {
            "skipped"
        }
    );
    usize::from(required)
}

/// One run per format and seed (`seeds` from `first`), each `Params` from
/// `params(format, seed)`.
pub fn runs(first: u64, seeds: u64, params: impl Fn(Format, u64) -> Params) -> Vec<Params> {
    Format::ALL
        .into_iter()
        .flat_map(|format| (first..first + seeds).map(move |seed| (format, seed)))
        .map(|(format, seed)| params(format, seed))
        .collect()
}

/// The body of the `sequential` and `concurrent` tests: every available
/// pair (a missing copy that is required fails, others are skipped) over
/// one run per format and seed (`seeds` from `first`), each `Params` from
/// `params(format, seed)`; [`limit`] before a run counts as hung.  Ends the program with the closing line.
pub fn run_test(name: &str, first: u64, seeds: u64, params: impl Fn(Format, u64) -> Params) -> ! {
    let (pairs, skipped) = available_pairs();
    let mut failed = 0;
    for (why, required) in &skipped {
        failed += report_missing(why, *required);
    }
    if !MISSING.is_empty() || pairs.is_empty() {
        close(name, failed, skipped.len());
    }
    let limit = limit();
    let runs = runs(first, seeds, params);
    for p in &pairs {
        println!("comparing: {}", p.what);
    }
    failed += compare_all(&runs, &pairs, limit);
    close(name, failed, skipped.len());
}

/// Runs `params` over every copy the available pairs need, compares
/// each pair, and returns the number of failures (each printed).
pub fn compare_all(params: &[Params], pairs: &[&Pair], limit: Limit) -> usize {
    let mut tags: Vec<&'static str> = Vec::new();
    for p in pairs {
        for t in [p.reference, p.tag] {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    // VMM_GPT_CONSUMER_KEEP=<dir>: every transcript kept there.
    let keep = std::env::var_os("VMM_GPT_CONSUMER_KEEP").map(PathBuf::from);
    if let Some(dir) = &keep {
        fs::create_dir_all(dir).expect("creating VMM_GPT_CONSUMER_KEEP");
    }
    let started = Instant::now();
    let mut failures = 0;
    let mut bytes = 0;
    // A few parameter sets at a time: the transcripts of long runs are
    // large.
    for chunk in params.chunks(4) {
        let mut work = Vec::new();
        for pr in chunk {
            for t in &tags {
                let c = copy(t).expect("available");
                work.push((c.run, t.to_string(), *pr));
            }
        }
        let outcomes = run_all(&work, jobs(), limit);
        for (k, pr) in chunk.iter().enumerate() {
            let of = |t: &str| {
                let i = tags.iter().position(|x| *x == t).expect("a tag");
                &outcomes[k * tags.len() + i]
            };
            for t in &tags {
                let o = of(t);
                if let (Some(dir), Outcome::Ran { transcript, .. }) = (&keep, o) {
                    let name = format!("{:?}-{:?}-{}-{t}.txt", pr.format, pr.mode, pr.seed);
                    fs::write(dir.join(name.to_lowercase()), transcript)
                        .expect("keeping a transcript");
                }
                match o.clean() {
                    Some(tr) => bytes += tr.len(),
                    None => {
                        failures += 1;
                        println!("FAIL {pr}, copy {t}: {}", o.trouble());
                    }
                }
            }
            for p in pairs {
                let (Some(a), Some(b)) = (of(p.reference).clean(), of(p.tag).clean()) else {
                    continue;
                };
                if let Some(diff) = first_difference(a, b) {
                    failures += 1;
                    println!(
                        "FAIL {pr}: {} differ ({} '-', {} '+'):\n{diff}",
                        p.what, p.reference, p.tag
                    );
                }
            }
        }
    }
    let (wall, cpu) = slowest();
    println!(
        "{} runs ({} copies x {} parameter sets), {:.1} MB of transcripts, in {:.1} s; \
         the slowest run took {:.2} s, the most CPU time {:.2} s",
        tags.len() * params.len(),
        tags.len(),
        params.len(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    );
    failures
}
