//! The kernel object that `illumos-build/build.sh` made passes every check,
//! and what it contains, side by side with the original.
//!
//! - `VMM_GPT_KERNEL_OBJECT`: the object (`target/kernel/vmm_gpt.o`;
//!   scripts/test.sh builds it and sets this).  Unset: skipped, unless
//!   `VMM_GPT_REQUIRE_KERNEL_OBJECT=1` (CI), which makes that a failure.
//! - `VMM_GPT_KERNEL_OBJECT_DEBUG`: the DEBUG variant
//!   (`target/kernel/vmm_gpt.debug.o`), checked too when set.
//! - `ILLUMOS_GATE`: the original `vmm_gpt.c` is compiled by gcc with the
//!   illumos kernel flags (non-DEBUG and DEBUG) and shown beside them.
//!
//! The reports (frames, call graph, violations) are printed: this test has
//! no harness, so its output is always shown.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use vmm_gpt_objcheck::{check, compare, compile_original, tools, Policy, Report, Rule};

struct Outcome {
    passed: u32,
    failed: u32,
    skipped: u32,
}

impl Outcome {
    fn record(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                println!("ok {name}");
                self.passed += 1;
            }
            Err(e) => {
                println!("FAIL {name}: {e}");
                self.failed += 1;
            }
        }
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Checks one object; prints its report.
fn check_object(obj: &Path) -> Result<Report, String> {
    if !obj.is_file() {
        return Err(format!(
            "{} does not exist: run illumos-build/build.sh",
            obj.display()
        ));
    }
    let r = check(obj, &Policy::kernel_object())?;
    println!("{}", r.full());
    if r.passed() {
        Ok(r)
    } else {
        Err(format!(
            "{} breaks {} rule(s): {}",
            obj.display(),
            r.violations.len(),
            r.violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

/// The checker catches a problem in the real object too: one of its local
/// functions made global (as a missing `objcopy --keep-global-symbols`
/// would leave it).
fn globalized_local_is_rejected(obj: &Path, report: &Report) -> Result<(), String> {
    let local = report
        .functions
        .iter()
        .find(|f| !f.global)
        .ok_or("the object has no local function")?;
    let bad = Path::new(env!("CARGO_TARGET_TMPDIR")).join("globalized_local.o");
    let objcopy = env::var("VMM_GPT_OBJCOPY").unwrap_or_else(|_| "objcopy".into());
    let out = Command::new(&objcopy)
        .arg(format!("--globalize-symbol={}", local.name))
        .arg(obj)
        .arg(&bad)
        .output()
        .map_err(|e| format!("cannot run {objcopy}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{objcopy} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let r = check(&bad, &Policy::kernel_object())?;
    let hit = r
        .violations
        .iter()
        .any(|v| v.rule == Rule::Export && v.message.contains(&local.name));
    if hit && r.violations.iter().all(|v| v.rule == Rule::Export) {
        println!("  rejected as expected: {}", r.violations[0]);
        Ok(())
    } else {
        Err(format!(
            "globalizing {} was not reported as an export violation: {:?}",
            local.name, r.violations
        ))
    }
}

/// The original, compiled as kernel code, non-DEBUG and DEBUG.
fn originals(gate: &Path) -> Result<Vec<(String, Report)>, String> {
    let root = root();
    let includes = [root.join("include"), root.join("ctest/include")];
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("original");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut policy = Policy::kernel_object();
    policy.allow_c_file_symbols = true; // ctfconvert gives it CTF data
    let mut out = Vec::new();
    for (debug, name) in [(false, "original"), (true, "original DEBUG")] {
        let obj = dir.join(if debug {
            "vmm_gpt.debug.o"
        } else {
            "vmm_gpt.o"
        });
        compile_original(gate, &includes, debug, &obj)?;
        let r = check(&obj, &policy)?;
        println!("== {name} ({})", obj.display());
        print!("{}", r.summary());
        for v in &r.violations {
            println!("  (the original) {v}");
        }
        println!();
        out.push((name.to_string(), r));
    }
    Ok(out)
}

fn main() {
    if env::args().any(|a| a == "--list") {
        return;
    }
    let mut o = Outcome {
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    let require = env::var("VMM_GPT_REQUIRE_KERNEL_OBJECT").is_ok_and(|v| v == "1");
    let Some(obj) = env_path("VMM_GPT_KERNEL_OBJECT") else {
        if require {
            println!(
                "FAIL kernel_object: VMM_GPT_REQUIRE_KERNEL_OBJECT=1 but VMM_GPT_KERNEL_OBJECT is \
                 not set: run illumos-build/build.sh and point it at target/kernel/vmm_gpt.o \
                 (scripts/test.sh does both)"
            );
            println!("kernel_object: 0 passed, 1 failed, 0 skipped");
            exit(1);
        }
        println!(
            "kernel_object: VMM_GPT_KERNEL_OBJECT unset (scripts/test.sh sets it after \
             illumos-build/build.sh): skipped"
        );
        println!("kernel_object: 0 passed, 0 failed, 1 skipped");
        return;
    };
    println!(
        "binutils: {} {} {}\n",
        tools::Tool::Readelf.program(),
        tools::Tool::Objdump.program(),
        tools::Tool::Cxxfilt.program()
    );

    let mut columns: Vec<(String, Report)> = Vec::new();
    match check_object(&obj) {
        Ok(r) => {
            o.record("kernel object passes every check", Ok(()));
            o.record(
                "a globalized local function in it is rejected",
                globalized_local_is_rejected(&obj, &r),
            );
            columns.push(("vmm_gpt.o".into(), r));
        }
        Err(e) => o.record("kernel object passes every check", Err(e)),
    }
    match env_path("VMM_GPT_KERNEL_OBJECT_DEBUG") {
        Some(dbg) => match check_object(&dbg) {
            Ok(r) => {
                o.record("DEBUG kernel object passes every check", Ok(()));
                columns.push(("vmm_gpt.debug.o".into(), r));
            }
            Err(e) => o.record("DEBUG kernel object passes every check", Err(e)),
        },
        None => {
            println!("skip DEBUG kernel object: VMM_GPT_KERNEL_OBJECT_DEBUG unset");
            o.skipped += 1;
        }
    }

    match env_path("ILLUMOS_GATE") {
        Some(gate) => match originals(&gate) {
            Ok(orig) => {
                columns.extend(orig);
                o.record(
                    "the original compiled as kernel code, for comparison",
                    Ok(()),
                );
            }
            Err(e) => o.record(
                "the original compiled as kernel code, for comparison",
                Err(e),
            ),
        },
        None => {
            println!("skip comparison with the original: ILLUMOS_GATE unset");
            o.skipped += 1;
        }
    }
    if columns.len() > 1 {
        println!(
            "\nside by side (the original: gcc {}):",
            vmm_gpt_objcheck::KERNEL_CFLAGS.join(" ")
        );
        let cols: Vec<(&str, &Report)> = columns.iter().map(|(n, r)| (n.as_str(), r)).collect();
        println!("{}", compare(&cols));
    }

    println!(
        "kernel_object: {} passed, {} failed, {} skipped",
        o.passed, o.failed, o.skipped
    );
    if o.failed > 0 {
        exit(1);
    }
}
