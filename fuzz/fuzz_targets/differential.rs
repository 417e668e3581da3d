//! Fuzz target `differential`: the input bytes become an operation
//! sequence (`vmm_gpt_difftest::from_bytes`: any bytes give a valid,
//! bhyve-like sequence, for the EPT or the AMD format), which runs on the
//! Rust library and on the original `vmm_gpt.c` side by side
//! (`vmm_gpt_difftest::run`).  Any divergence panics with what differs, so
//! libFuzzer saves the input as a crash; a panic of either implementation
//! (a kernel `panic()`, i.e. `abort()`) is a crash too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (format, ops) = vmm_gpt_difftest::from_bytes(data);
    if let Err(d) = vmm_gpt_difftest::run(format, &ops) {
        // A minimized input is short: show all of it; else the operations
        // up to the divergence's (reproduce with `cargo fuzz run` on the
        // saved input, minimize with `cargo fuzz tmin`).
        let upto = (d.op_index + 1).min(ops.len());
        let from = upto.saturating_sub(64);
        panic!(
            "{format:?}, {} ops: {d}\nops[{from}..{upto}]: {:#?}",
            ops.len(),
            &ops[from..upto]
        );
    }
});
