//! The differential run against the kernel object: the object that
//! illumos-build/build.sh made (`VMM_GPT_KERNEL_OBJECT`, linked by build.rs
//! with its symbols renamed `kobj_*`) takes the library's place, and
//! generated sequences are applied to it and to the original side by side,
//! everything compared, as in `differential`.
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_DIFF_KOBJ_OPS` | 100000 | operations per format |
//! | `VMM_GPT_DIFF_SEED` | 20261125 | seed of the first sequence |
//!
//! Skipped without the kernel object (`VMM_GPT_REQUIRE_KERNEL_OBJECT=1`
//! makes that a failure) or without the original (`ILLUMOS_GATE` unset;
//! `VMM_GPT_REQUIRE_REFERENCE=1` makes that a failure).

use std::env;
use std::process::exit;
use std::time::Instant;

use vmm_gpt_difftest::{generate, reference_available, run, sys, Format};

const DEFAULT_OPS: u64 = 100_000;
const DEFAULT_SEED: u64 = 20261125;
/// Operations per sequence (one GPT lifetime each).
const SEQ: u64 = 50_000;

fn env_u64(name: &str, default: u64) -> u64 {
    match env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().unwrap_or_else(|_| {
            println!("kernel_object: {name}={v} is not a number");
            println!("kernel_object: 0 passed, 1 failed");
            exit(1)
        }),
        _ => default,
    }
}

fn skip_or_fail(require_var: &str, why: &str) -> ! {
    if env::var(require_var).is_ok_and(|v| v == "1") {
        println!("kernel_object: {require_var}=1, but {why}");
        println!("kernel_object: 0 passed, 1 failed, 0 skipped");
        exit(1);
    }
    println!("kernel_object: {why}: skipped");
    println!("kernel_object: 0 passed, 0 failed, 1 skipped");
    exit(0);
}

fn main() {
    if env::args().any(|a| a == "--list") {
        println!("kernel_object: test");
        return;
    }
    if !sys::compare_kernel_object() {
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
    println!(
        "kernel_object: {} against the original, {per_format} operations per format",
        env!("VMM_GPT_DIFFTEST_KERNEL_OBJECT")
    );
    let (mut passed, mut failed) = (0, 0);
    for (f, format) in [Format::Ept, Format::Rvi].into_iter().enumerate() {
        let start = Instant::now();
        let mut done = 0;
        let mut k = 0;
        let mut result = Ok(());
        while done < per_format {
            let len = SEQ.min(per_format - done);
            let s = seed + 2 * k + f as u64;
            let ops = generate(s, len as usize, format);
            if let Err(d) = run(format, &ops) {
                result = Err(format!(
                    "seed {s}, {len} operations: {d}\n(rerun: VMM_GPT_DIFF_SEED={s} and \
                     the differential test's tools against the library)"
                ));
                break;
            }
            done += len;
            k += 1;
        }
        match result {
            Ok(()) => {
                println!(
                    "ok {format:?}: {done} operations, no divergence ({:.1} s)",
                    start.elapsed().as_secs_f64()
                );
                passed += 1;
            }
            Err(e) => {
                println!("FAIL {format:?}: {e}");
                failed += 1;
            }
        }
    }
    println!("kernel_object: {passed} passed, {failed} failed, 0 skipped");
    if failed > 0 {
        exit(1);
    }
}
