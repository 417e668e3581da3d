//! Running a sequence in a forked child, where a kernel panic (abort) or a
//! crash of either implementation is an outcome rather than the end of the
//! caller; and shrinking a failing sequence to a minimal one.
//!
//! Forking is safe for a single-threaded caller (the tests of this crate
//! are plain programs); with other threads running, the child must not
//! need a lock one of them held.  glibc's malloc and the kernel stand-in's
//! locks are fork-safe; the child prints nothing through Rust's stdio.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::Ordering;

use crate::runner::PANIC_FD;
use crate::{run, Divergence, Format, Op, Side, Stats};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No difference.
    Pass(Stats),
    /// A difference.
    Diverged(Divergence),
    /// The child ended without a verdict: a kernel panic (an assertion of
    /// either implementation, reported with the operation it happened in
    /// and the side that panicked: the one called last) or a crash.
    Crashed {
        op_index: Option<usize>,
        side: Option<Side>,
        status: String,
    },
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !matches!(self, Outcome::Pass(_))
    }
}

/// [`run`] in a forked child; the child's stdout and stderr stay the
/// caller's.
pub fn run_isolated(format: Format, ops: &[Op]) -> Outcome {
    spawn(format, ops, false).wait()
}

/// A forked child running a sequence.
pub struct Child {
    pid: libc::pid_t,
    reader: std::fs::File,
}

/// Forks a child that runs `ops` and reports its verdict through a pipe
/// (its stdout and stderr go to /dev/null if `quiet`).
pub fn spawn(format: Format, ops: &[Op], quiet: bool) -> Child {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        panic!("pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the child only runs `run` (no locks of other threads needed
    // for a single-threaded caller), writes its verdict with write(2), and
    // leaves with _exit: no atexit handlers, no stdio flush.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        panic!("fork: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        child(format, ops, quiet, fds)
    }
    // SAFETY: closing our copy of the write end; the read end is ours to
    // own from here on.
    let reader = unsafe {
        libc::close(fds[1]);
        std::fs::File::from_raw_fd(fds[0])
    };
    Child { pid, reader }
}

