//! The paired comparison: every workload run by the library and the
//! original in alternating order (library, original, original, library,
//! library, original, ...), so that drift in the machine's speed (another
//! process on the other core, frequency changes) falls on both alike, and a
//! table of the medians: time per unit of each, the median of the paired
//! ratios library/original, and kernel memory (bytes from `kmem_zalloc`)
//! per populated GiB of each.
//!
//! ```text
//! cargo run --release -p vmm-gpt-benches --bin bench-summary -- \
//!     [--pairs N] [--format ept|rvi] [--small] [--only SUBSTRING]... \
//!     [--scan original|library|harvest|cas]...
//! ```
//!
//! `benches/summary.sh` runs it built with the static relocation model,
//! as the kernel object is (benches/README.md: the recorded runs).
//!
//! Then the harvest workloads ([`HarvestWorkload`]), when the opt-in
//! staticlib is linked (`VMM_GPT_HARVEST_STATICLIB` at build time;
//! summary.sh builds it): each pair runs the four [`Scan`]s (original's
//! loop, library's loop, `vmm_gpt_harvest_dirty`, the locked-CAS floor) in
//! alternating order, and the table gives their medians per page and the
//! medians of the paired ratios of the harvest to each.
//!
//! Defaults: 10 pairs per workload (after one unpaired warm-up run of
//! each), the EPT format, the recorded sizes.  `--only` keeps the
//! workloads whose name contains one of the substrings; `--scan` runs only
//! those scans of the harvest workloads (for profiling one of them).
//! Build with `ILLUMOS_GATE` set to compare with the original; without it
//! only the library runs.  Release builds only: a debug build measures the library's
//! debug checks and an unoptimized harness.

use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use vmm_gpt_benches::{
    harvest_missing, median, Bench, Format, HarvestWorkload, Sample, Scale, Scan, Workload,
};

struct Options {
    pairs: usize,
    format: Format,
    scale: Scale,
    only: Vec<String>,
    /// The scans of the harvest workloads to run (empty: all).
    scans: Vec<Scan>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: bench-summary [--pairs N] [--format ept|rvi] [--small] [--only SUBSTRING]... \
         [--scan original|library|harvest|cas]..."
    );
    ExitCode::from(2)
}

fn options() -> Option<Options> {
    let mut o = Options {
        pairs: 10,
        format: Format::Ept,
        scale: Scale::FULL,
        only: Vec::new(),
        scans: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pairs" => o.pairs = args.next()?.parse().ok().filter(|&n| n > 0)?,
            "--format" => {
                o.format = match args.next()?.as_str() {
                    "ept" => Format::Ept,
                    "rvi" => Format::Rvi,
                    _ => return None,
                }
            }
            "--small" => o.scale = Scale::SMALL,
            "--only" => o.only.push(args.next()?),
            "--scan" => o.scans.push(match args.next()?.as_str() {
                "original" => Scan::OriginalLoop,
                "library" => Scan::LibraryLoop,
                "harvest" => Scan::Harvest,
                "cas" => Scan::LockedCas,
                _ => return None,
            }),
            _ => return None,
        }
    }
    Some(o)
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The CPU's model name and the number of CPUs, from /proc/cpuinfo.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    format!("{model}, {cpus} CPUs")
}

/// The commit the tree is at, with `+` if it has changes.
fn revision() -> String {
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match out(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = out(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{rev}{}", if dirty { "+" } else { "" })
        }
        None => "unknown".to_string(),
    }
}

/// The medians of one workload.
struct Row {
    name: String,
    unit: &'static str,
    /// Median ns per unit, per implementation.
    ns: Vec<f64>,
    /// Median of the paired ratios library/original, with the smallest
    /// and largest.
    ratio: Option<(f64, f64, f64)>,
    /// Kernel bytes per populated GiB, per implementation.
    kmem: Vec<f64>,
}

