//! Model-based property tests: bhyve-like operation sequences applied to
//! the library and to the plain model (see the crate docs and `run.rs`).
//!
//! `PROPTEST_CASES` sets the number of cases of each test (default: a
//! count that keeps the whole file to about half a minute).  The library
//! is process-global (hot-patched stubs, the installed format), so every
//! case holds a [`Session`], which serializes them.

use std::cell::{Cell, RefCell};
use std::panic::{self, catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use proptest::test_runner::{Config, TestRunner};

use vmm_gpt_model::library::{Format, Prot, Session, MTRR_WB};
use vmm_gpt_model::ops::{self, Base, Case, Mapping, Op, Target};
use vmm_gpt_model::run::{run_case, run_case_injected, Inject, Stats};

/// Cases per test: `PROPTEST_CASES`, or `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

thread_local! {
    /// Set while proptest runs and shrinks cases on this thread.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Keeps the panics of the cases proptest tries while shrinking (hundreds)
/// out of the output: only the minimal failing case is reported, by
/// [`check`].  Other threads' panics are shown as usual.
fn quiet_panics_while_shrinking() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// Runs `cases` cases of up to `max_ops` operations for `format`; returns
/// the summed statistics.
fn check(format: Format, default_cases: u32, max_ops: usize) -> Stats {
    let mut runner = TestRunner::new(Config {
        cases: cases(default_cases),
        // Shrinking re-runs whole cases; a few thousand steps are plenty.
        max_shrink_iters: 4096,
        // The minimal failing case is printed; no files are written.
        failure_persistence: None,
        ..Config::default()
    });
    let total = RefCell::new(Stats::default());
    quiet_panics_while_shrinking();
    QUIET.with(|q| q.set(true));
    let result = runner.run(&ops::case(format, max_ops), |case: Case| {
        let session = Session::new(format);
        let s = run_case(&session, &case);
        total.borrow_mut().add(&s);
        Ok(())
    });
    QUIET.with(|q| q.set(false));
    let total = total.into_inner();
    if let Err(e) = result {
        panic!("{format:?}: {e}");
    }
    eprintln!("{format:?}: {total:?}");
    total
}

/// The generated sequences do real work: most operations apply.
fn assert_meaningful(s: &Stats) {
    assert!(s.populated > 0 && s.mapped > 0 && s.unmapped > 0, "{s:?}");
    assert!(s.skipped * 2 < s.ops, "most operations were skipped: {s:?}");
}

#[test]
fn ept_lifecycles_match_the_model() {
    assert_meaningful(&check(Format::Ept, 384, 48));
}

#[test]
fn rvi_lifecycles_match_the_model() {
    assert_meaningful(&check(Format::Rvi, 384, 48));
}

/// A fixed case: two leaf tables' worth of pages, mapped, queried, walked,
/// iterated, removed.
fn fixed_case() -> Case {
    let region = |page| Target::In { region: 0, page };
    Case {
        ops: vec![
            Op::Populate {
                base: Base::Low { page: 0 },
                pages: 600,
            },
            Op::MapRange {
                region: 0,
                first: 0,
                count: 600,
                skip: 0,
                map: Mapping {
                    pfn: 0x1000,
                    prot: Prot::all(),
                    attr: MTRR_WB,
                },
            },
            Op::Query { at: region(5) },
            Op::Walk {
                at: region(513),
                depth: 3,
            },
            Op::Iterate {
                at: region(0),
                pages: 600,
            },
            Op::Remove { region: 0 },
        ],
        free_populated: false,
    }
}

/// The checks can fail: a fault injected into the tables or into the
/// model's expectations after the mapping is reported, naming what differs;
/// without one, the same case passes.
#[test]
fn injected_faults_are_caught() {
    for format in [Format::Ept, Format::Rvi] {
        let session = Session::new(format);
        let s = run_case(&session, &fixed_case());
        assert_eq!((s.skipped, s.mapped, s.unmapped), (0, 600, 600), "{s:?}");
        drop(session);
        for (fault, expect) in [
            (Inject::FlipLeafBit { bit: 1 }, "leaf entry of 0x0 is"),
            (Inject::UnlinkTable, "entries[1] = 0x0, expected"),
            (Inject::ModelExtraEntry, "leaf entry of 0x0 is"),
        ] {
            quiet_panics_while_shrinking();
            QUIET.with(|q| q.set(true));
            let r = catch_unwind(AssertUnwindSafe(|| {
                let session = Session::new(format);
                run_case_injected(&session, &fixed_case(), Some((1, fault)));
            }));
            QUIET.with(|q| q.set(false));
            let err = r.expect_err("the injected fault went unnoticed");
            let msg = err
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            assert!(
                msg.contains(expect),
                "{format:?} {fault:?}: expected a report containing {expect:?}, got {msg:?}"
            );
        }
    }
}
