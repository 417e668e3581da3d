//! `objcheck`: checks kernel objects and prints what they contain.
//!
//! ```text
//! objcheck [--original GATE] [--brief] [--harvest] OBJECT...
//! ```
//!
//! Checks each OBJECT against the vmm-gpt kernel object's rules (see the
//! library) and prints its report: sizes, relocation kinds, the frame of
//! every function, the call graph, the function symbols as fbt sees them,
//! the violations.  `--harvest` checks opt-in objects (`build.sh
//! --harvest`): the same rules, with the extension's export
//! (`exports-harvest.txt`) required beside the 21.  With `--original`, also compiles the original
//! `vmm_gpt.c` of that illumos-gate checkout with the illumos kernel flags
//! as far as the compiler (`$CC`, else gcc) takes them (non-DEBUG and
//! DEBUG), prints the flags it rejected and what the original breaks, and
//! everything side by side.  Exits 1 when an object breaks a rule (the
//! original's own violations do not count), 2 when it cannot be read.

use std::path::{Path, PathBuf};
use std::process::exit;

use vmm_gpt_objcheck::{check, compare, compile_original, kernel_cflags, Policy, Report, ORIGINAL};

fn usage() -> ! {
    eprintln!("usage: objcheck [--original ILLUMOS_GATE] [--brief] [--harvest] OBJECT...");
    exit(2);
}

fn main() {
    let mut original: Option<PathBuf> = None;
    let mut brief = false;
    let mut harvest = false;
    let mut objects = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--original") => original = Some(args.next().unwrap_or_else(|| usage()).into()),
            Some("--brief") => brief = true,
            Some("--harvest") => harvest = true,
            Some("-h" | "--help") => usage(),
            Some(s) if s.starts_with("--") => usage(),
            _ => objects.push(PathBuf::from(a)),
        }
    }
    if objects.is_empty() {
        usage();
    }

    let policy = if harvest {
        Policy::kernel_object_harvest()
    } else {
        Policy::kernel_object()
    };
    let mut reports: Vec<(String, Report)> = Vec::new();
    let mut failed = false;
    for obj in &objects {
        let report = check(obj, &policy).unwrap_or_else(|e| {
            eprintln!("objcheck: {}: {e}", obj.display());
            exit(2);
        });
        if brief {
            print!("{}", report.summary());
            for v in &report.violations {
                println!("  {v}");
            }
        } else {
            println!("{}", report.full());
        }
        failed |= !report.passed();
        let name = obj.file_name().map_or_else(
            || obj.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        reports.push((name, report));
    }

    if let Some(gate) = original {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let includes = [root.join("include"), root.join("harness/include")];
        let dir = std::env::temp_dir().join(format!("objcheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            eprintln!("objcheck: {}: {e}", dir.display());
            exit(2);
        });
        let mut policy = policy.clone();
        policy.allow_c_file_symbols = true;
        let flags = kernel_cflags();
        println!("the original: {} ({})", ORIGINAL, flags.version);
        println!("  flags: {}", flags.accepted.join(" "));
        if !flags.rejected.is_empty() {
            println!(
                "  rejected by {} and left out: {}",
                flags.cc,
                flags.rejected.join(" ")
            );
        }
        for (debug, name) in [(false, "original"), (true, "original DEBUG")] {
            let out = dir.join(if debug {
                "vmm_gpt.debug.o"
            } else {
                "vmm_gpt.o"
            });
            if let Err(e) = compile_original(&gate, &includes, debug, &[], &out) {
                eprintln!("objcheck: {e}");
                exit(2);
            }
            match check(&out, &policy) {
                Ok(r) => {
                    println!("  {name}: breaks {}", r.rules_broken());
                    for v in &r.violations {
                        println!("    {v}");
                    }
                    reports.push((name.to_string(), r));
                }
                Err(e) => {
                    eprintln!("objcheck: {e}");
                    exit(2);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "  (upstream gcc drops the frame of leaf functions that do not touch the stack and \
             may schedule a load above `push %rbp`; illumos' gcc keeps every frame: see \
             FRAME_CFLAGS in the library)"
        );
        println!("\nside by side (the original compiled by gcc with the illumos kernel flags):");
        let cols: Vec<(&str, &Report)> = reports.iter().map(|(n, r)| (n.as_str(), r)).collect();
        print!("{}", compare(&cols));
    }

    if failed {
        eprintln!("objcheck: FAILED: see the violations above");
        exit(1);
    }
}
