//! The fixes of `illumos-build/patches/` for upstream defects of
//! `vmm_vm.c`, under the consumer (`illumos-build/README.md`, "Upstream
//! defects"):
//!
//! 1. **The test of the test for `vmm_vm-unmap-held-pages.patch`.**  Every
//!    other copy is built with the fix, because the driver keeps holds
//!    across unmaps (and across `vmspace_destroy()`).  The copy `unfixed`
//!    (the gate's `vmm_vm.c` as it is, over the library) must fail that
//!    scenario: its `vmc_space_unmap()` spins forever at the first unmap
//!    while a client holds a page (under ASan it may instead read past the
//!    vmspace), so the run is killed at a short time limit
//!    (`VMM_GPT_CONSUMER_UNFIXED_LIMIT`, 10 s: the unfixed run can never
//!    complete, so a short limit cannot make this test pass wrongly; the
//!    fixed control run of the same parameters takes well under a second).
//!    The fixed copy over the same implementation must pass the same
//!    parameters (the control).
//! 2. **`vmm_vm-hold-bounds.patch`.**  The copies `lib_bounded`,
//!    `ref_bounded` and `ref_ndebug_bounded` are built from `vmm_vm.c` with
//!    the fix and the bound, their driver compiled to require every hold
//!    and fault beyond the vmspace to fail with `FC_NOMAP`.  The library's
//!    bounded copy must give the transcript of the original's (of its own
//!    build), every in-run check passing; and over the seeds run, the
//!    unbounded copy `lib` must have had holds or faults beyond the
//!    vmspace succeed (they alias: the unpatched behaviour, which
//!    `sequential` compares between the library and the original), the
//!    bounded ones none.
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_CONSUMER_BOUNDED_SEEDS` | 4 | seeds per format for 2. |
//! | `VMM_GPT_CONSUMER_SEED` | 1 | the first seed |
//! | `VMM_GPT_CONSUMER_OPS` | 2000 | operations per run |
//! | `VMM_GPT_CONSUMER_UNFIXED_LIMIT` | 10 | seconds before the unfixed run is killed |
//! | `VMM_GPT_CONSUMER_LIMIT` | see `sequential` | the other runs' limit |

use std::time::Duration;

use vmm_gpt_consumer::{
    available_pairs_of, close, copy, env_is_1, env_u64, first_difference, jobs, limit,
    report_missing, run_all, runs, Limit, Outcome, Params, BOUNDED_PAIRS, MISSING,
};

const NAME: &str = "consumer patches";

fn params(first: u64, seeds: u64, ops: u32) -> Vec<Params> {
    runs(first, seeds, |format, seed| {
        Params::sequential(format, seed, ops)
    })
}

/// The transcript's "beyond the vmspace: N holds and faults, M succeeded".
fn beyond(transcript: &str) -> Option<(u64, u64)> {
    let line = transcript
        .lines()
        .find(|l| l.starts_with("beyond the vmspace: "))?;
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    match nums[..] {
        [n, ok] => Some((n, ok)),
        _ => None,
    }
}

/// 1.: the unfixed copy must fail where the fixed one passes.
fn unfixed(first: u64, ops: u32) -> usize {
    let (Some(control), Some(unfixed)) = (copy("lib"), copy("unfixed")) else {
        println!("FAIL: the copies lib and unfixed are not both built");
        return 1;
    };
    let runs = params(first, 1, ops);
    let work = |run, tag: &str| -> Vec<_> {
        runs.iter()
            .map(|p| (run, tag.to_string(), *p))
            .collect::<Vec<_>>()
    };
    let secs = Duration::from_secs(env_u64("VMM_GPT_CONSUMER_UNFIXED_LIMIT", 10));
    let short = Limit {
        cpu: secs,
        wall: secs,
    };
    let controls = run_all(&work(control.run, "lib"), jobs(), limit());
    let outcomes = run_all(&work(unfixed.run, "unfixed"), jobs(), short);
    let mut failed = 0;
    for ((p, c), u) in runs.iter().zip(&controls).zip(&outcomes) {
        let Some(ct) = c.clean() else {
            println!("FAIL {p}: the fixed copy (control) failed: {}", c.trouble());
            failed += 1;
            continue;
        };
        let how = match u {
            Outcome::Died { how, stderr } => Some(format!(
                "the run died ({how}){}",
                stderr
                    .lines()
                    .find(|l| l.contains("ERROR: AddressSanitizer") || l.starts_with("panic"))
                    .map_or(String::new(), |l| format!(": {l}"))
            )),
            Outcome::Ran { checks: false, .. } => {
                Some(format!("an in-run check failed: {}", u.trouble()))
            }
            Outcome::Ran { transcript, .. } => first_difference(ct, transcript)
                .map(|d| format!("its transcript differs from the fixed one:\n{d}")),
        };
        match how {
            Some(how) => println!("the unfixed vmm_vm.c fails {p}, as it must: {how}"),
            None => {
                println!("FAIL {p}: the unfixed vmm_vm.c passed the holds across unmaps");
                failed += 1;
            }
        }
    }
    failed
}

/// 2.: the bounded copies, compared, and the aliases gone.
fn bounded(first: u64, seeds: u64, ops: u32) -> usize {
    let (pairs, skipped) = available_pairs_of(BOUNDED_PAIRS);
    let mut failed = 0;
    for (why, required) in &skipped {
        failed += report_missing(why, *required);
    }
    let Some(pair) = pairs.first() else {
        return failed;
    };
    let Some(lib) = copy("lib") else {
        println!("FAIL: the copy lib is not built");
        return failed + 1;
    };
    println!("comparing: {}", pair.what);
    let runs = params(first, seeds, ops);
    let tags = ["lib", pair.tag, pair.reference];
    let mut work = Vec::new();
    for p in &runs {
        for t in tags {
            let run = if t == "lib" {
                lib.run
            } else {
                copy(t).expect("available").run
            };
            work.push((run, t.to_string(), *p));
        }
    }
    let outcomes = run_all(&work, jobs(), limit());
    let mut aliased = 0;
    for (k, p) in runs.iter().enumerate() {
        let of = |i: usize| &outcomes[k * tags.len() + i];
        let clean: Vec<Option<&str>> = (0..tags.len()).map(|i| of(i).clean()).collect();
        for (i, t) in tags.iter().enumerate() {
            if clean[i].is_none() {
                println!("FAIL {p}, copy {t}: {}", of(i).trouble());
                failed += 1;
            }
        }
        let (Some(unb), Some(a), Some(b)) = (clean[0], clean[1], clean[2]) else {
            continue;
        };
        if let Some(d) = first_difference(b, a) {
            println!(
                "FAIL {p}: {} differ ({} '-', {} '+'):\n{d}",
                pair.what, pair.reference, pair.tag
            );
            failed += 1;
        }
        match (beyond(unb), beyond(a)) {
            (Some((_, ok)), Some((n, 0))) => {
                aliased += ok;
                println!(
                    "{p}: beyond the vmspace, {ok} holds and faults alias unpatched, \
                     none of {n} patched"
                );
            }
            (u, b) => {
                println!("FAIL {p}: beyond the vmspace, unpatched {u:?}, patched {b:?}");
                failed += 1;
            }
        }
    }
    if aliased == 0 {
        println!("FAIL: no hold or fault beyond the vmspace succeeded unpatched: nothing shown");
        failed += 1;
    }
    failed
}

fn main() {
    let require = env_is_1("VMM_GPT_REQUIRE_REFERENCE");
    if !MISSING.is_empty() {
        close(NAME, report_missing(MISSING, require), 1);
    }
    let first = env_u64("VMM_GPT_CONSUMER_SEED", 1);
    let ops = env_u64("VMM_GPT_CONSUMER_OPS", 2000) as u32;
    let seeds = env_u64("VMM_GPT_CONSUMER_BOUNDED_SEEDS", 4);
    let mut failed = unfixed(first, ops);
    failed += bounded(first, seeds, ops);
    close(NAME, failed, 0);
}
