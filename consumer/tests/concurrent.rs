//! vmm_vm.c's concurrent scenario (c/driver.c): vCPU threads (guest
//! accesses as the hardware makes them, faults, leaving guest mode when
//! poked) and device threads (holds, writes, releases) while the main
//! thread harvests dirty pages and populates.  Every run checks that with
//! tracking on no dirty page is lost or invented (the pages harvested are
//! exactly those written, and a copy of memory kept from the harvests
//! alone equals memory); what the interleaving cannot change (each
//! thread's outcomes, the resident count, the tree) is compared across
//! implementations as in `sequential`.
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `VMM_GPT_CONSUMER_THREAD_SEEDS` | 4 | seeds per format |
//! | `VMM_GPT_CONSUMER_SEED` | 1 | the first seed |
//! | `VMM_GPT_CONSUMER_ACCESSES` | 5000 | guest accesses per vCPU thread |
//! | `VMM_GPT_CONSUMER_VCPUS`, `_DEVICES` | 2, 2 | threads of each kind |
//! | `VMM_GPT_CONSUMER_JOBS` | CPUs | runs at once |
//! | `VMM_GPT_CONSUMER_LIMIT` | 120 | seconds before a run counts as hung |

use vmm_gpt_consumer::{env_u64, run_test, Mode, Params};

const NAME: &str = "consumer concurrent";

fn main() {
    let seeds = env_u64("VMM_GPT_CONSUMER_THREAD_SEEDS", 4);
    let first = env_u64("VMM_GPT_CONSUMER_SEED", 1);
    let accesses = env_u64("VMM_GPT_CONSUMER_ACCESSES", 5000) as u32;
    let vcpus = env_u64("VMM_GPT_CONSUMER_VCPUS", 2) as u32;
    let devices = env_u64("VMM_GPT_CONSUMER_DEVICES", 2) as u32;
    run_test(NAME, first, seeds, |format, seed| Params {
        format,
        mode: Mode::Concurrent,
        seed,
        ops: accesses,
        vcpus,
        devices,
    })
}
