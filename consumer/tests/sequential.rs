//! vmm_vm.c's sequential scenario (c/driver.c: a bhyve-like guest, then
//! random guest accesses, holds, faults, populates, dirty-bit operations,
//! tracking, unmaps and remaps, client churn, teardown) over every
//! implementation, both formats, several seeds; each pair of
//! `vmm_gpt_consumer::PAIRS` must give identical transcripts.
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_CONSUMER_SEEDS` | 8 | seeds per format |
//! | `VMM_GPT_CONSUMER_SEED` | 1 | the first seed |
//! | `VMM_GPT_CONSUMER_OPS` | 2000 | operations per run |
//! | `VMM_GPT_CONSUMER_JOBS` | CPUs | runs at once |
//! | `VMM_GPT_CONSUMER_LIMIT` | 120 | seconds before a run counts as hung |

use std::time::Duration;

use vmm_gpt_consumer::{
    available_pairs, close, compare_all, env_u64, Format, Mode, Params, MISSING,
};

const NAME: &str = "consumer sequential";

fn main() {
    let (pairs, skipped) = available_pairs();
    let mut failed = 0;
    for (why, required) in &skipped {
        if *required {
            println!("FAIL (required): {why}");
            failed += 1;
        } else {
            println!("skipped: {why}");
        }
    }
    if !MISSING.is_empty() || pairs.is_empty() {
        close(NAME, failed, skipped.len());
    }
    let seeds = env_u64("VMM_GPT_CONSUMER_SEEDS", 8);
    let first = env_u64("VMM_GPT_CONSUMER_SEED", 1);
    let ops = env_u64("VMM_GPT_CONSUMER_OPS", 2000) as u32;
    let limit = Duration::from_secs(env_u64("VMM_GPT_CONSUMER_LIMIT", 120));
    let mut params = Vec::new();
    for format in Format::ALL {
        for seed in first..first + seeds {
            params.push(Params {
                format,
                mode: Mode::Sequential,
                seed,
                ops,
                vcpus: 0,
                devices: 0,
            });
        }
    }
    for p in &pairs {
        println!("comparing: {}", p.what);
    }
    failed += compare_all(&params, &pairs, limit);
    close(NAME, failed, skipped.len());
}