fn child(format: Format, ops: &[Op], quiet: bool, fds: [i32; 2]) -> ! {
    // SAFETY: closing our copy of the read end; redirecting stdio to
    // /dev/null when asked (a path literal, a valid flag).
    unsafe {
        libc::close(fds[0]);
        if quiet {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 {
                libc::dup2(null, 1);
                libc::dup2(null, 2);
            }
        }
    }
    PANIC_FD.store(fds[1] as u64, Ordering::SeqCst);
    let verdict = match run(format, ops) {
        Ok(stats) => {
            let words: Vec<String> = stats.to_words().iter().map(u64::to_string).collect();
            format!("pass {}\n", words.join(" "))
        }
        Err(d) => format!("diverged {}\n{}", d.op_index, d.what),
    };
    let mut rest = verdict.as_bytes();
    while !rest.is_empty() {
        // SAFETY: writes from a live buffer to our pipe.
        let n = unsafe { libc::write(fds[1], rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            break;
        }
        rest = &rest[n as usize..];
    }
    // SAFETY: ends the child without running the parent's atexit handlers
    // or flushing its stdio buffers.
    unsafe { libc::_exit(0) }
}

impl Child {
    /// Waits for the child and reads its verdict.
    pub fn wait(mut self) -> Outcome {
        let mut msg = String::new();
        let _ = self.reader.read_to_string(&mut msg);
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
        verdict(&msg, status)
    }
}

/// The outcome from what the child wrote and how it ended.
fn verdict(msg: &str, status: i32) -> Outcome {
    if let Some(rest) = msg.strip_prefix("pass ") {
        let words: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if let Some(stats) = Stats::from_words(&words) {
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                return Outcome::Pass(stats);
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("diverged ") {
        let (index, what) = rest.split_once('\n').unwrap_or((rest, ""));
        if let Ok(op_index) = index.parse() {
            return Outcome::Diverged(Divergence {
                op_index,
                what: what.to_string(),
            });
        }
    }
    let mut panic = msg
        .strip_prefix("panic ")
        .unwrap_or_default()
        .split_whitespace();
    let op_index = panic.next().and_then(|i| i.parse().ok());
    let side = match panic.next() {
        Some("lib") => Some(Side::Lib),
        Some("ref") => Some(Side::Ref),
        _ => None,
    };
    let status = if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    };
    Outcome::Crashed {
        op_index,
        side,
        status,
    }
}

/// Where the failure of an outcome happened, if known.
fn failure_index(o: &Outcome) -> Option<usize> {
    match o {
        Outcome::Pass(_) => None,
        Outcome::Diverged(d) => Some(d.op_index),
        Outcome::Crashed { op_index, .. } => *op_index,
    }
}

/// Simpler variants of one operation (smaller ranges), for shrinking.
fn simpler(op: &Op) -> Vec<Op> {
    let half = |len: u64| (len / 2) & !(crate::PAGE - 1);
    let mut v = Vec::new();
    match op.clone() {
        Op::Populate { addr, len } if len > crate::PAGE => {
            v.push(Op::Populate {
                addr,
                len: half(len).max(crate::PAGE),
            });
        }
        Op::Fill(f) => {
            if f.len > crate::PAGE {
                let len = half(f.len).max(crate::PAGE);
                v.push(Op::Fill(crate::Fill { len, ..f }));
            }
            if f.skip != 0 {
                v.push(Op::Fill(crate::Fill { skip: 0, ..f }));
            }
        }
        Op::Track { addr, len, reset } if len > crate::PAGE => {
            v.push(Op::Track {
                addr,
                len: half(len).max(crate::PAGE),
                reset,
            });
        }
        Op::UnmapRegion { addr, len } if len > crate::PAGE => {
            v.push(Op::UnmapRegion {
                addr,
                len: half(len).max(crate::PAGE),
            });
        }
        Op::VacateRange { addr, len } if len > crate::PAGE => {
            v.push(Op::VacateRange {
                addr,
                len: half(len).max(crate::PAGE),
            });
        }
        _ => {}
    }
    v
}

/// A minimal sequence that still fails (diverges, panics or crashes) with
/// `format`, found by running candidates isolated ([`run_isolated`],
/// quietly): the prefix up to the failure, then chunks of operations
/// removed (halving the chunk size down to single operations, until no
/// single removal keeps it failing), then ranges halved.  Returns `ops`
/// itself if it does not fail.
pub fn shrink(format: Format, ops: &[Op]) -> Vec<Op> {
    let fails = |c: &[Op]| spawn(format, c, true).wait();
    let first = fails(ops);
    if !first.failed() {
        return ops.to_vec();
    }
    let mut cur = ops.to_vec();
    if let Some(i) = failure_index(&first) {
        if i + 1 < cur.len() {
            let prefix = &cur[..=i];
            if fails(prefix).failed() {
                cur = prefix.to_vec();
            }
        }
    }

    let mut chunk = (cur.len() / 2).max(1);
    loop {
        let mut removed = false;
        let mut i = 0;
        while i < cur.len() {
            let end = (i + chunk).min(cur.len());
            let mut cand = cur[..i].to_vec();
            cand.extend_from_slice(&cur[end..]);
            let o = fails(&cand);
            if o.failed() {
                // Whatever followed the new failure point is not needed.
                if let Some(j) = failure_index(&o) {
                    cand.truncate(j + 1);
                }
                cur = cand;
                removed = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        if !removed || chunk > 1 {
            chunk = (chunk / 2).max(1);
        }
    }

    // Then make the remaining operations smaller where that still fails.
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..cur.len() {
            for s in simpler(&cur[i]) {
                let mut cand = cur.clone();
                cand[i] = s;
                if fails(&cand).failed() {
                    cur = cand;
                    changed = true;
                    break;
                }
            }
        }
    }
    cur
}
