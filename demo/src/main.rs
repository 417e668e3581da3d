//! The project's main job: a bhyve-like guest-memory lifecycle driven
//! through the library, inside the userland kernel stand-in
//! (`vmm-gpt-harness`), for the Intel EPT and AMD nested-paging formats.
//!
//! For each format it does what illumos' `vmm_vm.c` does over a guest's
//! life: map the guest's RAM and MMIO regions (populate), fault every RAM
//! page and the device pages in (walk + `map_at`, or iterate + `map_at`),
//! run a few dirty-tracking rounds while "hardware" dirties random pages,
//! then unmap and vacate every region and free the GPT.  Every step is
//! checked (the counts must add up) and timed, and a short report is
//! printed: tables per level, pages mapped, kernel memory, time per phase.
//!
//! Usage: `vmm-gpt-demo [--ram-gib N] [--rounds N] [--format ept|rvi|both]`
//! (defaults: 4 GiB of RAM, 3 rounds, both formats).

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vmm_gpt::abi::LEVEL1;
use vmm_gpt_harness::{
    kmem, layout, Format, Gpt, Prot, Region, Rng, GIB, KIB, LIB, MIB, MTRR_UC, MTRR_WB, PAGE,
};

struct Phase {
    name: String,
    time: Duration,
    units: u64,
}

struct Report {
    format: &'static str,
    phases: Vec<Phase>,
    tables: [usize; 4],
    mapped: u64,
    peak_bytes: u64,
    dirty_found: u64,
    dirty_set: u64,
}

fn timed<T>(phases: &mut Vec<Phase>, name: &str, units: u64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    phases.push(Phase {
        name: name.to_string(),
        time: t.elapsed(),
        units,
    });
    r
}

/// Counts the distinct tables at each level that the populated regions use,
/// by walking the hardware tables once per 2 MiB.
fn count_tables(gpt: &Gpt, regions: &[Region]) -> [usize; 4] {
    let mut seen: [HashSet<usize>; 4] = Default::default();
    for r in regions {
        let mut gpa = r.gpa & !(2 * MIB - 1);
        while gpa < r.gpa + r.len {
            let (entries, _) = gpt.walk(gpa, LEVEL1);
            for (lvl, e) in entries.iter().enumerate() {
                if !e.is_null() {
                    seen[lvl].insert(*e as usize & !0xfff);
                }
            }
            gpa += 2 * MIB;
        }
    }
    [seen[0].len(), seen[1].len(), seen[2].len(), seen[3].len()]
}

