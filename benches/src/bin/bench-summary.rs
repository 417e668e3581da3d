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
//!     [--pairs N] [--format ept|rvi] [--small] [--only SUBSTRING]...
//! ```
//!
//! `benches/summary.sh` runs it built with the static relocation model,
//! as the kernel object is (benches/README.md: the recorded runs).
//!
//! Defaults: 10 pairs per workload (after one unpaired warm-up run of
//! each), the EPT format, the recorded sizes.  `--only` keeps the
//! workloads whose name contains one of the substrings.  Build with
//! `ILLUMOS_GATE` set to compare with the original; without it only the
//! library runs.  Release builds only: a debug build measures the library's
//! debug checks and an unoptimized harness.

use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use vmm_gpt_benches::{median, Bench, Format, Sample, Scale, Workload};

struct Options {
    pairs: usize,
    format: Format,
    scale: Scale,
    only: Vec<String>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: bench-summary [--pairs N] [--format ept|rvi] [--small] [--only SUBSTRING]..."
    );
    ExitCode::from(2)
}

fn options() -> Option<Options> {
    let mut o = Options {
        pairs: 10,
        format: Format::Ept,
        scale: Scale::FULL,
        only: Vec::new(),
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

    let mut rows = Vec::new();
    for w in selected {
        eprintln!("bench-summary: {} ...", w.name(b.scale()));
        rows.push(measure(&mut b, w, o.pairs));
    }
    drop(b);

    println!(
        "bench-summary {} · {} format · {} pairs per workload · {} · tree {}",
        today(),
        match o.format {
            Format::Ept => "EPT",
            Format::Rvi => "AMD (RVI)",
        },
        o.pairs,
        machine(),
        revision()
    );
    if !both {
        println!("(built without ILLUMOS_GATE: the library alone)");
    }
    println!();
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
    ExitCode::SUCCESS
}
