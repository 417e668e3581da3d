//! The checker is checked: sequences that make one implementation differ
//! on purpose (the fault-injection operations) must be reported, at the
//! operation where the difference becomes observable; a panic of one side
//! must come back from an isolated run as a crash at its operation; shrink
//! must boil an injected difference in a long sequence down to the few
//! operations it needs; and the generators must make valid sequences that
//! pass.

use std::env;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::exit;

use vmm_gpt_difftest::{
    from_bytes, generate, generate_with, reference_available, run, run_isolated, shrink,
    Divergence, Format, GenConfig, Op, Outcome, Side, GPA_END, PAGE,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

type TestResult = Result<(), String>;
type Test = (&'static str, fn() -> TestResult);

/// Bit numbers of the dirty bit and of a "present" bit (EPT read, AMD
/// valid) of each format.
fn dirty_bit(f: Format) -> u32 {
    f.imp().vpi_bit_dirty.trailing_zeros()
}

fn expect_divergence(f: Format, ops: &[Op], at: usize, contains: &str) -> TestResult {
    match run(f, ops) {
        Ok(s) => Err(format!(
            "{f:?}: no divergence reported ({} ops run, stats {s:?})",
            ops.len()
        )),
        Err(Divergence { op_index, what }) => {
            if op_index != at || !what.contains(contains) {
                return Err(format!(
                    "{f:?}: divergence at op #{op_index}: {what}\n  expected one at op #{at} \
                     mentioning {contains:?}"
                ));
            }
            println!("    {f:?}: reported at op #{op_index}: {what}");
            Ok(())
        }
    }
}

fn expect_pass(f: Format, ops: &[Op]) -> TestResult {
    match run(f, ops) {
        Ok(s) if s.skipped == 0 => Ok(()),
        Ok(s) => Err(format!(
            "{f:?}: {} operations skipped as invalid",
            s.skipped
        )),
        Err(d) => Err(format!("{f:?}: {d}")),
    }
}

/// A region of 16 pages at 2 MiB + 16 KiB, filled: what most tests start
/// from.
fn mapped_region() -> Vec<Op> {
    vec![
        Op::Populate {
            addr: 2 * MIB + 4 * PAGE,
            len: 16 * PAGE,
        },
        Op::Fill {
            addr: 2 * MIB + 4 * PAGE,
            len: 16 * PAGE,
            prot: 7,
            attr: 6,
            skip: 0,
            pfn: 0x1234,
        },
    ]
}

/// The base sequence passes: the differences below come from the
/// injections alone.
fn base_passes() -> TestResult {
    for f in Format::ALL {
        let mut ops = mapped_region();
        ops.push(Op::Query {
            gpa: 2 * MIB + 5 * PAGE,
        });
        expect_pass(f, &ops)?;
    }
    Ok(())
}

/// A flipped dirty bit in one side's leaf is seen by the next query of it.
fn flip_seen_by_query() -> TestResult {
    for f in Format::ALL {
        for side in [Side::Lib, Side::Ref] {
            let gpa = 2 * MIB + 5 * PAGE;
            let mut ops = mapped_region();
            ops.push(Op::InjectFlipBit {
                side,
                gpa,
                bit: dirty_bit(f),
            });
            ops.push(Op::Query { gpa });
            // The walk to the leaf, first thing in the query, compares it.
            expect_divergence(f, &ops, 3, "vmm_gpt_walk(0x205000, LEVEL1): LEVEL1 entry")?;
        }
    }
    Ok(())
}

/// A flipped bit no operation looks at is found by the whole-tree
/// comparison at the end.
fn flip_seen_by_final_tree_check() -> TestResult {
    for f in Format::ALL {
        let mut ops = mapped_region();
        ops.push(Op::InjectFlipBit {
            side: Side::Ref,
            gpa: 2 * MIB + 7 * PAGE,
            bit: 52,
        });
        ops.push(Op::Walk {
            gpa: 5 * GIB,
            depth: 3,
        });
        let n = ops.len();
        expect_divergence(f, &ops, n, "table trees differ")?;
    }
    Ok(())
}

/// ... and by the periodic one, long before the end.
fn flip_seen_by_periodic_check() -> TestResult {
    for f in Format::ALL {
        let mut ops = mapped_region();
        ops.push(Op::InjectFlipBit {
            side: Side::Lib,
            gpa: 2 * MIB + 19 * PAGE,
            bit: 61,
        });
        let walks = (0..3000u64).map(|i| Op::Walk {
            gpa: 64 * GIB + i * PAGE,
            depth: 3,
        });
        ops.extend(walks);
        match run(f, &ops) {
            Err(d) if d.op_index < ops.len() && d.what.contains("periodic check") => {
                println!("    {f:?}: reported at op #{}: {}", d.op_index, d.what);
            }
            other => {
                return Err(format!(
                    "{f:?}: expected a periodic check to fail: {other:?}"
                ))
            }
        }
    }
    Ok(())
}

/// A present bit flipped into an empty entry makes unmap_region count a
/// page on one side only.
fn flip_seen_by_unmap_count() -> TestResult {
    for f in Format::ALL {
        let ops = vec![
            Op::Populate {
                addr: GIB,
                len: 8 * PAGE,
            },
            Op::InjectFlipBit {
                side: Side::Lib,
                gpa: GIB + 3 * PAGE,
                bit: 0,
            },
            Op::UnmapRegion {
                addr: GIB,
                len: 8 * PAGE,
            },
        ];
        expect_divergence(f, &ops, 2, "vmm_gpt_unmap_region")?;
    }
    Ok(())
}

/// One reference too many on one side, in a leaf table that exists anyway
/// (no new table, so nothing shows at first), keeps that table alive when
/// the region is vacated: the table page counts differ right after.
fn extra_reference_seen_at_vacate() -> TestResult {
    for f in Format::ALL {
        for side in [Side::Lib, Side::Ref] {
            let region = Op::Populate {
                addr: 2 * MIB + 4 * PAGE,
                len: MIB,
            };
            let extra = Op::InjectExtraPopulate { side, gpa: 2 * MIB };
            // Nothing differs yet ...
            let before = vec![region.clone(), extra.clone()];
            match run(f, &before) {
                // (the final teardown notices, when it vacates the region)
                Err(d) if d.op_index == 2 => {}
                other => {
                    return Err(format!(
                        "{f:?} {side:?}: before the vacate: expected a difference only at the \
                         teardown, got {other:?}"
                    ))
                }
            }
            // ... until the vacate.
            let ops = vec![
                region,
                extra,
                Op::Vacate {
                    addr: 2 * MIB + 4 * PAGE,
                },
            ];
            expect_divergence(f, &ops, 2, "table pages")?;
        }
    }
    Ok(())
}

/// An extra populate that needs new tables shows at once.
fn extra_populate_seen_at_once() -> TestResult {
    for f in Format::ALL {
        let ops = vec![
            Op::Populate {
                addr: 0,
                len: 4 * PAGE,
            },
            Op::InjectExtraPopulate {
                side: Side::Ref,
                gpa: GPA_END - PAGE,
            },
            Op::Check,
        ];
        expect_divergence(f, &ops, 1, "table pages")?;
    }
    Ok(())
}

/// A kernel panic of one implementation (here the library's map_at
/// assertion, on an entry both sides had corrupted alike) ends an isolated
/// run as a crash at that operation.
fn panic_is_a_crash_outcome() -> TestResult {
    for f in Format::ALL {
        let gpa = 3 * GIB;
        let ops = vec![
            Op::Populate {
                addr: gpa,
                len: PAGE,
            },
            Op::InjectFlipBit {
                side: Side::Lib,
                gpa,
                bit: dirty_bit(f),
            },
            Op::InjectFlipBit {
                side: Side::Ref,
                gpa,
                bit: dirty_bit(f),
            },
            Op::Fault {
                gpa,
                prot: 7,
                attr: 6,
                pfn: 0x42,
            },
        ];
        match run_isolated(f, &ops) {
            Outcome::Crashed {
                op_index: Some(3),
                status,
            } => println!("    {f:?}: crashed in op #3: {status}"),
            other => return Err(format!("{f:?}: expected a crash in op #3, got {other:?}")),
        }
    }
    Ok(())
}

/// shrink reduces a long generated sequence with one injected difference
/// to the operations that make it.
fn shrink_finds_the_injection() -> TestResult {
    for f in Format::ALL {
        let mut ops = generate(7, 3000, f);
        // An address no generated region of this seed overlaps (checked:
        // the populate below must not be skipped, or nothing diverges).
        let gpa = 0x7654_3210_0000;
        let inject = [
            Op::Populate {
                addr: gpa,
                len: PAGE,
            },
            Op::InjectFlipBit {
                side: Side::Lib,
                gpa,
                bit: dirty_bit(f),
            },
        ];
        ops.splice(1500..1500, inject.iter().cloned());
        let small = shrink(f, &ops);
        println!("    {f:?}: {} operations shrunk to {:?}", ops.len(), small);
        if small.len() > 3 || !small.contains(&inject[1]) {
            return Err(format!("{f:?}: shrunk to {small:?}"));
        }
        if !run_isolated(f, &small).failed() {
            return Err(format!("{f:?}: the shrunk sequence passes: {small:?}"));
        }
    }
    Ok(())
}

/// Generated sequences are deterministic, valid (nothing skipped) and
/// pass.
fn generated_sequences_pass() -> TestResult {
    for f in Format::ALL {
        let a = generate(99, 5000, f);
        if a != generate(99, 5000, f) {
            return Err("generate is not deterministic".into());
        }
        if a.iter().any(|op| {
            matches!(
                op,
                Op::InjectFlipBit { .. } | Op::InjectExtraPopulate { .. }
            )
        }) {
            return Err("generate made a fault injection".into());
        }
        expect_pass(f, &a)?;
    }
    Ok(())
}

/// Any bytes make a valid sequence that passes.
fn from_bytes_sequences_pass() -> TestResult {
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0; 64], vec![0xff; 64], vec![1]];
    for n in 0..64 {
        let len = (n * 37) % 1500;
        let bytes = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        inputs.push(bytes);
    }
    for data in &inputs {
        let (f, ops) = from_bytes(data);
        if ops.iter().any(|op| {
            matches!(
                op,
                Op::InjectFlipBit { .. } | Op::InjectExtraPopulate { .. }
            )
        }) {
            return Err("from_bytes made a fault injection".into());
        }
        expect_pass(f, &ops).map_err(|e| format!("input of {} bytes: {e}", data.len()))?;
    }
    Ok(())
}

