//! The C unit tests (`ctest/c/test_*.c`) against the original illumos
//! `vmm_gpt.c`: runs the executable that build.rs linked when `ILLUMOS_GATE`
//! was set, with this test's arguments (filters), streaming its output.

use std::env;
use std::process::{exit, Command};

// Every test target of this package gets the C harness linked in (see
// Cargo.toml), which calls the library: link it, though unused here.
use vmm_gpt as _;

fn main() {
    let exe = env!("VMM_GPT_REFERENCE_EXE");
    if exe.is_empty() {
        if env::args_os().any(|a| a == "--list") {
            // No tests to list (for cargo-nextest).
            return;
        }
        println!("reference not built (ILLUMOS_GATE unset): skipped");
        println!("0 passed, 0 failed, 1 skipped");
        return;
    }
    match Command::new(exe).args(env::args_os().skip(1)).status() {
        Ok(s) => match s.code() {
            Some(code) => exit(code),
            None => {
                println!("c_unit_reference: {exe} ended with {s}");
                exit(1);
            }
        },
        Err(e) => {
            println!("c_unit_reference: cannot run {exe}: {e}");
            exit(1);
        }
    }
}
