//! The differential run: generated sequences applied to the library and to
//! the original of its build side by side, everything compared (see the
//! crate docs).  In the test profile the library is a DEBUG build
//! (`cfg(vmm_gpt_debug)`, from the profile's debug assertions) and is
//! compared with the DEBUG original; with `--release` or `VMM_GPT_DEBUG=0`
//! it is a non-DEBUG build compared with the non-DEBUG original, and the
//! generator adds the inputs only the original's `ASSERT`s reject
//! (wrapping and unaligned ranges).
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_DIFF_OPS` | 1000000 | operations in all (e.g. 100000000 for the long run) |
//! | `VMM_GPT_DIFF_SEED` | 20261125 | seed of the first sequence; `random`: from the clock |
//! | `VMM_GPT_DIFF_SEQ` | 50000 | operations per sequence (one GPT lifetime each, with reallocs inside) |
//! | `VMM_GPT_DIFF_JOBS` | CPUs | sequences run at once (each in a forked child) |
//!
//! Sequence `k` has seed `SEED + k` and the format the seed's low bit
//! picks (even: EPT, odd: AMD), so formats alternate, and
//! `VMM_GPT_DIFF_SEED=<its seed> VMM_GPT_DIFF_OPS=<its length>` runs one
//! sequence again by itself.  On a failure (a divergence, or a panic or
//! crash of either implementation) it prints the seed, the failure and the
//! shrunk sequence, and fails.

use std::collections::VecDeque;
use std::env;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vmm_gpt_difftest::{
    generate, impls, program, reference_source, sanitized, shrink, spawn, Child, Format, Outcome,
    Side, Stats,
};

const DEFAULT_OPS: u64 = 1_000_000;
const DEFAULT_SEED: u64 = 20261125;
const DEFAULT_SEQ: u64 = 50_000;

fn env_u64(var: &str, default: u64) -> u64 {
    program::env_u64("differential", var, default)
}

fn format_of(seed: u64) -> Format {
    if seed & 1 == 0 {
        Format::Ept
    } else {
        Format::Rvi
    }
}

struct Job {
    index: u64,
    seed: u64,
    len: usize,
    child: Child,
}

fn main() {
    program::answer_list("differential");
    program::skip_without_original("differential");
    let total = env_u64("VMM_GPT_DIFF_OPS", DEFAULT_OPS);
    let seed0 = match env::var("VMM_GPT_DIFF_SEED").as_deref() {
        Ok("random") => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        _ => env_u64("VMM_GPT_DIFF_SEED", DEFAULT_SEED),
    };
    let seq = env_u64("VMM_GPT_DIFF_SEQ", DEFAULT_SEQ).max(1);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let jobs = env_u64("VMM_GPT_DIFF_JOBS", cpus).max(1) as usize;
    let nseq = total.div_ceil(seq);
    println!(
        "differential: {total} operations in {nseq} sequences of up to {seq}, seeds from \
         {seed0}, {jobs} at a time; the {} against the {} from {}{}",
        impls::library().name,
        impls::reference_for(impls::library()).map_or("-", |r| r.name),
        reference_source(),
        if sanitized() {
            " (C under ASan+UBSan)"
        } else {
            ""
        }
    );

    let start = Instant::now();
    let mut stats = [Stats::default(), Stats::default()];
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut next = 0u64;
    let mut passed = 0u64;
    let mut done_ops = 0u64;
    let mut last_report = Instant::now();
    let mut failure = None;
    while failure.is_none() && (next < nseq || !pending.is_empty()) {
        while next < nseq && pending.len() < jobs {
            let seed = seed0.wrapping_add(next);
            let len = seq.min(total - next * seq) as usize;
            let ops = generate(seed, len, format_of(seed));
            pending.push_back(Job {
                index: next,
                seed,
                len,
                child: spawn(format_of(seed), &ops, false),
            });
            next += 1;
        }
        let Some(job) = pending.pop_front() else {
            break;
        };
        let Job {
            index,
            seed,
            len,
            child,
        } = job;
        let failed = |what: String| Some((index, seed, len, what));
        match child.wait() {
            Outcome::Pass(s) if s.skipped == 0 => {
                passed += 1;
                done_ops += s.ops;
                stats[format_of(seed) as usize].merge(&s);
            }
            Outcome::Pass(s) => {
                failure = failed(format!(
                    "the generator made {} operations that the runner skipped as invalid",
                    s.skipped
                ));
            }
            Outcome::Diverged(d) => failure = failed(d.to_string()),
            Outcome::Crashed {
                op_index,
                side,
                status,
            } => {
                failure = failed(format!(
                    "the run ended without a verdict ({status}) in op #{}, in the {}",
                    op_index.map_or("?".into(), |i| i.to_string()),
                    match side {
                        Some(Side::Lib) => impls::library().name,
                        Some(Side::Ref) => "original",
                        None => "?",
                    }
                ))
            }
        }
        if last_report.elapsed().as_secs() >= 60 {
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "differential: {done_ops} operations in {secs:.0} s ({:.0}/s), {passed} \
                 sequences passed",
                done_ops as f64 / secs
            );
        }
    }
    // Whatever still runs after a failure is not needed.
    for job in pending {
        let _ = job.child.wait();
    }

    let secs = start.elapsed().as_secs_f64();
    for (f, s) in Format::ALL.iter().zip(&stats) {
        println!(
            "differential: {f:?}: {} ops, {} populates ({} degenerate), {} vacates ({} not \
             of a region), {} reallocs ({} leftover tables freed), {} pages mapped, {} \
             unmapped, {} walks, {} iterator entries, {} tree checks of {} tables; peaks {} \
             tables, {} GiB populated",
            s.ops,
            s.populates,
            s.odd_populates,
            s.vacates,
            s.odd_vacates,
            s.reallocs,
            s.cleanups,
            s.maps,
            s.unmaps,
            s.walks,
            s.iterated,
            s.tree_checks,
            s.tables_compared,
            s.peak_tables,
            s.peak_populated >> 30
        );
    }
    println!(
        "differential: {done_ops} operations in {secs:.1} s ({:.0} operations/s)",
        done_ops as f64 / secs.max(1e-9)
    );

    if let Some((index, seed, len, what)) = failure {
        let format = format_of(seed);
        println!(
            "\ndifferential: FAILED: sequence {index} (seed {seed}, {format:?}, {len} \
             operations): {what}"
        );
        println!(
            "differential: to run it again: VMM_GPT_DIFF_SEED={seed} VMM_GPT_DIFF_OPS={len} \
             cargo test -p vmm-gpt-difftest --test differential"
        );
        println!("differential: shrinking ...");
        let ops = generate(seed, len, format);
        let small = shrink(format, &ops);
        let outcome = spawn(format, &small, true).wait();
        println!(
            "differential: minimal sequence ({} operations, {format:?}), which ends in: {outcome:?}",
            small.len()
        );
        // (A sequence that only failed for skipped operations passes here
        // and is not shrunk: show its start only.)
        const SHOWN: usize = 1000;
        for (i, op) in small.iter().enumerate().take(SHOWN) {
            println!("  #{i}: {op:?}");
        }
        if small.len() > SHOWN {
            println!("  ... {} more", small.len() - SHOWN);
        }
        program::close("differential", passed, 1, 0);
    }
    program::close("differential", passed, 0, 0);
}
