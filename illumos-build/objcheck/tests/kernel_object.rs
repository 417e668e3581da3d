//! The kernel object that `illumos-build/build.sh` made passes every check,
//! and what it contains, side by side with the original.
//!
//! - `VMM_GPT_KERNEL_OBJECT`: the object (`target/kernel/vmm_gpt.o`;
//!   scripts/test.sh builds it and sets this).  Unset: skipped, unless
//!   `VMM_GPT_REQUIRE_KERNEL_OBJECT=1` (CI), which makes that a failure.
//! - `VMM_GPT_KERNEL_OBJECT_DEBUG`: the DEBUG variant
//!   (`target/kernel/vmm_gpt.debug.o`), checked too when set.
//! - `VMM_GPT_KERNEL_OBJECT_HARVEST` and `_HARVEST_DEBUG`: the opt-in
//!   objects of `build.sh --harvest`, checked under `--harvest`'s policy
//!   (the 21 exports and `vmm_gpt_harvest_dirty`); the default policy must
//!   reject exactly that export.  Unset: skipped, unless
//!   `VMM_GPT_REQUIRE_HARVEST=1` (CI).
//! - `ILLUMOS_GATE`: the original `vmm_gpt.c` is compiled by gcc with the
//!   illumos kernel flags (non-DEBUG and DEBUG) and checked as the
//!   baseline: compiled as illumos' gcc would (every frame kept,
//!   `FRAME_CFLAGS`) it breaks no rule but its own bounded recursion, and
//!   with the plain flags only what upstream gcc explains (frameless leaf
//!   functions, a load scheduled above `push %rbp`).  Then everything is
//!   shown side by side.
//!
//! Every rule is strict for the objects, the function-symbol rules
//! (`retpoline`, `fbt-entry`, `fbt-return`, `shared-address`, `names`,
//! `stack-protector`) included: an object that breaks one fails, with its
//! violations listed rule by rule.
//!
//! The reports (frames, call graph, fbt view, violations) are printed: this
//! test has no harness, so its output is always shown.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use std::collections::BTreeMap;

use vmm_gpt_objcheck::{
    check, compare, compile_original, fbt, kernel_cflags, tools, Policy, Report, Rule, FRAME_CFLAGS,
};

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

/// Checks one object; prints its measurements (the violations come with
/// the verdict, rule by rule).
fn check_object(obj: &Path) -> Result<Report, String> {
    check_object_with(obj, &Policy::kernel_object())
}

/// [`check_object`] under `policy`.
fn check_object_with(obj: &Path, policy: &Policy) -> Result<Report, String> {
    if !obj.is_file() {
        return Err(format!(
            "{} does not exist: run illumos-build/build.sh",
            obj.display()
        ));
    }
    let r = check(obj, policy)?;
    println!("{}", r.details());
    Ok(r)
}

/// Ok if the report has no violation, else its violations rule by rule.
fn passes(r: &Report) -> Result<(), String> {
    if r.passed() {
        return Ok(());
    }
    let mut by: BTreeMap<Rule, Vec<&str>> = BTreeMap::new();
    for v in &r.violations {
        by.entry(v.rule).or_default().push(&v.message);
    }
    let mut s = format!(
        "{} breaks {} rule(s) ({}):",
        r.path.display(),
        by.len(),
        r.rules_broken()
    );
    for (rule, messages) in by {
        s.push_str(&format!("\n    [{rule}] x{}", messages.len()));
        for m in messages {
            s.push_str(&format!("\n      - {m}"));
        }
    }
    Err(s)
}

/// An opt-in object under the default policy: exactly one violation, the
/// `export` of `vmm_gpt_harvest_dirty` (the default objects must not have
/// it).
fn default_policy_rejects_extension(obj: &Path) -> Result<(), String> {
    let r = check(obj, &Policy::kernel_object())?;
    let v: Vec<String> = r.violations.iter().map(|v| v.to_string()).collect();
    if v.len() == 1
        && r.violations[0].rule == Rule::Export
        && v[0].contains("vmm_gpt_harvest_dirty")
    {
        Ok(())
    } else {
        Err(format!(
            "under the default policy {} should break only the export rule, for \
             vmm_gpt_harvest_dirty; it breaks: {v:?}",
            obj.display()
        ))
    }
}

