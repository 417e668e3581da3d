//! Runs the C unit test executables that build.rs links with an
//! implementation other than the test profile's library (the originals, the
//! kernel objects, the release staticlib), with this test's arguments
//! (filters), streaming their output.

use std::env;
use std::io::{BufRead, BufReader};
use std::process::{exit, Command, Stdio};

/// One executable: what it tests, its path (empty when build.rs did not link
/// it) and what to set to get it.
pub struct Exe {
    pub what: &'static str,
    pub path: &'static str,
    pub unset: &'static str,
}

/// The counts of the runner's closing line "N passed, N failed, N skipped".
fn parse_summary(line: &str) -> Option<[u64; 3]> {
    let mut counts = [0; 3];
    let parts: Vec<&str> = line.trim().split(", ").collect();
    if parts.len() != 3 {
        return None;
    }
    for (i, (part, word)) in parts
        .iter()
        .zip(["passed", "failed", "skipped"])
        .enumerate()
    {
        let (n, w) = part.split_once(' ')?;
        if w != word {
            return None;
        }
        counts[i] = n.parse().ok()?;
    }
    Some(counts)
}

/// Runs `exe` with the arguments; returns its summary counts (None when it
/// gave none) and whether it succeeded.
fn run_one(test: &str, exe: &Exe) -> (Option<[u64; 3]>, bool) {
    let mut child = match Command::new(exe.path)
        .args(env::args_os().skip(1))
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("{test}: cannot run {}: {e}", exe.path);
            return (None, false);
        }
    };
    let mut summary = None;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        println!("{line}");
        if let Some(c) = parse_summary(&line) {
            summary = Some(c);
        }
    }
    match child.wait() {
        Ok(s) if s.success() => (summary, true),
        Ok(s) => {
            println!("{test}: {} ended with {s}", exe.path);
            (summary, false)
        }
        Err(e) => {
            println!("{test}: waiting for {}: {e}", exe.path);
            (summary, false)
        }
    }
}

/// Runs every executable that was linked and exits: with failure when one
/// failed or, with `require` (a variable) set to 1, when none was linked;
/// skipped (a closing line saying so) when none was linked otherwise.
/// `--list` lists the cases of the first executable (they are the same in
/// all), for cargo-nextest.
pub fn run(test: &str, exes: &[Exe], require: &str) -> ! {
    let listing = env::args_os().any(|a| a == "--list");
    let Some(first) = exes.iter().find(|e| !e.path.is_empty()) else {
        if listing {
            exit(0); // no tests to list
        }
        let unset: Vec<&str> = exes.iter().map(|e| e.unset).collect();
        if env::var(require).is_ok_and(|v| v == "1") {
            println!(
                "{test}: {require}=1, but this test was built without {}",
                unset.join(", ")
            );
            println!("0 passed, 1 failed, 0 skipped");
            exit(1);
        }
        println!("{test}: not linked ({} unset): skipped", unset.join(", "));
        println!("0 passed, 0 failed, 1 skipped");
        exit(0);
    };
    if listing {
        let status = Command::new(first.path)
            .args(env::args_os().skip(1))
            .status();
        exit(status.map_or(1, |s| s.code().unwrap_or(1)));
    }

    let mut ok = true;
    let mut lines = Vec::new();
    let mut total = [0u64; 3];
    for exe in exes {
        if exe.path.is_empty() {
            println!("\n{test}: no {} ({} unset)", exe.what, exe.unset);
            lines.push(format!("{}: not linked ({} unset)", exe.what, exe.unset));
            continue;
        }
        println!(
            "\n{test}: the C unit tests against the {} ({})",
            exe.what, exe.path
        );
        let (summary, success) = run_one(test, exe);
        ok &= success;
        match summary {
            Some(c) => {
                for (t, n) in total.iter_mut().zip(c) {
                    *t += n;
                }
                lines.push(format!(
                    "{}: {} passed, {} failed, {} skipped",
                    exe.what, c[0], c[1], c[2]
                ));
            }
            None => {
                total[1] += 1;
                lines.push(format!("{}: no summary (it failed to run)", exe.what));
            }
        }
    }
    if lines.len() > 1 {
        println!("\n{test}:");
        for l in &lines {
            println!("    {l}");
        }
        println!(
            "{} passed, {} failed, {} skipped",
            total[0], total[1], total[2]
        );
    }
    exit(if ok { 0 } else { 1 });
}
