//! The test of the test: each mutant of the original `vmm_gpt.c` (a
//! one-line change that matters to vmm_vm.c, compiled without DEBUG and
//! renamed `mut<N>_*` by build.rs) runs under the consumer, and must be
//! caught: its transcript differs from the unmutated non-DEBUG original's,
//! an in-run check fails, or the run dies.  Runs go from cheap to costly
//! (sequential seed 1, then seeds 2 and 3, then the concurrent scenario)
//! and stop at the first that catches the mutant.
//!
//! Skipped without the original (`VMM_GPT_REQUIRE_REFERENCE=1`: a
//! failure); a mutant whose line is not in this checkout's `vmm_gpt.c`
//! is a failure under `VMM_GPT_REQUIRE_REFERENCE=1` too.

use vmm_gpt_consumer::{
    close, copy, env_is_1, first_difference, jobs, report_missing, run_all, Format, Mode, Outcome,
    Params, MISSING, MUTANTS,
};

const NAME: &str = "consumer mutants";
const OPS: u32 = 600;

fn stages() -> Vec<Vec<Params>> {
    let seq = |seed| {
        Format::ALL
            .into_iter()
            .map(|format| Params::sequential(format, seed, OPS))
            .collect::<Vec<_>>()
    };
    let conc = Format::ALL
        .into_iter()
        .map(|format| Params {
            format,
            mode: Mode::Concurrent,
            seed: 1,
            ops: 2000,
            vcpus: 2,
            devices: 2,
        })
        .collect();
    vec![seq(1), [seq(2), seq(3)].concat(), conc]
}

/// How the mutant's run differs from the original's, if it does.
fn caught(reference: &Outcome, mutant: &Outcome) -> Option<String> {
    let Some(r) = reference.clean() else {
        panic!("the original itself failed: {}", reference.trouble());
    };
    match mutant {
        Outcome::Ran {
            checks: false,
            transcript,
        } => Some(format!(
            "an in-run check failed: {}",
            transcript
                .lines()
                .find(|l| l.starts_with("FAIL"))
                .unwrap_or("?")
        )),
        Outcome::Ran { transcript, .. } => first_difference(r, transcript).map(|d| {
            let last: Vec<&str> = d.lines().rev().take(2).collect();
            format!("the transcripts differ:\n{}\n{}", last[1], last[0])
        }),
        Outcome::Died { how, stderr } => Some(format!(
            "the run died ({how}): {}",
            stderr
                .lines()
                .rfind(|l| l.starts_with("panic"))
                .unwrap_or("")
        )),
    }
}

fn main() {
    let require = env_is_1("VMM_GPT_REQUIRE_REFERENCE");
    let Some(reference) = copy("ref_ndebug").filter(|_| MISSING.is_empty()) else {
        let why = if MISSING.is_empty() {
            "the original is not linked"
        } else {
            MISSING
        };
        close(NAME, report_missing(why, require), 1);
    };
    // A mutant killed at the limit is caught; the reference must not be.
    let limit = vmm_gpt_consumer::limit();
    let mut failed = 0;
    let mut skipped = 0;
    let mut pending: Vec<(&str, &str, vmm_gpt_consumer::RunFn)> = Vec::new();
    for m in MUTANTS {
        match m.run {
            Ok(run) => pending.push((m.name, m.what, run)),
            Err(why) => {
                if report_missing(&format!("mutant {} not built: {why}", m.name), require) > 0 {
                    failed += 1;
                } else {
                    skipped += 1;
                }
            }
        }
    }
    for stage in stages() {
        if pending.is_empty() {
            break;
        }
        let mut work = Vec::new();
        for p in &stage {
            work.push((reference.run, "ref_ndebug".to_string(), *p));
        }
        for (name, _, run) in &pending {
            for p in &stage {
                work.push((*run, name.to_string(), *p));
            }
        }
        let outcomes = run_all(&work, jobs(), limit);
        let (refs, rest) = outcomes.split_at(stage.len());
        let mut still = Vec::new();
        for (k, m) in pending.iter().enumerate() {
            let runs = &rest[k * stage.len()..(k + 1) * stage.len()];
            match stage
                .iter()
                .zip(refs.iter().zip(runs))
                .find_map(|(p, (r, o))| caught(r, o).map(|why| (p, why)))
            {
                Some((p, why)) => println!("caught {} ({}) with {p}: {why}", m.0, m.1),
                None => still.push(*m),
            }
        }
        pending = still;
    }
    for (name, what, _) in &pending {
        println!("FAIL: mutant {name} ({what}) was not caught");
        failed += 1;
    }
    close(NAME, failed, skipped);
}
