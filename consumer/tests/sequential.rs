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
//! | `VMM_GPT_CONSUMER_LIMIT`, `_WALL_LIMIT` | 120, 3600 | seconds of CPU, of wall-clock time before a run counts as hung (`concurrent`) |

use vmm_gpt_consumer::{env_u64, run_test, Params};

const NAME: &str = "consumer sequential";

fn main() {
    let seeds = env_u64("VMM_GPT_CONSUMER_SEEDS", 8);
    let first = env_u64("VMM_GPT_CONSUMER_SEED", 1);
    let ops = env_u64("VMM_GPT_CONSUMER_OPS", 2000) as u32;
    run_test(NAME, first, seeds, |format, seed| {
        Params::sequential(format, seed, ops)
    })
}
