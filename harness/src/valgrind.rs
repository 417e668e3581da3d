//! Running a test program again under valgrind memcheck, as
//! `VMM_GPT_VALGRIND` asks: `1` required (missing valgrind is a failure),
//! `0` not run, unset (or anything else) run when `valgrind` is on `PATH`.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Command;

/// Set in the environment of the run under valgrind (which must not
/// recurse); the C runner reads it too.
pub const UNDER_VALGRIND: &str = "VMM_GPT_UNDER_VALGRIND";

/// Whether this is the run under valgrind.
pub fn under_valgrind() -> bool {
    env::var_os(UNDER_VALGRIND).is_some()
}

/// What became of the run under valgrind.
pub enum Rerun {
    /// Not run, and why (not a failure).
    Skipped(String),
    /// Ran, and valgrind found nothing.
    Clean,
    /// A failure, and what it was (with the command to reproduce it).
    Failed(String),
}

/// Runs this executable again under valgrind, with `args` and, besides
/// `VMM_GPT_UNDER_VALGRIND=1`, `envs`; prints the command first.
/// `have_valgrind_h`: the stand-in tells valgrind about its code patches
/// (`<valgrind/valgrind.h>` was there when it was built); else valgrind
/// checks all code for changes.
pub fn rerun(
    name: &str,
    have_valgrind_h: bool,
    args: &[OsString],
    envs: &[(&str, String)],
) -> Rerun {
    let mode = env::var("VMM_GPT_VALGRIND").unwrap_or_default();
    if mode == "0" {
        return Rerun::Skipped("VMM_GPT_VALGRIND=0: the run under valgrind is skipped".into());
    }
    let Some(valgrind) = find_on_path("valgrind") else {
        if mode == "1" {
            return Rerun::Failed("VMM_GPT_VALGRIND=1, but valgrind is not on PATH".into());
        }
        return Rerun::Skipped("valgrind not found: the run under valgrind is skipped".into());
    };
    let mut exe = match env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Rerun::Failed(format!("current_exe: {e}")),
    };
    if exe.to_string_lossy().ends_with(" (deleted)") {
        // A rebuild replaced this executable while it ran: the kernel's
        // link to the running one still opens it.
        exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    }
    // --fair-sched=yes: a ticket lock hands the CPU to the threads in
    // turn; valgrind's default lets a spinning thread starve the others,
    // and the stress tests' races then never happen (a thread that ran no
    // operation fails them).
    let mut vg_args = vec![
        "--fair-sched=yes",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        "--quiet",
    ];
    if !have_valgrind_h {
        vg_args.push("--smc-check=all");
    }
    let mut envs = envs.to_vec();
    envs.insert(0, (UNDER_VALGRIND, "1".into()));
    let mut cmd = Command::new(&valgrind);
    cmd.args(&vg_args).arg(&exe).args(args);
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
            .chain(args.iter().map(OsString::as_os_str)),
    );
    println!("{name}: again under valgrind: {shown}");
    match cmd.status() {
        Ok(s) if s.success() => Rerun::Clean,
        Ok(s) => Rerun::Failed(format!(
            "the run under valgrind failed ({s}); to reproduce: {shown}"
        )),
        Err(e) => Rerun::Failed(format!("cannot run {}: {e}", valgrind.display())),
    }
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