fn run(format: &'static str, ram: u64, rounds: u32) -> Result<Report, String> {
    let fmt = if format == "ept" {
        Format::Ept
    } else {
        Format::Rvi
    };
    let base = kmem();
    // SAFETY: a format from the stand-in; none is installed now.
    if !unsafe { (LIB.init)(fmt.pte_impl()) } {
        return Err(format!("{format}: vmm_gpt_init refused the format"));
    }
    let regions = layout(ram);
    let mut phases = Vec::new();
    let gpt = timed(&mut phases, "alloc", 1, || Gpt::alloc(&LIB));

    let total: u64 = regions.iter().map(|r| r.len / PAGE).sum();
    timed(&mut phases, "populate regions", total, || {
        for r in &regions {
            gpt.populate(r.gpa, r.len);
        }
    });

    // Fault RAM in as vmspace_populate does (iterate + map_at), device pages
    // one by one as faults do (walk + is_mapped + map_at).
    let mut next_pfn: u64 = 0x10_0000;
    let mut mapped = 0u64;
    let ram_pages: u64 = regions
        .iter()
        .filter(|r| !r.mmio)
        .map(|r| r.len / PAGE)
        .sum();
    timed(
        &mut phases,
        "fault in RAM (iterate + map_at)",
        ram_pages,
        || {
            for r in regions.iter().filter(|r| !r.mmio) {
                gpt.for_each_leaf(r.gpa, r.len, |_, pte| {
                    if pte.map_at(next_pfn, Prot::all(), MTRR_WB) {
                        mapped += 1;
                    }
                    next_pfn += 1;
                });
            }
        },
    );
    let mmio_pages: u64 = regions
        .iter()
        .filter(|r| r.mmio)
        .map(|r| r.len / PAGE)
        .sum();
    timed(
        &mut phases,
        "fault in MMIO (walk + map_at)",
        mmio_pages,
        || {
            for r in regions.iter().filter(|r| r.mmio) {
                let mut gpa = r.gpa;
                while gpa < r.gpa + r.len {
                    // The leaf exists: the region is populated.
                    let leaf = gpt.leaf(gpa).expect("a populated region's leaf");
                    if !leaf.is_mapped_bare()
                        && leaf.map_at(0xfe_0000 + (gpa >> 12), Prot::RW, MTRR_UC)
                    {
                        mapped += 1;
                    }
                    gpa += PAGE;
                }
            }
        },
    );
    if mapped != ram_pages + mmio_pages {
        return Err(format!(
            "{format}: mapped {mapped} pages, expected {}",
            ram_pages + mmio_pages
        ));
    }
    let tables = count_tables(&gpt, &regions);
    let peak_bytes = kmem().live_bytes - base.live_bytes;

    // Dirty tracking: the "hardware" dirties random RAM pages, then
    // vmspace_bits_operate-style passes find and clear them.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ram_regions: Vec<&Region> = regions.iter().filter(|r| !r.mmio).collect();
    let (mut dirty_set, mut dirty_found) = (0u64, 0u64);
    let dirty_bit = fmt.bit_dirty() | fmt.bit_accessed();
    for round in 1..=rounds {
        let mut set = HashSet::new();
        for _ in 0..(ram_pages / 16).max(1) {
            let r = ram_regions[(rng.next() % ram_regions.len() as u64) as usize];
            let gpa = r.gpa + (rng.next() % (r.len / PAGE)) * PAGE;
            // A mapped leaf, dirtied with an atomic OR as the MMU does.
            gpt.leaf(gpa).expect("a mapped page").hw_set(dirty_bit);
            set.insert(gpa);
        }
        dirty_set += set.len() as u64;
        let mut found = 0u64;
        timed(
            &mut phases,
            &format!("dirty round {round}: scan + reset"),
            ram_pages,
            || {
                for r in regions.iter().filter(|r| !r.mmio) {
                    gpt.for_each_leaf(r.gpa, r.len, |_, pte| {
                        if pte.query_dirty() && pte.reset_dirty(false) {
                            found += 1;
                        }
                    });
                }
            },
        );
        if found != set.len() as u64 {
            return Err(format!(
                "{format}: round {round}: dirtied {} pages, found {found}",
                set.len()
            ));
        }
        dirty_found += found;
    }

    let unmapped = timed(&mut phases, "unmap + vacate regions", total, || {
        let mut n = 0;
        for r in &regions {
            n += gpt.unmap_region(r.gpa, r.len) as u64;
            gpt.vacate(r.gpa, r.len);
        }
        n
    });
    if unmapped != mapped {
        return Err(format!(
            "{format}: unmapped {unmapped} pages, mapped {mapped}"
        ));
    }
    timed(&mut phases, "free", 1, || gpt.free());
    // SAFETY: no GPT is left.
    unsafe { (LIB.fini)() };
    let left = kmem().live_allocs - base.live_allocs;
    if left != 0 {
        return Err(format!("{format}: {left} kernel allocations leaked"));
    }
    Ok(Report {
        format,
        phases,
        tables,
        mapped,
        peak_bytes,
        dirty_found,
        dirty_set,
    })
}

fn print(r: &Report, ram: u64) {
    println!("== {} ({} GiB of RAM) ==", r.format, ram / GIB);
    let names: Vec<String> = layout(ram)
        .iter()
        .map(|g| format!("{} {:#x}+{:#x}", g.name, g.gpa, g.len))
        .collect();
    println!("regions: {}", names.join(", "));
    println!(
        "tables: LEVEL4 {}, LEVEL3 {}, LEVEL2 {}, LEVEL1 {}; pages mapped {}",
        r.tables[0], r.tables[1], r.tables[2], r.tables[3], r.mapped
    );
    println!(
        "kernel memory: {} KiB ({:.1} KiB per GiB mapped); dirty pages set {}, found {}",
        r.peak_bytes / KIB,
        r.peak_bytes as f64 / KIB as f64 / (r.mapped * PAGE) as f64 * GIB as f64,
        r.dirty_set,
        r.dirty_found
    );
    println!("{:<36} {:>12} {:>12}", "phase", "time", "ns/page");
    for p in &r.phases {
        println!(
            "{:<36} {:>10.3}ms {:>12.1}",
            p.name,
            p.time.as_secs_f64() * 1e3,
            p.time.as_nanos() as f64 / p.units.max(1) as f64
        );
    }
    println!();
}

fn main() -> ExitCode {
    let mut ram = 4 * GIB;
    let mut rounds = 3;
    let mut formats = vec!["ept", "rvi"];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1);
        match (args[i].as_str(), val) {
            ("--ram-gib", Some(v)) => ram = v.parse::<u64>().unwrap_or(4).max(1) * GIB,
            ("--rounds", Some(v)) => rounds = v.parse().unwrap_or(3),
            ("--format", Some(v)) if v == "both" => {}
            ("--format", Some(v)) if v == "ept" || v == "rvi" => {
                formats = vec![if v == "ept" { "ept" } else { "rvi" }]
            }
            _ => {
                eprintln!("usage: vmm-gpt-demo [--ram-gib N] [--rounds N] [--format ept|rvi|both]");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    for f in formats {
        match run(f, ram, rounds) {
            Ok(r) => print(&r, ram),
            Err(e) => {
                eprintln!("vmm-gpt-demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
