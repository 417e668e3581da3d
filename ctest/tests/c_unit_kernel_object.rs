//! The C unit tests (`ctest/c/test_*.c`) against the kernel object: runs the
//! executables that build.rs linked with `VMM_GPT_KERNEL_OBJECT` (the
//! object `illumos-build/build.sh` makes, `target/kernel/vmm_gpt.o`) and,
//! when set, `VMM_GPT_KERNEL_OBJECT_DEBUG` (its DEBUG variant), with this
//! test's arguments (filters), streaming their output.  Those executables
//! hold the kernel object, the kernel stand-in, the stubs and the PTE
//! formats, and nothing of Rust's runtime.

use std::env;
use std::process::{exit, Command};

// Every test target of this package gets the C harness linked in (see
// Cargo.toml), which calls the library: link it, though unused here.
use vmm_gpt as _;

/// Tests of checks that only DEBUG builds make (the library's
/// `debug_assertions`, the original's `ASSERT`s): the test suite builds
/// the library and the original that way, so these expect a panic that a
/// non-DEBUG object rightly does not make.  They run against the DEBUG
/// object only.
const DEBUG_ONLY: &[&str] = &["death_map_at_conflict"];

fn main() {
    let exes = [
        ("kernel object", env!("VMM_GPT_KERNEL_OBJECT_EXE")),
        (
            "DEBUG kernel object",
            env!("VMM_GPT_KERNEL_OBJECT_DEBUG_EXE"),
        ),
    ];
    let listing = env::args_os().any(|a| a == "--list");
    if exes[0].1.is_empty() {
        if listing {
            return; // no tests to list (for cargo-nextest)
        }
        if env::var("VMM_GPT_REQUIRE_KERNEL_OBJECT").is_ok_and(|v| v == "1") {
            println!(
                "c_unit_kernel_object: VMM_GPT_REQUIRE_KERNEL_OBJECT=1, but this test was built \
                 without VMM_GPT_KERNEL_OBJECT"
            );
            println!("0 passed, 1 failed, 0 skipped");
            exit(1);
        }
        println!(
            "kernel object not linked (VMM_GPT_KERNEL_OBJECT unset; scripts/test.sh sets it \
             after illumos-build/build.sh): skipped"
        );
        println!("0 passed, 0 failed, 1 skipped");
        return;
    }
    if listing {
        // The cases are those of c_unit; list them once.
        let status = Command::new(exes[0].1)
            .args(env::args_os().skip(1))
            .status();
        exit(status.map_or(1, |s| s.code().unwrap_or(1)));
    }
    let mut failed = false;
    for (i, (what, exe)) in exes.into_iter().enumerate() {
        if exe.is_empty() {
            println!("\nc_unit_kernel_object: no {what} (VMM_GPT_KERNEL_OBJECT_DEBUG unset)");
            continue;
        }
        println!("\nc_unit_kernel_object: the C unit tests against the {what} ({exe})");
        let mut cmd = Command::new(exe);
        cmd.args(env::args_os().skip(1));
        if i == 0 {
            println!(
                "c_unit_kernel_object: DEBUG-only, left to the DEBUG object: {}",
                DEBUG_ONLY.join(" ")
            );
            for t in DEBUG_ONLY {
                cmd.args(["--skip", t]);
            }
        }
        match cmd.status() {
            Ok(s) if s.success() => {}
            Ok(s) => {
                println!("c_unit_kernel_object: {exe} ended with {s}");
                failed = true;
            }
            Err(e) => {
                println!("c_unit_kernel_object: cannot run {exe}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        exit(1);
    }
}
