//! What the test programs (plain `main`s, no libtest harness) share: the
//! `--list` answer, numeric settings from the environment, and the closing
//! line "N passed, N failed, N skipped" that counts only checks made.

use std::env;
use std::process::exit;

/// Answers `--list` (the test runner's question) and exits, if asked.
pub fn answer_list(name: &str) {
    if env::args().any(|a| a == "--list") {
        println!("{name}: test");
        exit(0);
    }
}

/// Prints the closing line and exits: failing when anything failed.
pub fn close(name: &str, passed: u64, failed: u64, skipped: u64) -> ! {
    println!("{name}: {passed} passed, {failed} failed, {skipped} skipped");
    exit(i32::from(failed > 0));
}

/// Skips the whole program (one test, not run) when the original is not
/// built.
pub fn skip_without_original(name: &str) {
    if !crate::reference_available() {
        println!("{name}: the original is not built (ILLUMOS_GATE unset): skipped");
        close(name, 0, 0, 1);
    }
}

/// The number in `var`, else `default`; not a number fails the program.
pub fn env_u64(name: &str, var: &str, default: u64) -> u64 {
    match env::var(var) {
        Ok(v) if !v.is_empty() => v.parse().unwrap_or_else(|_| {
            println!("{name}: {var}={v} is not a number");
            close(name, 0, 1, 0)
        }),
        _ => default,
    }
}
