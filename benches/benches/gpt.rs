//! Criterion benchmarks: every workload of `vmm_gpt_benches::Workload`, the
//! library (`library`) and, when built with `ILLUMOS_GATE`, the original
//! (`original`) in the same process, the same kernel stand-in and the same
//! PTE format (EPT); then every `HarvestWorkload`, one function per `Scan`
//! (`original loop`, `library loop`, `harvest`, `locked CAS`), when the
//! opt-in staticlib is linked (`VMM_GPT_HARVEST_STATICLIB` at build time).
//! Only the operations are timed; each iteration's setup and teardown are
//! not.
//!
//! `cargo bench -p vmm-gpt-benches [-- FILTER]`; the paired comparison is
//! the `bench-summary` binary.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vmm_gpt_benches::{harvest_missing, Bench, Format, HarvestWorkload, Scale, Workload};

fn workloads(c: &mut Criterion) {
    // `cargo bench` passes --bench; without it (`cargo test --benches`)
    // criterion runs each benchmark once, as a test: small sizes then.
    let scale = if std::env::args().any(|a| a == "--bench") {
        Scale::FULL
    } else {
        Scale::SMALL
    };
    let mut b = Bench::new(Format::Ept, scale);
    for w in Workload::ALL {
        let mut group = c.benchmark_group(w.name(b.scale()));
        group.throughput(Throughput::Elements(w.units(b.scale())));
        for which in 0..b.apis().len() {
            let name = ["library", "original"][which];
            group.bench_function(name, |bencher| {
                bencher.iter_custom(|iters| (0..iters).map(|_| b.run(w, which).elapsed).sum())
            });
        }
        group.finish();
        // The large mapped guests of the random lookups are not needed
        // any more.
        b.drop_guests();
    }
    if let Some(why) = harvest_missing() {
        eprintln!("harvest workloads skipped: {why}");
        return;
    }
    for w in HarvestWorkload::ALL {
        let mut group = c.benchmark_group(w.name(b.scale()));
        group.throughput(Throughput::Elements(w.units(b.scale())));
        for scan in b.scans() {
            group.bench_function(scan.name(), |bencher| {
                bencher
                    .iter_custom(|iters| (0..iters).map(|_| b.run_harvest(w, scan).elapsed).sum())
            });
        }
        group.finish();
        b.drop_guests();
    }
}

criterion_group! {
    name = benches;
    // Runs take milliseconds, and their untimed setup (populating and
    // mapping a GiB, say) more: few samples, a short measurement.  The
    // command line (--sample-size, --measurement-time) overrides.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = workloads
}
criterion_main!(benches);
