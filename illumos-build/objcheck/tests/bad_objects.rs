//! The checker rejects bad objects, each with the right rule and message.
//!
//! `tests/c/kernel_like.c` defines the 21 exports of `vmm_gpt.o` with
//! trivial bodies that call kernel services; compiled with the illumos
//! kernel flags it passes.  Each test compiles it with one `BAD_*` macro or
//! one compiler flag that adds one kind of violation, and checks that the
//! checker reports exactly that rule, with the expected words.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmm_gpt_objcheck::{check, Policy, Report, Rule, KERNEL_CFLAGS};

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/kernel_like.c")
}

/// Compiles kernel_like.c with the kernel flags, then `extra` (which may
/// override them, e.g. `-msse2`).
fn compile(name: &str, extra: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_objects");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let out = dir.join(format!("{name}.o"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let o = Command::new(&cc)
        .args(KERNEL_CFLAGS)
        .args(["-Werror", "-Wno-unused-function"])
        .args(extra)
        .arg("-c")
        .arg(source())
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        o.status.success(),
        "{cc} {extra:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The policy for objects compiled from C: `.c` file symbols are fine
/// (ctfconvert gives such objects CTF data in an illumos build).
fn c_policy() -> Policy {
    let mut p = Policy::kernel_object();
    p.allow_c_file_symbols = true;
    p
}

fn report(name: &str, extra: &[&str]) -> Report {
    let obj = compile(name, extra);
    let r = check(&obj, &c_policy()).unwrap_or_else(|e| panic!("{}: {e}", obj.display()));
    println!("{}", r.full());
    r
}

/// The object breaks exactly `rules`, and some violation of the first
/// rule mentions every one of `words`.
fn assert_rejected(r: &Report, rules: &[Rule], words: &[&str]) {
    let found: BTreeSet<Rule> = r.violations.iter().map(|v| v.rule).collect();
    let want: BTreeSet<Rule> = rules.iter().copied().collect();
    assert_eq!(found, want, "rules broken by {}", r.path.display());
    assert!(
        r.violations
            .iter()
            .any(|v| v.rule == rules[0] && words.iter().all(|w| v.message.contains(w))),
        "no [{}] violation mentions {words:?}: {:#?}",
        rules[0],
        r.violations
    );
}

#[test]
fn the_good_object_passes() {
    let r = report("good", &[]);
    assert!(r.passed(), "{:#?}", r.violations);
    assert_eq!(r.exports.len(), 21);
}

#[test]
fn a_c_file_symbol_without_ctf_fails_the_kernel_policy() {
    let obj = compile("good", &[]);
    let r = check(&obj, &Policy::kernel_object()).expect("check");
    assert_rejected(&r, &[Rule::CtfMerge], &["kernel_like.c", "ctfmerge"]);
}

#[test]
fn pic_with_got_calls_is_rejected() {
    // -fno-plt: calls through the GOT, `call *kmem_zalloc@GOTPCREL(%rip)`,
    // which krtld would turn into a jump into garbage.
    let r = report("pic", &["-mcmodel=small", "-fPIC", "-fno-plt"]);
    assert_rejected(&r, &[Rule::Relocation], &["GOTPCREL", "krtld has no GOT"]);
    assert!(r
        .violations
        .iter()
        .any(|v| v.message.contains("_GLOBAL_OFFSET_TABLE_")));
    assert!(r
        .violations
        .iter()
        .any(|v| v.message.contains("kmem_zalloc")));
}

#[test]
fn unwind_tables_are_rejected() {
    let r = report("unwind", &["-fasynchronous-unwind-tables"]);
    assert_rejected(&r, &[Rule::Section], &[".eh_frame", "unwind"]);
}

#[test]
fn exception_tables_are_rejected() {
    // Landing pads: .gcc_except_table, .eh_frame, and the unwinder's
    // _Unwind_Resume and personality routine as imports.
    let r = report("exceptions", &["-fexceptions", "-DBAD_EXCEPTIONS"]);
    assert_rejected(
        &r,
        &[Rule::Section, Rule::Import, Rule::RustRuntime],
        &[".gcc_except_table"],
    );
    assert!(r
        .violations
        .iter()
        .any(|v| v.rule == Rule::Import && v.message.contains("_Unwind_Resume")));
}

#[test]
fn sse_is_rejected() {
    let r = report("sse", &["-msse", "-msse2", "-DBAD_SSE"]);
    assert_rejected(&r, &[Rule::FpuSimd], &["vmm_gpt_can_track_dirty", "%xmm"]);
}

#[test]
fn x87_is_rejected() {
    let r = report("x87", &["-DBAD_X87"]);
    assert_rejected(&r, &[Rule::FpuSimd], &["vmm_gpt_can_track_dirty", "x87"]);
}

#[test]
fn a_1k_stack_frame_is_rejected() {
    let r = report("big_frame", &["-DBAD_BIG_FRAME"]);
    assert_rejected(&r, &[Rule::StackFrame], &["vmm_gpt_walk", "512-byte limit"]);
    let walk = r
        .functions
        .iter()
        .find(|f| f.name == "vmm_gpt_walk")
        .expect("vmm_gpt_walk");
    assert!(walk.frame.bytes >= 1024, "{:?}", walk.frame);
}

#[test]
fn mutual_recursion_is_rejected() {
    let r = report("mutual_recursion", &["-DBAD_MUTUAL_RECURSION"]);
    assert_rejected(&r, &[Rule::Recursion], &["ping, pong call each other"]);
}

#[test]
fn self_recursion_is_rejected() {
    let r = report("self_recursion", &["-DBAD_SELF_RECURSION"]);
    assert_rejected(&r, &[Rule::Recursion], &["count_down calls itself"]);
}

#[test]
fn an_extra_global_is_rejected() {
    let r = report("extra_global", &["-DBAD_EXTRA_GLOBAL"]);
    assert_rejected(
        &r,
        &[Rule::Export],
        &["vmm_gpt_walk_count", "not one of the exports"],
    );
}

#[test]
fn a_missing_export_is_rejected() {
    let r = report("missing_export", &["-DOMIT_FREE"]);
    assert_rejected(&r, &[Rule::Export], &["vmm_gpt_free", "missing"]);
}

#[test]
fn an_import_outside_the_kernel_services_is_rejected() {
    let r = report("import", &["-DBAD_IMPORT"]);
    assert_rejected(&r, &[Rule::Import], &["malloc", "not a kernel service"]);
}

#[test]
fn thread_local_storage_is_rejected() {
    let r = report("tls", &["-DBAD_TLS"]);
    assert_rejected(
        &r,
        &[Rule::Section, Rule::Relocation],
        &[".tbss", "thread-local"],
    );
    assert!(r
        .violations
        .iter()
        .any(|v| v.rule == Rule::Relocation && v.message.contains("TPOFF")));
}

#[test]
fn constructors_are_rejected() {
    let r = report("constructor", &["-DBAD_CONSTRUCTOR"]);
    assert_rejected(&r, &[Rule::Section], &[".init_array", "constructors"]);
}

#[test]
fn a_rust_core_symbol_is_rejected() {
    let r = report("rust_symbol", &["-DBAD_RUST_SYMBOL"]);
    assert_rejected(
        &r,
        &[Rule::RustRuntime],
        &["core::panicking::panic", "local"],
    );
}
