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
use std::path::PathBuf;
use std::process::{exit, Command};
use std::time::Instant;

use vmm_gpt_difftest::{
    generate_with, reference_available, run, sanitized, Format, GenConfig, Stats,
};

const UNDER_VALGRIND: &str = "VMM_GPT_UNDER_VALGRIND";
const DEFAULT_OPS: u64 = 50_000;
const SEQ: u64 = 5000;
const SEED: u64 = 5150;

const VALGRIND_ARGS: &[&str] = &[
    "--error-exitcode=99",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite",
    "--quiet",
];

fn closing(passed: u32, failed: u32, skipped: u32) -> ! {
    println!("valgrind: {passed} passed, {failed} failed, {skipped} skipped");
    exit(if failed > 0 { 1 } else { 0 })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
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
    if env::args().any(|a| a == "--list") {
        println!("valgrind: test");
        return;
    }
    let total = env::var("VMM_GPT_VALGRIND_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_OPS);
    let under = env::var_os(UNDER_VALGRIND).is_some();
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

    let mode = env::var("VMM_GPT_VALGRIND").unwrap_or_default();
    if mode == "0" {
        println!("valgrind: VMM_GPT_VALGRIND=0: the run under valgrind is skipped");
        closing(1, 0, 1);
    }
    if sanitized() {
        println!("valgrind: built with the sanitizers (VMM_GPT_SANITIZE=1), which valgrind cannot run: skipped");
        closing(1, 0, 1);
    }
    let Some(valgrind) = find_on_path("valgrind") else {
        if mode == "1" {
            println!("valgrind: VMM_GPT_VALGRIND=1, but valgrind is not on PATH");
            closing(1, 1, 0);
        }
        println!("valgrind: valgrind not found: the run under valgrind is skipped");
        closing(1, 0, 1);
    };

    let mut exe = env::current_exe().unwrap_or_else(|e| {
        println!("valgrind: current_exe: {e}");
        closing(1, 1, 0)
    });
    if exe.to_string_lossy().ends_with(" (deleted)") {
        exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    }
    let mut args: Vec<&str> = VALGRIND_ARGS.to_vec();
    if env!("VMM_GPT_HAVE_VALGRIND_H") != "1" {
        // kernel.c cannot tell valgrind about its code patches.
        args.push("--smc-check=all");
    }
    let shown = format!(
        "{UNDER_VALGRIND}=1 VMM_GPT_VALGRIND_OPS={total} {} {} {}",
        valgrind.display(),
        args.join(" "),
        exe.display()
    );
    println!("valgrind: again under valgrind: {shown}");
    let start = Instant::now();
    let status = Command::new(&valgrind)
        .args(&args)
        .arg(&exe)
        .env(UNDER_VALGRIND, "1")
        .env("VMM_GPT_VALGRIND_OPS", total.to_string())
        .status();
    match status {
        Ok(s) if s.success() => {
            println!(
                "valgrind: clean under valgrind ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            closing(2, 0, 0);
        }
        Ok(s) => {
            println!("valgrind: the run under valgrind failed ({s}); to reproduce: {shown}");
            closing(1, 1, 0);
        }
        Err(e) => {
            println!("valgrind: cannot run {}: {e}", valgrind.display());
            closing(1, 1, 0);
        }
    }
}
