//! The checker is checked: sequences that make one implementation differ
//! on purpose (the fault-injection operations) must be reported, at the
//! operation where the difference becomes observable; a panic of one side
//! must come back from an isolated run as a crash at its operation; shrink
//! must boil an injected difference in a long sequence down to the few
//! operations it needs; and the generators must make valid sequences that
//! pass, with the hostile values they are meant to make.  An implementation
//! that differs from the original on a hostile input only (a wrapping
//! dirty-tracking range, an aliasing unmap) is reported at that operation;
//! and the premise of the DEBUG/non-DEBUG pairing holds: every DEBUG build
//! linked panics on a wrapping iteration range (so DEBUG pairs do not get
//! one), every non-DEBUG build returns with the original's iterator.

use std::env;
use std::panic::{catch_unwind, AssertUnwindSafe};

use vmm_gpt::abi::{vmm_gpt_iter_t, vmm_gpt_t};
use vmm_gpt_difftest::impls::{self, Api};
use vmm_gpt_difftest::regions;
use vmm_gpt_difftest::{
    from_bytes, from_bytes_with, generate, generate_with, program, reference_available, run,
    run_isolated, shrink, Divergence, Fill, Format, GenConfig, Op, Outcome, Prot, Side, GIB,
    GPA_END, MIB, PAGE,
};

type TestResult = Result<(), String>;
type Test = (&'static str, fn() -> TestResult);

/// Bit numbers of the dirty bit and of a "present" bit (EPT read, AMD
/// valid) of each format.
fn dirty_bit(f: Format) -> u32 {
    f.pte_impl().vpi_bit_dirty.trailing_zeros()
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
        Op::Fill(Fill {
            addr: 2 * MIB + 4 * PAGE,
            len: 16 * PAGE,
            prot: Prot::all(),
            attr: 6,
            skip: 0,
            pfn: 0x1234,
        }),
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
                prot: Prot::all(),
                attr: 6,
                pfn: 0x42,
            },
        ];
        match run_isolated(f, &ops) {
            Outcome::Crashed {
                op_index: Some(3),
                side: Some(Side::Lib),
                status,
            } => println!("    {f:?}: the library crashed in op #3: {status}"),
            other => {
                return Err(format!(
                    "{f:?}: expected a crash of the library in op #3, got {other:?}"
                ))
            }
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
        let assert_only = seed % 4 < 2;
        let cfg = cfgs[(seed % 3) as usize]
            .clone()
            .with_assert_only(assert_only);
        let ops = generate_with(seed, 4000, f, &cfg);
        check_regions(&ops, assert_only).map_err(|e| format!("seed {seed}: {e}"))?;
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
        let assert_only = n % 2 == 1;
        let (_, ops) = from_bytes_with(&data, &GenConfig::FUZZ.with_assert_only(assert_only));
        check_regions(&ops, assert_only).map_err(|e| format!("input {n}: {e}"))?;
    }
    Ok(())
}

/// Whether an iteration range is one that only the original's ASSERTs
/// reject: unaligned, or wrapping past 2^64.
fn assert_only_range(addr: u64, len: u64) -> bool {
    !addr.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || addr.checked_add(len).is_none()
}