fn measure(b: &mut Bench, w: Workload, pairs: usize) -> Row {
    let n = b.apis().len();
    // One unpaired run of each first: page faults of first use, caches.
    for i in 0..n {
        b.run(w, i);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); n];
    let mut ratios = Vec::new();
    for p in 0..pairs {
        // library, original, then original, library, ...
        let order: Vec<usize> = if p % 2 == 0 {
            (0..n).collect()
        } else {
            (0..n).rev().collect()
        };
        let mut pair = vec![None; n];
        for i in order {
            pair[i] = Some(b.run(w, i));
        }
        if let [Some(lib), Some(orig)] = pair[..] {
            ratios.push(lib.elapsed.as_secs_f64() / orig.elapsed.as_secs_f64());
        }
        for (i, s) in pair.into_iter().enumerate() {
            samples[i].extend(s);
        }
    }
    b.drop_guests();
    let ns = samples
        .iter()
        .map(|v| median(&v.iter().map(Sample::ns_per_unit).collect::<Vec<_>>()))
        .collect();
    let kmem = samples
        .iter()
        .map(|v| median(&v.iter().map(Sample::kmem_per_gib).collect::<Vec<_>>()))
        .collect();
    let ratio = (!ratios.is_empty()).then(|| {
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (median(&ratios), lo, hi)
    });
    Row {
        name: w.name(b.scale()),
        unit: w.unit(),
        ns,
        ratio,
        kmem,
    }
}

/// The medians of one harvest workload.
struct HarvestRow {
    name: String,
    /// Median ns per page, per scan of [`Scan::ALL`] (NaN: not run).
    ns: [f64; 4],
    /// Medians of the paired ratios, with the smallest and largest:
    /// harvest/original loop, harvest/library loop, harvest/locked CAS,
    /// library loop/original loop.
    ratios: [Option<(f64, f64, f64)>; 4],
}

/// The (numerator, denominator) scans of [`HarvestRow::ratios`].
const HARVEST_RATIOS: [(Scan, Scan); 4] = [
    (Scan::Harvest, Scan::OriginalLoop),
    (Scan::Harvest, Scan::LibraryLoop),
    (Scan::Harvest, Scan::LockedCas),
    (Scan::LibraryLoop, Scan::OriginalLoop),
];

fn index(scan: Scan) -> usize {
    Scan::ALL.iter().position(|&s| s == scan).expect("a scan")
}

/// The median of `v` with its smallest and largest; None for none.
fn spread(v: &[f64]) -> Option<(f64, f64, f64)> {
    (!v.is_empty()).then(|| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (median(v), lo, hi)
    })
}

fn measure_harvest(b: &mut Bench, w: HarvestWorkload, pairs: usize, only: &[Scan]) -> HarvestRow {
    let scans: Vec<Scan> = b
        .scans()
        .into_iter()
        .filter(|s| only.is_empty() || only.contains(s))
        .collect();
    // One unpaired run of each first: it also maps the regions.
    for &s in &scans {
        b.run_harvest(w, s);
    }
    let mut ns: [Vec<f64>; 4] = Default::default();
    let mut ratios: [Vec<f64>; 4] = Default::default();
    for p in 0..pairs {
        // The scans in order, then in reverse order, ...
        let order: Vec<Scan> = if p % 2 == 0 {
            scans.clone()
        } else {
            scans.iter().rev().copied().collect()
        };
        let mut secs = [None; 4];
        for s in order {
            let sample = b.run_harvest(w, s);
            ns[index(s)].push(sample.ns_per_unit());
            secs[index(s)] = Some(sample.elapsed.as_secs_f64());
        }
        for (r, (num, den)) in HARVEST_RATIOS.iter().enumerate() {
            if let (Some(n), Some(d)) = (secs[index(*num)], secs[index(*den)]) {
                ratios[r].push(n / d);
            }
        }
    }
    b.drop_guests();
    HarvestRow {
        name: w.name(b.scale()),
        ns: ns.map(|v| median(&v)),
        ratios: ratios.map(|v| spread(&v)),
    }
}

/// The load averages of /proc/loadavg (1, 5 and 15 minutes).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