/// The generators themselves, on many more seeds and inputs than are
/// run: no arithmetic overflow (checked in test builds), no panic, no
/// injection, every populate a new valid region and every vacate a live
/// one.
fn generators_hold_up() -> TestResult {
    let cfgs = [GenConfig::DEFAULT, GenConfig::FUZZ, GenConfig::SMALL];
    for seed in 0..300u64 {
        let f = Format::ALL[(seed % 2) as usize];
        let ops = generate_with(seed, 4000, f, &cfgs[(seed % 3) as usize]);
        check_regions(&ops).map_err(|e| format!("seed {seed}: {e}"))?;
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for n in 0..3000usize {
        let data: Vec<u8> = (0..(n * 7) % 2048)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Small and large bytes too: the ends of every range.
                match n % 3 {
                    0 => x as u8,
                    1 => (x as u8) & 0x0f,
                    _ => (x as u8) | 0xf0,
                }
            })
            .collect();
        let (_, ops) = from_bytes(&data);
        check_regions(&ops).map_err(|e| format!("input {n}: {e}"))?;
    }
    Ok(())
}

/// Replays the populates and vacates of a sequence: every populate a new
/// valid region, every vacate a live one; no fault injection.
fn check_regions(ops: &[Op]) -> TestResult {
    let mut live: Vec<(u64, u64)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Populate { addr, len } => {
                let ok = addr % PAGE == 0
                    && len % PAGE == 0
                    && len > 0
                    && addr.checked_add(len).is_some_and(|e| e <= GPA_END)
                    && live.iter().all(|&(a, l)| addr + len <= a || a + l <= addr);
                if !ok {
                    return Err(format!("op #{i}: invalid {op:?} (live: {live:x?})"));
                }
                live.push((addr, len));
            }
            Op::Vacate { addr } => match live.iter().position(|&(a, _)| a == addr) {
                Some(k) => {
                    live.swap_remove(k);
                }
                None => return Err(format!("op #{i}: {op:?} of no live region")),
            },
            Op::Realloc => live.clear(),
            Op::InjectFlipBit { .. } | Op::InjectExtraPopulate { .. } => {
                return Err(format!("op #{i}: a fault injection"))
            }
            _ => {}
        }
    }
    Ok(())
}