/// Replays the populates and vacates of a sequence: every populate below
/// 2^48, ending (unless it wraps) at most at 2^48, the pages it counts a
/// new region (or none); every vacate of a live region, every other vacate
/// valid for the model of the original's tables; no fault injection; no
/// ASSERT-only range (iteration, populate, vacate) unless `assert_only`.
fn check_regions(ops: &[Op], assert_only: bool) -> TestResult {
    let mut regions = regions::Regions::default();
    let mut tables = regions::Tables::default();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Track { addr, len, .. }
            | Op::UnmapRegion { addr, len }
            | Op::Fill(Fill { addr, len, .. })
            | Op::VacateRange { addr, len }
                if !assert_only && assert_only_range(addr, len) =>
            {
                return Err(format!("op #{i}: an ASSERT-only range: {op:?}"))
            }
            Op::Populate { addr, len } => {
                let aligned = addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE);
                let end = addr.wrapping_add(len);
                let pages = if end <= addr {
                    None
                } else {
                    Some((addr & !(PAGE - 1), end & !(PAGE - 1)))
                };
                let ok = addr < GPA_END
                    && (aligned || assert_only)
                    && pages.is_none_or(|(from, to)| {
                        end <= GPA_END && (from == to || regions.fits(from, to - from))
                    });
                if !ok {
                    return Err(format!("op #{i}: invalid {op:?} (live: {regions:x?})"));
                }
                tables.populate(addr, len);
                if let Some((from, to)) = pages.filter(|(f, t)| f < t) {
                    regions.insert(from, to - from);
                }
            }
            Op::Vacate { addr } => match regions.length_at(addr) {
                Some(len) => {
                    let plan = regions::vacate_check(&tables, &regions, addr, len, false)
                        .ok_or_else(|| format!("op #{i}: {op:?} not valid for the model"))?;
                    tables.vacate_apply(&plan);
                    regions::depopulate(&mut regions, &plan);
                    if regions.length_at(addr).is_some() {
                        return Err(format!("op #{i}: {op:?} left its region"));
                    }
                }
                None => return Err(format!("op #{i}: {op:?} of no live region")),
            },
            Op::VacateRange { addr, len } => {
                let plan = regions::vacate_check(&tables, &regions, addr, len, !assert_only)
                    .ok_or_else(|| format!("op #{i}: {op:?} not valid for the model"))?;
                tables.vacate_apply(&plan);
                regions::depopulate(&mut regions, &plan);
            }
            Op::Realloc => {
                regions.clear();
                tables.clear();
            }
            Op::InjectFlipBit { .. } | Op::InjectExtraPopulate { .. } => {
                return Err(format!("op #{i}: a fault injection"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// What the generator makes of the hostile values it is meant to make,
/// counted over generated sequences.
#[derive(Default, Debug)]
struct Hostile {
    walk_aliases: [u64; 4],
    walk_top: u64,
    unmap_aliases: u64,
    fault_aliases: u64,
    leaf_aliases: u64,
    track_aliases: u64,
    track_empty: u64,
    track_past: u64,
    track_crossing: u64,
    unmap_region_aliases: u64,
    unmap_region_empty: u64,
    wrap_to_zero: u64,
    wrap_to_small: u64,
    wrap_below_start: u64,
    unaligned: u64,
}

impl Hostile {
    fn count(&mut self, ops: &[Op]) {
        let mut live: Vec<(u64, u64)> = Vec::new();
        for op in ops {
            let end = live.iter().map(|&(a, l)| a + l).max().unwrap_or(0);
            match *op {
                Op::Populate { addr, len } if addr.checked_add(len).is_some_and(|e| e > addr) => {
                    live.push((addr, len))
                }
                Op::Vacate { addr } => live.retain(|&(a, _)| a != addr),
                Op::Realloc => live.clear(),
                Op::Walk { gpa, depth } if gpa >= GPA_END => {
                    self.walk_aliases[depth as usize] += 1;
                    if gpa >= 0xffff << 48 {
                        self.walk_top += 1;
                    }
                }
                Op::Unmap { gpa } if gpa >= GPA_END => self.unmap_aliases += 1,
                Op::Fault { gpa, .. } if gpa >= GPA_END => self.fault_aliases += 1,
                Op::IsMapped { gpa, .. }
                | Op::HwSetAd { gpa, .. }
                | Op::ResetAccessed { gpa, .. }
                | Op::ResetDirty { gpa, .. }
                | Op::Query { gpa }
                    if gpa >= GPA_END =>
                {
                    self.leaf_aliases += 1
                }
                Op::Track { addr, len, .. } | Op::UnmapRegion { addr, len } => {
                    let track = matches!(op, Op::Track { .. });
                    match addr.checked_add(len) {
                        _ if !addr.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) => {
                            self.unaligned += 1
                        }
                        Some(_) if len == 0 && track => self.track_empty += 1,
                        Some(_) if len == 0 => self.unmap_region_empty += 1,
                        Some(e) if track && addr < GPA_END && e > GPA_END => {
                            self.track_crossing += 1
                        }
                        Some(_) if addr >= GPA_END && track => self.track_aliases += 1,
                        Some(_) if addr >= GPA_END => self.unmap_region_aliases += 1,
                        Some(_) if track && live.is_empty() => {}
                        Some(_) if track && addr >= end => self.track_past += 1,
                        Some(_) => {}
                        None if addr.wrapping_add(len) == 0 => self.wrap_to_zero += 1,
                        None if addr.wrapping_add(len) < addr.saturating_sub(16 * PAGE) => {
                            self.wrap_to_small += 1
                        }
                        None => self.wrap_below_start += 1,
                    }
                }
                _ => {}
            }
        }
    }
}

/// The generator makes every kind of hostile value, the ASSERT-only ones
/// (wrapping, unaligned) only when asked to.
fn hostile_values_generated() -> TestResult {
    for assert_only in [false, true] {
        let mut h = Hostile::default();
        over_seeds(assert_only, |ops| h.count(ops));
        println!("    ASSERT-only inputs {assert_only}: {h:?}");
        let always = [
            (
                "walk aliases",
                h.walk_aliases.iter().copied().min().unwrap_or(0),
            ),
            ("walks at the top", h.walk_top),
            ("unmap aliases", h.unmap_aliases),
            ("fault aliases", h.fault_aliases),
            ("leaf-operation aliases", h.leaf_aliases),
            ("tracking ranges above 2^48", h.track_aliases),
            ("empty tracking ranges", h.track_empty),
            ("tracking ranges past the regions", h.track_past),
            ("tracking ranges crossing 2^48", h.track_crossing),
            ("unmap_region ranges above 2^48", h.unmap_region_aliases),
            ("empty unmap_region ranges", h.unmap_region_empty),
        ];
        let only = [
            ("ranges wrapping to 0", h.wrap_to_zero),
            ("ranges wrapping to a small value", h.wrap_to_small),
            ("ranges wrapping to below their start", h.wrap_below_start),
            ("unaligned ranges", h.unaligned),
        ];
        enough(&always, &only, 10, assert_only, &h)?;
    }
    Ok(())
}

/// Calls `count` on 8 generated sequences of 50000 operations, with or
/// without the inputs only the original's ASSERTs reject.
fn over_seeds(assert_only: bool, mut count: impl FnMut(&[Op])) {
    for seed in 0..8u64 {
        let cfg = GenConfig::DEFAULT.with_assert_only(assert_only);
        let f = Format::ALL[(seed % 2) as usize];
        count(&generate_with(seed, 50_000, f, &cfg));
    }
}

/// Each kind of `always` counted at least `min` times in [`over_seeds`];
/// each kind of `only` (inputs only the original's ASSERTs reject) as
/// often when `assert_only`, else never.
fn enough(
    always: &[(&str, u64)],
    only: &[(&str, u64)],
    min: u64,
    assert_only: bool,
    counts: &dyn std::fmt::Debug,
) -> TestResult {
    for &(what, n) in always.iter().chain(only.iter().filter(|_| assert_only)) {
        if n < min {
            return Err(format!("only {n} {what} in 400000 operations: {counts:?}"));
        }
    }
    for &(what, n) in only {
        if !assert_only && n != 0 {
            return Err(format!("{n} {what}, ASSERT-only, for a DEBUG pair"));
        }
    }
    Ok(())
}

/// The degenerate populates and vacates generated, by kind.
#[derive(Default, Debug)]
struct Degenerate {
    empty_populates: u64,
    wrapping_populates: u64,
    unaligned_populates: u64,
    part_vacates: u64,
    spanning_vacates: u64,
    gap_start_vacates: u64,
    empty_vacates: u64,
    unaligned_vacates: u64,
}

impl Degenerate {
    fn count(&mut self, ops: &[Op]) {
        let mut regions = regions::Regions::default();
        let mut tables = regions::Tables::default();
        for op in ops {
            match *op {
                Op::Populate { addr, len } => {
                    let end = addr.wrapping_add(len);
                    if !assert_only_range(addr, len) && len > 0 {
                        regions.insert(addr, len);
                    } else if len == 0 {
                        self.empty_populates += 1;
                    } else if end < addr {
                        self.wrapping_populates += 1;
                    } else {
                        self.unaligned_populates += 1;
                        let (from, to) = (addr & !(PAGE - 1), end & !(PAGE - 1));
                        if from < to {
                            regions.insert(from, to - from);
                        }
                    }
                    tables.populate(addr, len);
                }
                Op::Vacate { addr } => {
                    let len = regions.length_at(addr).expect("a live region");
                    let plan = tables.vacate_plan(addr, len);
                    tables.vacate_apply(&plan);
                    regions::depopulate(&mut regions, &plan);
                }
                Op::VacateRange { addr, len } => {
                    if len == 0 {
                        self.empty_vacates += 1;
                    } else if assert_only_range(addr, len) {
                        self.unaligned_vacates += 1;
                    } else if regions.containing(addr).is_none() {
                        self.gap_start_vacates += 1;
                    } else if regions.populated_in(addr, len) < len {
                        self.spanning_vacates += 1;
                    } else {
                        self.part_vacates += 1;
                    }
                    let plan = tables.vacate_plan(addr, len);
                    tables.vacate_apply(&plan);
                    regions::depopulate(&mut regions, &plan);
                }
                Op::Realloc => {
                    regions.clear();
                    tables.clear();
                }
                _ => {}
            }
        }
    }
}

/// The generator makes every kind of degenerate populate and vacate, the
/// unaligned ones only when asked to.
fn degenerate_values_generated() -> TestResult {
    for assert_only in [false, true] {
        let mut d = Degenerate::default();
        over_seeds(assert_only, |ops| d.count(ops));
        println!("    ASSERT-only inputs {assert_only}: {d:?}");
        let always = [
            ("empty populates", d.empty_populates),
            ("wrapping populates", d.wrapping_populates),
            ("vacates of a part of a region", d.part_vacates),
            ("vacates across gaps", d.spanning_vacates),
            ("vacates from a gap", d.gap_start_vacates),
            ("empty vacates", d.empty_vacates),
        ];
        let only = [
            ("unaligned populates", d.unaligned_populates),
            ("unaligned vacates", d.unaligned_vacates),
        ];
        enough(&always, &only, 5, assert_only, &d)?;
    }
    Ok(())
}

/// An implementation under test made of the DEBUG original (`ref_*`) with
/// some of its functions replaced by `doctor`, marked non-DEBUG so that it
/// is compared with the non-DEBUG original (a separate copy).
fn doctored(name: &'static str, doctor: impl FnOnce(&mut Api)) -> &'static Api {
    let r = impls::reference().expect("the original");
    let mut api = Api {
        name,
        domain: impls::LIB_DOMAIN,
        debug: false,
        ..*r
    };
    doctor(&mut api);
    let api: &'static Api = Box::leak(Box::new(api));
    // Kept reachable (LeakSanitizer, in the sanitizer configuration).
    DOCTORED.lock().unwrap_or_else(|p| p.into_inner()).push(api);
    api
}

static DOCTORED: std::sync::Mutex<Vec<&'static Api>> = std::sync::Mutex::new(Vec::new());

/// The length of `[addr, addr + len)` with its end clamped to the last page
/// below 2^64 if it wraps.
fn clamped(addr: u64, len: u64) -> u64 {
    match addr.checked_add(len) {
        Some(_) => len,
        None => !(PAGE - 1) - addr,
    }
}

/// A plausible wrong "fix" of a wrapping range: clamp its end to the last
/// page below 2^64 instead of wrapping it (then the original's code).
unsafe extern "C" fn clamping_iter_init(
    iter: *mut vmm_gpt_iter_t,
    gpt: *mut vmm_gpt_t,
    addr: u64,
    len: u64,
) {
    let r = impls::reference().expect("the original");
    // SAFETY: the caller's iterator and GPT; a range that does not wrap.
    unsafe { (r.iter_init)(iter, gpt, addr, clamped(addr, len)) }
}

/// The same for `unmap_region`.
unsafe extern "C" fn clamping_unmap_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64) -> usize {
    let r = impls::reference().expect("the original");
    // SAFETY: the caller's GPT; a range that does not wrap.
    unsafe { (r.unmap_region)(gpt, addr, clamped(addr, len)) }
}

/// A plausible wrong "hardening": no unmapping at or above 2^48.
unsafe extern "C" fn alias_blind_unmap(gpt: *mut vmm_gpt_t, gpa: u64) -> bool {
    if gpa >= GPA_END {
        return false;
    }
    let r = impls::reference().expect("the original");
    // SAFETY: the caller's GPT.
    unsafe { (r.unmap)(gpt, gpa) }
}

/// An implementation that differs from the non-DEBUG original on a hostile
/// input only is reported at that operation: a dirty-tracking range that
/// wraps (from an alias of a mapped page at the top of the space to 4 KiB)
/// by the iterator's state, an `unmap_region` that wraps (to 0) and an
/// unmap of an alias by their results.
fn hostile_divergence_reported() -> TestResult {
    let clamping = doctored("clamping iter_init", |api| {
        api.iter_init = clamping_iter_init;
        api.unmap_region = clamping_unmap_region;
    });
    let blind = doctored("alias-blind unmap", |api| api.unmap = alias_blind_unmap);
    let gpa = 2 * MIB + 6 * PAGE;
    let top_alias = (0xffff << 48) | gpa;
    let result = (|| {
        for f in Format::ALL {
            // Both pass the base sequence and the hostile op the other
            // differs on.
            for api in [clamping, blind] {
                impls::select(api);
                let mut ops = mapped_region();
                ops.push(Op::Walk {
                    gpa: top_alias,
                    depth: 3,
                });
                expect_pass(f, &ops).map_err(|e| format!("{}: {e}", api.name))?;
            }
            impls::select(clamping);
            let mut ops = mapped_region();
            ops.push(Op::Track {
                addr: top_alias,
                len: PAGE.wrapping_sub(top_alias),
                reset: Some(false),
            });
            expect_divergence(f, &ops, 2, "iterator (addr, end, current)")?;
            let mut ops = mapped_region();
            ops.push(Op::UnmapRegion {
                addr: top_alias,
                len: 0u64.wrapping_sub(top_alias),
            });
            expect_divergence(f, &ops, 2, "returned 14 (library) vs 0 (original)")?;

            impls::select(blind);
            let mut ops = mapped_region();
            ops.push(Op::Unmap {
                gpa: (1 << 48) | gpa,
            });
            expect_divergence(f, &ops, 2, "returned false (library) vs true (original)")?;
        }
        Ok(())
    })();
    impls::select(&impls::LIB);
    result
}

/// What the library once did: a vacate starting where no leaf
/// table is skips ahead to the first one (the original does nothing
/// below the first level missing at the start).
unsafe extern "C" fn gap_skipping_vacate(gpt: *mut vmm_gpt_t, addr: u64, len: u64) {
    let r = impls::reference().expect("the original");
    let end = addr.wrapping_add(len);
    let mut a = addr;
    while a < end {
        let mut e = [std::ptr::null_mut(); 4];
        // SAFETY: the caller's GPT; `e` has the 4 entries a walk fills.
        unsafe { (r.walk)(gpt, a, e.as_mut_ptr(), 3) };
        if !e[3].is_null() {
            break;
        }
        a += PAGE;
    }
    // SAFETY: the caller's GPT and a part of its range.
    unsafe { (r.vacate_region)(gpt, a, end - a) }
}

/// The degenerate populates and vacates: an implementation whose vacate
/// differs from the original's traversal only where the range starts in a
/// gap is reported at that vacate; and a hand-made sequence of every kind
/// (empty, wrapping and unaligned populates; vacates of a part of a
/// region, from a gap, across gaps, unaligned) passes with the library,
/// the model of the original's tables agreeing throughout.
fn degenerate_ops() -> TestResult {
    let skipping = doctored("gap-skipping vacate", |api| {
        api.vacate_region = gap_skipping_vacate
    });
    let region = Op::Populate {
        addr: 4 * MIB,
        len: 16 * PAGE,
    };
    let from_gap = Op::VacateRange {
        addr: 2 * MIB,
        len: 2 * MIB + 16 * PAGE,
    };
    let result: TestResult = (|| {
        for f in Format::ALL {
            impls::select(skipping);
            expect_pass(f, std::slice::from_ref(&region))?;
            expect_divergence(
                f,
                &[region.clone(), from_gap.clone()],
                1,
                "after vmm_gpt_vacate_region: the library holds 1 table pages, the original 4",
            )?;
        }
        Ok(())
    })();
    impls::select(&impls::LIB);
    result?;

    let g = GIB;
    let ops = vec![
        // Only tables: empty, wrapping (to below the start, to 4 KiB).
        Op::Populate {
            addr: 3 * g + 5 * PAGE,
            len: 0,
        },
        Op::Populate {
            addr: 7 * g,
            len: 0u64.wrapping_sub(PAGE),
        },
        Op::Populate {
            addr: 9 * g,
            len: PAGE.wrapping_sub(9 * g),
        },
        // Regions sharing those tables; a part of one, then the rest.
        Op::Populate {
            addr: 3 * g,
            len: 64 * PAGE,
        },
        Op::VacateRange {
            addr: 3 * g + 8 * PAGE,
            len: 8 * PAGE,
        },
        Op::Vacate { addr: 3 * g },
        Op::Vacate {
            addr: 3 * g + 16 * PAGE,
        },
        // Two regions with a gap of whole leaf tables, vacated together;
        // then from a gap into a region.
        Op::Populate {
            addr: 5 * g,
            len: 2 * MIB,
        },
        Op::Populate {
            addr: 5 * g + 8 * MIB,
            len: 4 * MIB,
        },
        Op::VacateRange {
            addr: 5 * g,
            len: 12 * MIB,
        },
        Op::Populate {
            addr: 6 * g + 4 * MIB,
            len: 16 * PAGE,
        },
        Op::VacateRange {
            addr: 6 * g,
            len: 4 * MIB + 16 * PAGE,
        },
        Op::VacateRange {
            addr: 6 * g + 4 * MIB,
            len: 0,
        },
        Op::Vacate {
            addr: 6 * g + 4 * MIB,
        },
        Op::Check,
    ];
    for f in Format::ALL {
        expect_pass(f, &ops)?;
    }
    // Unaligned ones: for a non-DEBUG pair; a DEBUG pair skips them.
    let unaligned = vec![
        Op::Populate {
            addr: 8 * g + 0x800,
            len: 16 * PAGE,
        },
        Op::Populate {
            addr: 8 * g + 2 * MIB - 0x100,
            len: 0x200,
        },
        Op::VacateRange {
            addr: 8 * g + 3 * PAGE + 0x10,
            len: 2 * PAGE,
        },
        Op::Check,
    ];
    for f in Format::ALL {
        match run(f, &unaligned) {
            Ok(s) if s.skipped == 3 => {}
            other => {
                return Err(format!(
                    "{f:?}: the DEBUG pair ran unaligned ones: {other:?}"
                ))
            }
        }
        if let Some(kobj) = impls::kernel_object() {
            impls::select(kobj);
            let r = run(f, &unaligned);
            impls::select(&impls::LIB);
            match r {
                Ok(s) if s.skipped == 0 && s.odd_populates == 2 && s.odd_vacates == 1 => {
                    println!("    {f:?}: the non-DEBUG kernel object agrees: {s:?}")
                }
                other => return Err(format!("{f:?}: non-DEBUG kernel object: {other:?}")),
            }
        }
    }
    Ok(())
}

/// Runs `f` in a forked child (stdout and stderr to /dev/null): whether it
/// ended by a signal (a kernel panic aborts), else its exit status.
fn in_child(f: impl FnOnce() -> i32) -> Result<i32, i32> {
    // SAFETY: this test program is single-threaded; the child only calls
    // the implementations and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: redirects the child's output; a path literal.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
        }
        let code = f();
        // SAFETY: ends the child without the parent's atexit handlers.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) {
        Err(libc::WTERMSIG(status))
    } else {
        Ok(libc::WEXITSTATUS(status))
    }
}

