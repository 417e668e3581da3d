//! A smaller differential run, natively and then under valgrind memcheck
//! (this executable again), which must report no error: both
//! implementations, the kernel stand-in and the driver.
//!
//! - `VMM_GPT_VALGRIND=1`: required (an error when valgrind is missing);
//! - `VMM_GPT_VALGRIND=0`: not run;
//! - unset (or anything else): run when `valgrind` is on `PATH`.
//!
//! Not with the sanitizers (`VMM_GPT_SANITIZE=1`): valgrind and ASan do not
//! mix.  `VMM_GPT_VALGRIND_OPS` (default 50000) sets the operations run
//! under valgrind (in sequences of [`GenConfig::SMALL`], both formats);
//! the native run does the same.

use std::env;
use std::time::Instant;

use vmm_gpt_harness::valgrind::{self, Rerun};

use vmm_gpt_difftest::{
    generate_with, program, reference_available, run, sanitized, Format, GenConfig, Stats,
};

const DEFAULT_OPS: u64 = 50_000;
const SEQ: u64 = 5000;
const SEED: u64 = 5150;

fn closing(passed: u64, failed: u64, skipped: u64) -> ! {
    program::close("valgrind", passed, failed, skipped)
}

/// The differential run itself: in-process (no forks), stops at the first
/// divergence.
fn differential(total: u64) -> Result<Stats, String> {
    let mut all = Stats::default();
    let mut k = 0;
    while k * SEQ < total {
        let seed = SEED + k;
        let format = Format::ALL[(k % 2) as usize];
        let len = SEQ.min(total - k * SEQ) as usize;
        let ops = generate_with(seed, len, format, &GenConfig::SMALL);
        let s = run(format, &ops).map_err(|d| format!("seed {seed}, {format:?}: {d}"))?;
        if s.skipped != 0 {
            return Err(format!("seed {seed}: {} operations skipped", s.skipped));
        }
        all.merge(&s);
        k += 1;
    }
    Ok(all)
}

fn main() {
    program::answer_list("valgrind");
    let total = env::var("VMM_GPT_VALGRIND_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_OPS);
    let under = valgrind::under_valgrind();
    if !reference_available() {
        println!("valgrind: the original is not built (ILLUMOS_GATE unset): skipped");
        closing(0, 0, 1);
    }

    let start = Instant::now();
    let where_ = if under { "under valgrind" } else { "natively" };
    match differential(total) {
        Ok(s) => println!(
            "valgrind: {} operations {where_} in {:.1} s ({} mapped, {} iterator entries, \
             {} tree checks)",
            s.ops,
            start.elapsed().as_secs_f64(),
            s.maps,
            s.iterated,
            s.tree_checks
        ),
        Err(e) => {
            println!("valgrind: divergence {where_}: {e}");
            closing(0, 1, 0);
        }
    }
    if under {
        // The parent reads valgrind's verdict from the exit status.
        return;
    }

    if sanitized() {
        println!("valgrind: built with the sanitizers (VMM_GPT_SANITIZE=1), which valgrind cannot run: skipped");
        closing(1, 0, 1);
    }
    let have_vg_h = env!("VMM_GPT_HAVE_VALGRIND_H") == "1";
    let envs = [("VMM_GPT_VALGRIND_OPS", total.to_string())];
    let start = Instant::now();
    match valgrind::rerun("valgrind", have_vg_h, &[], &envs) {
        Rerun::Skipped(why) => {
            println!("valgrind: {why}");
            closing(1, 0, 1);
        }
        Rerun::Clean => {
            println!(
                "valgrind: clean under valgrind ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            closing(2, 0, 0);
        }
        Rerun::Failed(why) => {
            println!("valgrind: {why}");
            closing(1, 1, 0);
        }
    }
}