/// The checker catches a problem in the real object too: one of its local
/// functions made global (as a missing `objcopy --keep-global-symbols`
/// would leave it) adds an `export` violation naming it, and nothing else.
fn globalized_local_is_rejected(obj: &Path, report: &Report) -> Result<(), String> {
    let shared: Vec<&String> = report.shared.iter().flatten().collect();
    let local = report
        .symbols
        .iter()
        .find(|f| !f.global && !shared.contains(&&f.demangled))
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
    let before: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    let new: Vec<_> = r
        .violations
        .iter()
        .filter(|v| !before.contains(&v.to_string()))
        .collect();
    match new.as_slice() {
        [v] if v.rule == Rule::Export && v.message.contains(&local.name) => {
            println!("  rejected as expected: {v}");
            Ok(())
        }
        _ => Err(format!(
            "globalizing {} did not add exactly one export violation naming it: {new:?}",
            local.name
        )),
    }
}

/// The original, compiled as kernel code, non-DEBUG and DEBUG, with the
/// illumos kernel flags as gcc takes them and `extra`.
fn originals(gate: &Path, extra: &[&str], tag: &str) -> Result<Vec<(String, Report)>, String> {
    let root = root();
    let includes = [root.join("include"), root.join("harness/include")];
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("original");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut policy = Policy::kernel_object();
    policy.allow_c_file_symbols = true; // ctfconvert gives it CTF data
    let mut out = Vec::new();
    for (debug, name) in [(false, "original"), (true, "original DEBUG")] {
        let obj = dir.join(format!(
            "vmm_gpt{tag}{}.o",
            if debug { ".debug" } else { "" }
        ));
        let command = compile_original(gate, &includes, debug, extra, &obj)?;
        let r = check(&obj, &policy)?;
        println!("== {name}{tag}: {command}");
        print!("{}", r.summary());
        for v in &r.violations {
            println!("  (the original) {v}");
        }
        println!();
        out.push((name.to_string(), r));
    }
    Ok(out)
}

/// The one rule the original breaks by its code: `vmm_gpt_node_next`
/// recurses (bounded by the four levels of the tree).
fn own_recursion(v: &vmm_gpt_objcheck::Violation) -> bool {
    v.rule == Rule::Recursion && v.message.starts_with("vmm_gpt_node_next calls itself")
}

