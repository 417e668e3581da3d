//! The checker rejects bad objects, each with the right rule and message.
//!
//! `tests/c/kernel_like.c` defines the 21 exports of `vmm_gpt.o` with
//! trivial bodies that call kernel services; compiled with the illumos
//! kernel flags (as far as gcc takes them, with `FRAME_CFLAGS` standing in
//! for illumos gcc's kept frames) it passes.  Each test compiles it with one
//! `BAD_*` macro or one compiler flag that adds one kind of violation, and
//! checks that the checker reports exactly that rule, with the expected
//! words.  The `BAD_*` cases of the function-symbol rules (retpolines, fbt,
//! names, shared addresses) are written in assembly (top-level `asm` in the
//! C file), so that they do not depend on what a compiler version emits.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmm_gpt_objcheck::{check, kernel_cflags, Policy, Report, Rule, FRAME_CFLAGS};

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/kernel_like.c")
}

/// Compiles kernel_like.c with the kernel flags and `FRAME_CFLAGS` (not
/// with `-fPIC`, which they do not support), then `extra` (which may
/// override them, e.g. `-msse2`).
fn compile(name: &str, extra: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_objects");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let out = dir.join(format!("{name}.o"));
    let flags = kernel_cflags();
    let cc = &flags.cc;
    let frames: &[&str] = if extra.contains(&"-fPIC") {
        &[]
    } else {
        FRAME_CFLAGS
    };
    let o = Command::new(cc)
        .args(&flags.accepted)
        .args(frames)
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
    // What makes it a kernel object of illumos' gcc: a retpolined indirect
    // call, the stack protector, fbt probes everywhere, a function that
    // never returns (and needs no ret).
    assert!(r.thunk_calls() >= 1, "no call through a retpoline thunk");
    assert!(r
        .imports
        .iter()
        .any(|i| i.starts_with("__x86_indirect_thunk_")));
    assert!(r.stack_protected() >= 1, "no function with a stack canary");
    assert!(r.imports.contains("__stack_chk_guard") && r.imports.contains("__stack_chk_fail"));
    assert_eq!(r.raw_indirect(), 0);
    assert!(
        r.entry_summary().starts_with("yes"),
        "{}",
        r.entry_summary()
    );
    let panic = r
        .symbols
        .iter()
        .find(|f| f.name == "vmm_gpt_impl_panic")
        .expect("vmm_gpt_impl_panic");
    assert!(!panic.returns.can_return && panic.fbt_ok(), "{panic:?}");
    assert!(r.symbols.iter().all(|f| f.fbt_ok()), "{}", r.fbt_table());
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
    // which krtld would turn into a jump into garbage.  (FRAME_CFLAGS do not
    // work with -fPIC, so gcc's frameless leaves break fbt-entry too.)
    let r = report("pic", &["-mcmodel=small", "-fPIC", "-fno-plt"]);
    assert_rejected(
        &r,
        &[Rule::Relocation, Rule::FbtEntry],
        &["GOTPCREL", "krtld has no GOT"],
    );
    assert!(r
        .violations
        .iter()
        .filter(|v| v.rule == Rule::FbtEntry)
        .all(|v| v.message.contains("has no `push %rbp`")));
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

#[test]
fn a_raw_indirect_call_is_rejected() {
    // Without retpolines, the call through a function pointer is
    // `call *%rax`.
    let r = report("indirect_call", &["-mindirect-branch=keep"]);
    assert_rejected(
        &r,
        &[Rule::Retpoline],
        &["vmm_gpt_get_pmtp", "raw indirect", "`call *%rax`"],
    );
    assert_eq!(r.thunk_calls(), 0);
}

#[test]
fn a_jump_table_is_rejected() {
    // A dense switch without retpolines: `jmp *0x0(,%rax,8)` through a table
    // of code addresses in .rodata.
    let r = report("jump_table", &["-DBAD_SWITCH", "-mindirect-branch=keep"]);
    assert_rejected(
        &r,
        &[Rule::Retpoline],
        &["vmm_gpte_reset_accessed", "a jump table", ".rodata"],
    );
    assert!(r
        .violations
        .iter()
        .any(|v| v.message.contains("vmm_gpte_reset_accessed") && v.message.contains("`jmp *")));
    // With retpolines gcc makes no jump table of the same switch.
    let r = report("switch_retpolines", &["-DBAD_SWITCH"]);
    assert!(r.passed(), "{:#?}", r.violations);
}

#[test]
fn a_jump_table_through_a_thunk_is_rejected() {
    // No raw indirect branch, but code addresses inside the function in
    // .rodata; the jump through the thunk is the table's, not a tail call.
    let r = report("table_thunk", &["-DBAD_TABLE_THUNK"]);
    assert_rejected(
        &r,
        &[Rule::Retpoline],
        &[
            "vmm_gpt_iter_next",
            "a jump table",
            "4 address(es) inside it",
        ],
    );
    assert_eq!(r.raw_indirect(), 0);
}

#[test]
fn entry_probes_not_at_offset_0_are_rejected() {
    let r = report("fbt_entry", &["-DBAD_FBT_ENTRY"]);
    assert_rejected(&r, &[Rule::FbtEntry], &["vmm_gpt_walk", "no `push %rbp`"]);
    for words in [
        ["vmm_gpt_populate_region", "including a branch"],
        ["vmm_gpt_unmap_region", "not followed by `mov %rsp,%rbp`"],
        ["vmm_gpte_query_dirty", "at +0x3, after 1 instruction(s)"],
    ] {
        assert!(
            r.violations
                .iter()
                .any(|v| v.rule == Rule::FbtEntry && words.iter().all(|w| v.message.contains(w))),
            "no [fbt-entry] violation mentions {words:?}: {:#?}",
            r.violations
        );
    }
}

#[test]
fn a_return_before_the_prologue_breaks_both_fbt_rules() {
    let r = report("early_return", &["-DBAD_EARLY_RETURN"]);
    assert_rejected(
        &r,
        &[Rule::FbtReturn, Rule::FbtEntry],
        &["vmm_gpt_vacate_region", "`ret` at +0x7"],
    );
}

#[test]
fn tail_calls_are_rejected() {
    let r = report("tail_calls", &["-DBAD_TAIL_CALLS"]);
    assert_rejected(
        &r,
        &[Rule::FbtReturn],
        &["vmm_gpt_map_at", "no `ret` of its own", "to kmem_free"],
    );
    for words in [
        ["vmm_gpt_unmap", "__x86_indirect_thunk_rax"],
        ["vmm_gpte_is_mapped", "to vmm_gpt_walk"],
    ] {
        assert!(
            r.violations
                .iter()
                .any(|v| v.rule == Rule::FbtReturn && words.iter().all(|w| v.message.contains(w))),
            "no [fbt-return] violation mentions {words:?}: {:#?}",
            r.violations
        );
    }
    // The policy's exceptions excuse named functions from the fbt rules.
    let obj = compile("tail_calls", &["-DBAD_TAIL_CALLS"]);
    let mut p = c_policy();
    p.fbt_exempt = ["vmm_gpt_map_at", "vmm_gpt_unmap", "vmm_gpte_is_mapped"]
        .into_iter()
        .map(String::from)
        .collect();
    let r = check(&obj, &p).expect("check");
    assert!(r.passed(), "{:#?}", r.violations);
}

#[test]
fn two_functions_at_one_address_are_rejected() {
    let r = report("shared_address", &["-DBAD_SHARED_ADDRESS"]);
    assert_rejected(
        &r,
        &[Rule::SharedAddress],
        &["vmm_gpt_fini, vmm_gpt_fini_alias", "one patch point"],
    );
}

#[test]
fn dollar_and_legacy_rust_names_are_rejected() {
    let r = report("names", &["-DBAD_NAMES"]);
    assert_rejected(&r, &[Rule::Names], &["vmm_gpt$free_l1", "`$`"]);
    assert!(r.violations.iter().any(|v| v.rule == Rule::Names
        && v.message.contains("legacy mangling")
        && v.message.contains("vmm_gpt::node::Gpt::free")));
}

#[test]
fn a_linux_stack_canary_is_rejected() {
    // A Linux gcc's default: the canary at %gs:0x28 with the kernel code
    // model, which on illumos is a field of the cpu_t.
    let r = report("tls_canary", &["-mstack-protector-guard=tls"]);
    assert_rejected(
        &r,
        &[Rule::StackProtector],
        &["vmm_gpt_unmap", "%gs:0x28", "__stack_chk_guard"],
    );
}