fn main() {
    let tests: &[Test] = &[
        ("base_passes", base_passes),
        ("flip_seen_by_query", flip_seen_by_query),
        (
            "flip_seen_by_final_tree_check",
            flip_seen_by_final_tree_check,
        ),
        ("flip_seen_by_periodic_check", flip_seen_by_periodic_check),
        ("flip_seen_by_unmap_count", flip_seen_by_unmap_count),
        (
            "extra_reference_seen_at_vacate",
            extra_reference_seen_at_vacate,
        ),
        ("extra_populate_seen_at_once", extra_populate_seen_at_once),
        ("panic_is_a_crash_outcome", panic_is_a_crash_outcome),
        ("shrink_finds_the_injection", shrink_finds_the_injection),
        ("generated_sequences_pass", generated_sequences_pass),
        ("from_bytes_sequences_pass", from_bytes_sequences_pass),
        ("generators_hold_up", generators_hold_up),
    ];
    let filters: Vec<String> = env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if env::args().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    if !reference_available() {
        println!("checker: the original is not built (ILLUMOS_GATE unset): skipped");
        println!("checker: 0 passed, 0 failed, {} skipped", tests.len());
        return;
    }
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("checker: {name} ...");
        match catch_unwind(AssertUnwindSafe(test)) {
            Ok(Ok(())) => {
                println!("checker: {name}: ok");
                passed += 1;
            }
            Ok(Err(e)) => {
                println!("checker: {name}: FAILED: {e}");
                failed += 1;
            }
            Err(_) => {
                println!("checker: {name}: FAILED (panicked)");
                failed += 1;
            }
        }
    }
    println!("checker: {passed} passed, {failed} failed");
    if failed > 0 {
        exit(1);
    }
}
