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
use std::ffi::{c_char, c_int, CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{exit, Command};
use std::ptr;

// Links the library, which the C tests call.
use vmm_gpt as _;
use vmm_gpt_harness as _;

extern "C" {
    /// The vtest runner (ctest/c/vtest_main.c).
    fn vtest_main(argc: c_int, argv: *mut *mut c_char, reference: bool, debug: bool) -> c_int;
}

/// Set in the environment of the run under valgrind (which must not recurse);
/// the C runner reads it too.
const UNDER_VALGRIND: &str = "VMM_GPT_UNDER_VALGRIND";

const VALGRIND_ARGS: &[&str] = &[
    "--error-exitcode=99",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite",
    "--quiet",
];

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

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The command line, quoted for a POSIX shell, for developers to reproduce.
fn shell_words<'a>(words: impl IntoIterator<Item = &'a OsStr>) -> String {
    words
        .into_iter()
        .map(|w| {
            let w = w.to_string_lossy();
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c))
            {
                w.into_owned()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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
    if status != 0 || env::var_os(UNDER_VALGRIND).is_some() {
        exit(status);
    }
    if args.iter().any(|a| a == "--list") {
        exit(0);
    }

    let mode = env::var("VMM_GPT_VALGRIND").unwrap_or_default();
    if mode == "0" {
        return;
    }
    let Some(valgrind) = find_on_path("valgrind") else {
        if mode == "1" {
            fail_valgrind("VMM_GPT_VALGRIND=1, but valgrind is not on PATH");
        }
        // stderr: the closing line on stdout stays the summary.
        eprintln!("c_unit: valgrind not found: the run under valgrind is skipped");
        return;
    };

    let mut exe =
        env::current_exe().unwrap_or_else(|e| fail_valgrind(&format!("current_exe: {e}")));
    if exe.to_string_lossy().ends_with(" (deleted)") {
        // A rebuild replaced this executable while it ran: the kernel's
        // link to the running one still opens it.
        exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    }
    let skip_slow = env::var("VMM_GPT_VALGRIND_SLOW").is_ok_and(|v| v == "0");
    let mut envs = vec![(UNDER_VALGRIND, "1")];
    if skip_slow {
        envs.push(("VTEST_SKIP_SLOW", "1"));
    }

    let mut vg_args: Vec<&str> = VALGRIND_ARGS.to_vec();
    if env!("VMM_GPT_HAVE_VALGRIND_H") != "1" {
        // kernel.c was built without the client request that makes valgrind
        // drop its translations of hot-patched code: check all code.
        vg_args.push("--smc-check=all");
    }
    let mut cmd = Command::new(&valgrind);
    cmd.args(&vg_args).arg(&exe).args(&args[1..]);
    for (k, v) in &envs {
        cmd.env(k, v);
    }
    let env_words: Vec<OsString> = envs
        .iter()
        .map(|(k, v)| format!("{k}={v}").into())
        .collect();
    let shown = shell_words(
        env_words
            .iter()
            .map(OsString::as_os_str)
            .chain([valgrind.as_os_str()])
            .chain(vg_args.iter().map(OsStr::new))
            .chain([exe.as_os_str()])
            .chain(args[1..].iter().map(OsString::as_os_str)),
    );
    println!("\nc_unit: again under valgrind: {shown}");

    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail_valgrind(&format!(
            "the run under valgrind failed ({s}); to reproduce: {shown}"
        )),
        Err(e) => fail_valgrind(&format!("cannot run {}: {e}", valgrind.display())),
    }
}
