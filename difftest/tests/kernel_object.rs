//! The differential run against the prebuilt implementations, each in the
//! library's place against the original of its own build:
//!
//! | pair | implementation (build.rs, renamed) | original |
//! | --- | --- | --- |
//! | `kernel object` | `VMM_GPT_KERNEL_OBJECT` (`target/kernel/vmm_gpt.o`, non-DEBUG, `kobj_*`) | non-DEBUG |
//! | `DEBUG kernel object` | `VMM_GPT_KERNEL_OBJECT_DEBUG` (`target/kernel/vmm_gpt.debug.o`, `kobj_debug_*`) | DEBUG |
//! | `release staticlib` | `VMM_GPT_RELEASE_STATICLIB` (`target/release/libvmm_gpt.a`, non-DEBUG, `rel_*`) | non-DEBUG |
//!
//! Generated sequences are applied to both sides, everything compared, as
//! in `differential`; the non-DEBUG pairs also get the inputs that only
//! the original's `ASSERT`s reject (wrapping and unaligned iteration
//! ranges).  Each sequence runs in a forked child, so that a panic of
//! either side is a failure with its operation; a failing sequence is
//! shrunk and shown.
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_DIFF_KOBJ_OPS` | 100000 | operations per format and pair |
//! | `VMM_GPT_DIFF_SEED` | 20261125 | seed of the first sequence |
//! | `VMM_GPT_DIFF_JOBS` | CPUs | sequences run at once |
//!
//! Skipped without the non-DEBUG kernel object
//! (`VMM_GPT_REQUIRE_KERNEL_OBJECT=1` makes that a failure) or without the
//! original (`ILLUMOS_GATE` unset; `VMM_GPT_REQUIRE_REFERENCE=1` makes that
//! a failure); the DEBUG kernel object and the staticlib pairs run when
//! they are linked.

use std::collections::VecDeque;
use std::env;
use std::time::Instant;

use vmm_gpt_difftest::impls::{self, Api};
use vmm_gpt_difftest::{
    generate, program, reference_available, shrink, spawn, Child, Format, GenConfig, Outcome, Side,
    Stats,
};

const DEFAULT_OPS: u64 = 100_000;
const DEFAULT_SEED: u64 = 20261125;
/// Operations per sequence (one GPT lifetime each).
const SEQ: u64 = 50_000;

fn env_u64(var: &str, default: u64) -> u64 {
    program::env_u64("kernel_object", var, default)
}

fn skip_or_fail(require_var: &str, why: &str) -> ! {
    if env::var(require_var).is_ok_and(|v| v == "1") {
        println!("kernel_object: {require_var}=1, but {why}");
        program::close("kernel_object", 0, 1, 0);
    }
    println!("kernel_object: {why}: skipped");
    program::close("kernel_object", 0, 0, 1);
}

struct Job {
    seed: u64,
    format: Format,
    len: usize,
    child: Child,
}

/// Runs `per_format` operations per format of `api` against its build's
/// original; on a failure, the shrunk sequence.
fn run_pair(api: &'static Api, per_format: u64, seed: u64, jobs: usize) -> Result<Stats, String> {
    impls::select(api);
    let mut todo: VecDeque<(u64, Format, usize)> = VecDeque::new();
    for (f, format) in Format::ALL.into_iter().enumerate() {
        let mut done = 0;
        let mut k = 0;
        while done < per_format {
            let len = SEQ.min(per_format - done);
            todo.push_back((seed + 2 * k + f as u64, format, len as usize));
            done += len;
            k += 1;
        }
    }
    let mut running: VecDeque<Job> = VecDeque::new();
    let mut stats = Stats::default();
    let mut failure = None;
    while failure.is_none() && !(todo.is_empty() && running.is_empty()) {
        while running.len() < jobs {
            let Some((seed, format, len)) = todo.pop_front() else {
                break;
            };
            let seq = generate(seed, len, format);
            running.push_back(Job {
                seed,
                format,
                len,
                child: spawn(format, &seq, false),
            });
        }
        let Some(job) = running.pop_front() else {
            break;
        };
        let what = match job.child.wait() {
            Outcome::Pass(s) if s.skipped == 0 => {
                stats.merge(&s);
                continue;
            }
            Outcome::Pass(s) => format!("{} operations skipped as invalid", s.skipped),
            Outcome::Diverged(d) => d.to_string(),
            Outcome::Crashed {
                op_index,
                side,
                status,
            } => format!(
                "ended without a verdict ({status}) in op #{}, in the {}",
                op_index.map_or("?".into(), |i| i.to_string()),
                match side {
                    Some(Side::Lib) => api.name,
                    Some(Side::Ref) => "original",
                    None => "?",
                }
            ),
        };
        failure = Some((job.seed, job.format, job.len, what));
    }
    for job in running {
        let _ = job.child.wait();
    }
    let Some((seed, format, len, what)) = failure else {
        return Ok(stats);
    };
    let seq = generate(seed, len, format);
    let small = shrink(format, &seq);
    let outcome = spawn(format, &small, true).wait();
    let mut msg = format!(
        "generate({seed}, {len}, Format::{format:?}) (ASSERT-only inputs: {}): {what}\n  \
         shrunk to {} operations, which end in {outcome:?}:",
        GenConfig::DEFAULT.makes_assert_only(),
        small.len()
    );
    for (i, op) in small.iter().enumerate().take(200) {
        msg.push_str(&format!("\n    #{i}: {op:?}"));
    }
    Err(msg)
}

fn main() {
    program::answer_list("kernel_object");
    if impls::kernel_object().is_none() {
        skip_or_fail(
            "VMM_GPT_REQUIRE_KERNEL_OBJECT",
            "the kernel object is not linked (VMM_GPT_KERNEL_OBJECT unset)",
        );
    }
    if !reference_available() {
        skip_or_fail(
            "VMM_GPT_REQUIRE_REFERENCE",
            "the original is not built (ILLUMOS_GATE unset)",
        );
    }
    let per_format = env_u64("VMM_GPT_DIFF_KOBJ_OPS", DEFAULT_OPS);
    let seed = env_u64("VMM_GPT_DIFF_SEED", DEFAULT_SEED);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let jobs = env_u64("VMM_GPT_DIFF_JOBS", cpus).max(1) as usize;
    let pairs = [
        (impls::kernel_object(), impls::KERNEL_OBJECT_PATH),
        (
            impls::kernel_object_debug(),
            impls::KERNEL_OBJECT_DEBUG_PATH,
        ),
        (impls::staticlib(), impls::STATICLIB_PATH),
    ];
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    // scripts/test.sh builds and names all three.
    let require = env::var("VMM_GPT_REQUIRE_KERNEL_OBJECT").is_ok_and(|v| v == "1");
    for (api, path) in pairs {
        let Some(api) = api else {
            if require {
                println!("kernel_object: required, but {path} is not linked");
                failed += 1;
            } else {
                skipped += 1;
            }
            continue;
        };
        let orig = impls::reference_for(api).map_or("-", |r| r.name);
        println!(
            "kernel_object: the {} ({path}) against the {orig}, {per_format} operations per \
             format{}",
            api.name,
            if api.debug {
                ""
            } else {
                ", with ASSERT-only inputs"
            }
        );
        let start = Instant::now();
        match run_pair(api, per_format, seed, jobs) {
            Ok(s) => {
                println!(
                    "ok {}: {} operations, no divergence ({:.1} s): {} populates ({} \
                     degenerate), {} vacates ({} not of a region), {} pages mapped, {} walks, \
                     {} iterator entries, {} tree checks",
                    api.name,
                    s.ops,
                    start.elapsed().as_secs_f64(),
                    s.populates,
                    s.odd_populates,
                    s.vacates,
                    s.odd_vacates,
                    s.maps,
                    s.walks,
                    s.iterated,
                    s.tree_checks
                );
                passed += 1;
            }
            Err(e) => {
                println!("FAIL {}: {e}", api.name);
                failed += 1;
            }
        }
    }
    for (name, var) in [
        ("the DEBUG kernel object", "VMM_GPT_KERNEL_OBJECT_DEBUG"),
        ("the release staticlib", "VMM_GPT_RELEASE_STATICLIB"),
    ] {
        let linked = match var {
            "VMM_GPT_KERNEL_OBJECT_DEBUG" => impls::kernel_object_debug().is_some(),
            _ => impls::staticlib().is_some(),
        };
        if !linked {
            println!("kernel_object: {name} is not linked ({var} unset): its pair is skipped");
        }
    }
    program::close("kernel_object", passed, failed, skipped);
}
