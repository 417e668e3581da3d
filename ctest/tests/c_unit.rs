//! The C unit tests (`ctest/c/test_*.c`, built and linked in by build.rs)
//! against the Rust library, as this profile builds it: with the test
//! profile's debug assertions a DEBUG build (`cfg(vmm_gpt_debug)`, unless
//! `VMM_GPT_DEBUG=0`), whose counterparts of the original's `ASSERT`s are
//! live; the runner is told which (build.rs decides as the library's
//! build.rs does).
//!
//! Runs the vtest runner natively; then, unless this already is that run,
//! re-runs this executable under valgrind:
//!
//! - `VMM_GPT_VALGRIND=1`: required (an error when valgrind is missing);
//! - `VMM_GPT_VALGRIND=0`: not run;
//! - unset (or anything else): run when `valgrind` is on `PATH`.
//!
//! Under valgrind too, VT_SLOW tests run, unless `VMM_GPT_VALGRIND_SLOW=0`
//! (then they are skipped: `VTEST_SKIP_SLOW=1`).  Arguments (test filters)
//! go to both runs.

use std::env;
use std::ffi::{c_char, c_int, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::exit;
use std::ptr;

// Links the library, which the C tests call.
use vmm_gpt as _;
use vmm_gpt_harness::valgrind::{self, Rerun};

extern "C" {
    /// The vtest runner (ctest/c/vtest_main.c).
    fn vtest_main(argc: c_int, argv: *mut *mut c_char, reference: bool, debug: bool) -> c_int;
}

fn run_vtest(args: &[OsString]) -> i32 {
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).expect("an argument contains a NUL byte"))
        .collect();
    let mut argv: Vec<*mut c_char> = cargs.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(ptr::null_mut());
    let argc = c_int::try_from(cargs.len()).expect("too many arguments");
    // Whether the library is a DEBUG build: build.rs applies its rule
    // (VMM_GPT_DEBUG, else the profile's debug assertions: the test profile
    // has them).
    let debug = env!("VMM_GPT_LIBRARY_DEBUG") == "1";
    // SAFETY: argv holds argc valid NUL-terminated strings (kept alive by
    // cargs) and a final NULL, as C's main() gets them; vtest_main does not
    // keep them past its return.
    unsafe { vtest_main(argc, argv.as_mut_ptr(), false, debug) }
}

/// Ends with a closing line the CI reads as one failure.
fn fail_valgrind(msg: &str) -> ! {
    println!("c_unit: {msg}");
    println!("valgrind: 0 passed, 1 failed, 0 skipped");
    exit(1);
}

fn main() {
    let args: Vec<OsString> = env::args_os().collect();
    let status = run_vtest(&args);
    if status != 0 || valgrind::under_valgrind() {
        exit(status);
    }
    if args.iter().any(|a| a == "--list") {
        exit(0);
    }
    let mut envs = Vec::new();
    if env::var("VMM_GPT_VALGRIND_SLOW").is_ok_and(|v| v == "0") {
        envs.push(("VTEST_SKIP_SLOW", "1".to_string()));
    }
    let have_vg_h = env!("VMM_GPT_HAVE_VALGRIND_H") == "1";
    println!();
    match valgrind::rerun("c_unit", have_vg_h, &args[1..], &envs) {
        // stderr: the closing line on stdout stays the summary.
        Rerun::Skipped(why) => eprintln!("c_unit: {why}"),
        Rerun::Clean => {}
        Rerun::Failed(why) => fail_valgrind(&why),
    }
}