/// Compiled as illumos' gcc would (every frame kept), the original breaks
/// no rule but its own recursion.
fn original_with_frames_passes(orig: &[(String, Report)]) -> Result<(), String> {
    let mut bad = Vec::new();
    for (name, r) in orig {
        if !r.violations.iter().any(own_recursion) {
            bad.push(format!(
                "{name}: vmm_gpt_node_next's recursion is not reported"
            ));
        }
        for v in r.violations.iter().filter(|v| !own_recursion(v)) {
            bad.push(format!("{name}: {v}"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the original (the baseline) breaks a rule: the rule or its heuristic is wrong:\n    {}",
            bad.join("\n    ")
        ))
    }
}

/// With the plain flags, the original breaks only what upstream gcc's code
/// generation explains: `fbt-entry` for a leaf function without a frame
/// (no push, no call, no stack use) and for a `push %rbp` that gcc's
/// scheduler moved below a few instructions that do not branch.
fn original_breaks_only_what_gcc_explains(orig: &[(String, Report)]) -> Result<(), String> {
    let mut bad = Vec::new();
    for (name, r) in orig {
        for v in r.violations.iter().filter(|v| !own_recursion(v)) {
            let explained = v.rule == Rule::FbtEntry
                && r.symbols.iter().any(|f| {
                    v.message.starts_with(&format!("{} ", f.demangled))
                        && match f.entry {
                            fbt::Entry::NoPush => r.functions.iter().any(|c| {
                                c.start == f.start
                                    && c.frame.bytes == 0
                                    && c.callees.is_empty()
                                    && c.external.is_empty()
                            }),
                            fbt::Entry::Late {
                                after_branch: false,
                                ..
                            } => true,
                            _ => false,
                        }
                });
            if !explained {
                bad.push(format!("{name}: {v}"));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the original breaks a rule beyond gcc's frameless leaves and scheduled prologues:\n    {}",
            bad.join("\n    ")
        ))
    }
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
            o.record("kernel object passes every check", passes(&r));
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
                o.record("DEBUG kernel object passes every check", passes(&r));
                columns.push(("vmm_gpt.debug.o".into(), r));
            }
            Err(e) => o.record("DEBUG kernel object passes every check", Err(e)),
        },
        None => {
            println!("skip DEBUG kernel object: VMM_GPT_KERNEL_OBJECT_DEBUG unset");
            o.skipped += 1;
        }
    }

    // The opt-in objects (build.sh --harvest): every rule, with the
    // extension's export beside the 21 under `--harvest`'s policy, and the
    // default policy rejecting exactly that export.
    let require_harvest = env::var("VMM_GPT_REQUIRE_HARVEST").is_ok_and(|v| v == "1");
    for (var, name) in [
        ("VMM_GPT_KERNEL_OBJECT_HARVEST", "vmm_gpt.harvest.o"),
        (
            "VMM_GPT_KERNEL_OBJECT_HARVEST_DEBUG",
            "vmm_gpt.harvest.debug.o",
        ),
    ] {
        let Some(obj) = env_path(var) else {
            if require_harvest {
                o.record(
                    &format!("opt-in object {name}"),
                    Err(format!("VMM_GPT_REQUIRE_HARVEST=1 but {var} is not set")),
                );
            } else {
                println!("skip opt-in object {name}: {var} unset");
                o.skipped += 1;
            }
            continue;
        };
        match check_object_with(&obj, &Policy::kernel_object_harvest()) {
            Ok(r) => {
                o.record(
                    &format!("opt-in object {name} passes every check (22 exports)"),
                    passes(&r),
                );
                o.record(
                    &format!("opt-in object {name}: the default policy rejects its extra export"),
                    default_policy_rejects_extension(&obj),
                );
                columns.push((name.into(), r));
            }
            Err(e) => o.record(&format!("opt-in object {name} passes every check"), Err(e)),
        }
    }

    match env_path("ILLUMOS_GATE") {
        Some(gate) => {
            let flags = kernel_cflags();
            println!(
                "the original: {} with the illumos kernel flags; rejected by it and left out: {}\n",
                flags.version,
                if flags.rejected.is_empty() {
                    "none".to_string()
                } else {
                    flags.rejected.join(" ")
                }
            );
            match originals(&gate, FRAME_CFLAGS, ".frames") {
                Ok(orig) => o.record(
                    "the original with every frame kept (as illumos' gcc) breaks no rule but its own recursion",
                    original_with_frames_passes(&orig),
                ),
                Err(e) => o.record("the original compiles with every frame kept", Err(e)),
            }
            match originals(&gate, &[], "") {
                Ok(orig) => {
                    o.record(
                        "the original with the plain flags breaks only what upstream gcc explains",
                        original_breaks_only_what_gcc_explains(&orig),
                    );
                    columns.extend(orig);
                }
                Err(e) => o.record(
                    "the original compiles with the illumos kernel flags",
                    Err(e),
                ),
            }
        }
        None => {
            println!("skip the original as the baseline: ILLUMOS_GATE unset");
            o.skipped += 1;
        }
    }
    if columns.len() > 1 {
        println!(
            "\nside by side (the original: {} {}):",
            kernel_cflags().cc,
            kernel_cflags().accepted.join(" ")
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