fn ns(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn main() -> ExitCode {
    let Some(o) = options() else {
        return usage();
    };
    if cfg!(debug_assertions) {
        eprintln!("bench-summary: a debug build; run it with --release for numbers that count");
    }
    let mut b = Bench::new(o.format, o.scale);
    let names: Vec<&str> = b.apis().iter().map(|a| a.name).collect();
    let both = names.len() == 2;
    let selected: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| o.only.is_empty() || o.only.iter().any(|s| w.name(b.scale()).contains(s)))
        .collect();

    let selected_harvest: Vec<HarvestWorkload> = HarvestWorkload::ALL
        .into_iter()
        .filter(|w| o.only.is_empty() || o.only.iter().any(|s| w.name(b.scale()).contains(s)))
        .collect();

    let load_before = load();
    let mut rows = Vec::new();
    for w in selected {
        eprintln!("bench-summary: {} ...", w.name(b.scale()));
        rows.push(measure(&mut b, w, o.pairs));
    }
    let mut harvest_rows = Vec::new();
    let mut harvest_skipped = None;
    if b.scans().is_empty() {
        if !selected_harvest.is_empty() {
            let why = harvest_missing().unwrap_or("no scans");
            eprintln!("bench-summary: harvest workloads skipped: {why}");
            harvest_skipped = Some(why);
        }
    } else {
        for w in selected_harvest {
            eprintln!("bench-summary: {} ...", w.name(b.scale()));
            harvest_rows.push(measure_harvest(&mut b, w, o.pairs, &o.scans));
        }
    }
    drop(b);

    println!(
        "bench-summary {} · {} format · {} pairs per workload · {} · load {} before, {} after · tree {}",
        today(),
        match o.format {
            Format::Ept => "EPT",
            Format::Rvi => "AMD (RVI)",
        },
        o.pairs,
        machine(),
        load_before,
        load(),
        revision()
    );
    if !both {
        println!("(built without ILLUMOS_GATE: the library alone)");
    }
    if let Some(why) = harvest_skipped {
        println!("(harvest workloads skipped: {why})");
    }
    println!();
    if !rows.is_empty() {
        if both {
            println!(
                "| workload | unit | library ns/unit | original ns/unit | library/original (median of pairs) \
                 | range of pairs | library kmem B/GiB | original kmem B/GiB |"
            );
            println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        } else {
            println!("| workload | unit | library ns/unit | library kmem B/GiB |");
            println!("| --- | --- | ---: | ---: |");
        }
        for r in &rows {
            if let (true, Some((med, lo, hi))) = (both, r.ratio) {
                println!(
                    "| {} | {} | {} | {} | **{med:.2}** | {lo:.2}–{hi:.2} | {:.0} | {:.0} |",
                    r.name,
                    r.unit,
                    ns(r.ns[0]),
                    ns(r.ns[1]),
                    r.kmem[0],
                    r.kmem[1]
                );
            } else {
                println!(
                    "| {} | {} | {} | {:.0} |",
                    r.name,
                    r.unit,
                    ns(r.ns[0]),
                    r.kmem[0]
                );
            }
        }
    }
    if !harvest_rows.is_empty() {
        let r = |v: Option<(f64, f64, f64)>, range: bool| match v {
            Some((med, lo, hi)) if range => format!("**{med:.3}** ({lo:.3}–{hi:.3})"),
            Some((med, _, _)) => format!("{med:.3}"),
            None => "–".to_string(),
        };
        let t = |v: f64| {
            if v.is_nan() {
                "–".to_string()
            } else {
                format!("{v:.3}")
            }
        };
        println!();
        println!(
            "| harvest workload | original loop ns/page | library loop ns/page | harvest ns/page \
             | locked CAS ns/page | harvest/original loop (median, range of pairs) \
             | harvest/library loop | harvest/locked CAS (median, range of pairs) \
             | library/original loop |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for h in &harvest_rows {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                h.name,
                t(h.ns[0]),
                t(h.ns[1]),
                t(h.ns[2]),
                t(h.ns[3]),
                r(h.ratios[0], true),
                r(h.ratios[1], false),
                r(h.ratios[2], true),
                r(h.ratios[3], false),
            );
        }
    }
    ExitCode::SUCCESS
}