/// The premise of the pairing: each DEBUG build linked (the library in the
/// test profile, the DEBUG original, the DEBUG kernel object) panics on an
/// iteration range that wraps past 2^64, which is why DEBUG pairs do not
/// get one; each non-DEBUG build (the non-DEBUG original, kernel object,
/// staticlib) returns, with the iterator the original sets up (its end
/// wrapped) and nothing to iterate.
fn debug_builds_assert_on_wrapping_ranges() -> TestResult {
    let apis = [
        Some(&impls::LIB),
        impls::reference(),
        impls::reference_ndebug(),
        impls::kernel_object(),
        impls::kernel_object_debug(),
        impls::staticlib(),
    ];
    let _lock = vmm_gpt_difftest::exclusive();
    for api in apis.into_iter().flatten() {
        for (addr, len) in [
            (0xffff_ffff_ffff_f000, 0x2000),
            (
                0xffff_0000_0020_5000,
                0u64.wrapping_sub(0xffff_0000_0020_5000),
            ),
            (2 * MIB + 6 * PAGE, 0u64.wrapping_sub(PAGE)),
        ] {
            let outcome = in_child(|| {
                // SAFETY: a fresh child: install the format, allocate,
                // populate and map a region, then iterate the wrapping
                // range; exit 0 if the iterator is the original's
                // (non-DEBUG) and yields nothing.
                unsafe {
                    impls::ktest_kmem_set_domain(api.domain);
                    if !(api.init)(Format::Ept.pte_impl()) {
                        return 3;
                    }
                    let gpt = (api.alloc)();
                    (api.populate_region)(gpt, 2 * MIB, 16 * PAGE);
                    let mut it = vmm_gpt_harness::iter_zeroed();
                    (api.iter_init)(&mut it, gpt, addr, len);
                    let mut e = vmm_gpt_harness::iter_entry_zeroed();
                    let next = (api.iter_next)(&mut it, &mut e);
                    if it.vgi_addr != addr || it.vgi_end != addr.wrapping_add(len) || next {
                        return 2;
                    }
                    0
                }
            });
            let ok = match (api.debug, outcome) {
                (true, Err(sig)) => sig == libc::SIGABRT,
                (false, Ok(code)) => code == 0,
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "{} ({}): iter_init(0x{addr:x}, 0x{len:x}) ended {outcome:?} (Err: signal, \
                     Ok: 0 the original's iterator, 2 another)",
                    api.name,
                    if api.debug { "DEBUG" } else { "non-DEBUG" }
                ));
            }
        }
        println!(
            "    {}: {}",
            api.name,
            if api.debug {
                "panics"
            } else {
                "returns, as the non-DEBUG original"
            }
        );
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
        ("hostile_values_generated", hostile_values_generated),
        ("hostile_divergence_reported", hostile_divergence_reported),
        ("degenerate_values_generated", degenerate_values_generated),
        ("degenerate_ops", degenerate_ops),
        (
            "debug_builds_assert_on_wrapping_ranges",
            debug_builds_assert_on_wrapping_ranges,
        ),
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
    // The generators' own tests need no implementation; every other one
    // runs the library against the original.
    const WITHOUT_ORIGINAL: [&str; 3] = [
        "generators_hold_up",
        "hostile_values_generated",
        "degenerate_values_generated",
    ];
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if !reference_available() && !WITHOUT_ORIGINAL.contains(name) {
            println!("checker: {name}: skipped (the original is not built: ILLUMOS_GATE unset)");
            skipped += 1;
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
    program::close("checker", passed, failed, skipped);
}
