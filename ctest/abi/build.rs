//! Generates the ABI parity test with the `ctest` crate.  The userland
//! kernel stand-in that the library needs to link comes from
//! `vmm-gpt-harness` (whose headers the generated C includes too).
//!
//! ctest expands `src/mirror.rs` (the library's real type definitions plus
//! an `extern "C"` block for its 21 global symbols) and writes two files to
//! OUT_DIR: `ctest_abi.rs`, which `tests/abi.rs` includes, and
//! `ctest_abi.c`, which it compiles (with `-Wall -Wextra -Werror`) against
//! `<sys/vmm_gpt.h>`, `<sys/vmm_gpt_impl.h>` and `include/vmm_gpt_abi_extra.h`
//! into `libctest_abi.a`.  What is checked:
//!
//! - size and alignment of every alias and struct: `pfn_t`, `uint_t`,
//!   `vmm_gpt_entry_t`, `vmm_gpt_node_level_t`, the raw level type
//!   (`vmm_gpt_node_level_t` in C), `vmm_gpt_iter_t`, `vmm_gpt_iter_entry_t`,
//!   `vmm_pte_impl_t`, `struct vmm_gpt_iter`, `struct vmm_gpt_iter_entry`,
//!   `struct vmm_pte_impl`;
//! - signedness of the integer aliases;
//! - offset and size of every field, and its type: the C file returns
//!   `&s->field` as a pointer to the field's type translated from Rust, so a
//!   type mismatch fails the C build (`-Werror`: incompatible-pointer-types,
//!   pointer-sign);
//! - by-value round trips of the aliases and structs through C;
//! - the values of `LEVEL4`..`LEVEL1` and `MAX_GPT_LEVEL`;
//! - that every function and the static is the same address in Rust and in C
//!   (the C side takes the address of the header's declaration; the test
//!   side of the check is the library's own definition).
//!
//! `struct vmm_gpt` (incomplete in C) and its alias `vmm_gpt_t` are skipped.

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = dir.join("../..");
    let lib_include = root.join("include");
    let kernel_include =
        PathBuf::from(env::var("DEP_VMM_GPT_HARNESS_KINC").expect("DEP_VMM_GPT_HARNESS_KINC"));

    println!("cargo::rustc-check-cfg=cfg(ctest_expand)");
    for p in [
        dir.join("src/mirror.rs"),
        dir.join("include"),
        root.join("src/abi.rs"),
        root.join("src/abi_impl.rs"),
        root.join("src/ffi.rs"),
        root.join("src/hotpatch.rs"),
        lib_include.join("sys"),
        kernel_include.clone(),
    ] {
        println!("cargo::rerun-if-changed={}", p.display());
    }

    check_mirror_is_complete(&root, &dir.join("src/mirror.rs"));

    generate_abi_test(&dir, &kernel_include, &lib_include);
}

fn generate_abi_test(dir: &Path, kernel_include: &Path, lib_include: &Path) {
    let mut cfg = ctest::TestGenerator::new();
    cfg.header("sys/vmm_gpt.h")
        .header("sys/vmm_gpt_impl.h")
        .header("vmm_gpt_abi_extra.h")
        // The library's headers, then the kernel stand-ins (<sys/types.h>
        // with pfn_t and uint_t, <sys/mach_mmu.h>, <vm/hat_pte.h>, ...), then
        // the declarations no illumos header has.
        .include(lib_include)
        .include(kernel_include)
        .include(dir.join("include"))
        // Expand src/mirror.rs with the library's type modules compiled in.
        .cfg("ctest_expand", None)
        // Incomplete in C (`struct vmm_gpt;`): no size, no fields.
        .skip_struct(|s| s.ident() == "vmm_gpt")
        .skip_alias(|a| a.ident() == "vmm_gpt_t")
        // The raw level the functions take is what the header spells
        // `vmm_gpt_node_level_t` in their prototypes.
        .rename_type(|t| (t == "vmm_gpt_node_level_raw").then(|| "vmm_gpt_node_level_t".into()))
        // A Rust enum: C's round trip hands back bytes that are not a
        // variant, which Rust may not hold in it (size, alignment and the
        // variant values are still checked).
        .skip_roundtrip(|name| name == "vmm_gpt_node_level_t");

    ctest::generate_test(&mut cfg, dir.join("src/mirror.rs"), "ctest_abi.rs")
        .unwrap_or_else(|e| panic!("ctest: {e}"));
}

/// The names that follow `#[no_mangle]` in a Rust source: the library's
/// global symbols.  A plain text scan, enough for the library's style
/// (`#[no_mangle]` on the line before `pub [unsafe] extern "C" fn NAME(` or
/// `pub static NAME:`).
fn no_mangle_names(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = src.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "#[no_mangle]" && line != "#[unsafe(no_mangle)]" {
            continue;
        }
        let item = lines.next().unwrap_or_default();
        names.push(item_name(item).unwrap_or_else(|| panic!("#[no_mangle] on `{item}`")));
    }
    names
}

/// `NAME` of `... fn NAME(...` or `... static NAME: ...`.
fn item_name(line: &str) -> Option<String> {
    let rest = ["fn ", "static "]
        .iter()
        .find_map(|kw| line.split_once(kw).map(|(_, rest)| rest))?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The `pub fn` and `pub static` names declared in the mirror's extern block.
fn declared_names(src: &str) -> Vec<String> {
    src.lines()
        .map(str::trim)
        .filter_map(|l| {
            l.strip_prefix("pub fn ")
                .or_else(|| l.strip_prefix("pub static "))
        })
        .filter_map(|rest| item_name(&format!("fn {rest}")))
        .collect()
}

/// ctest checks only what the mirror declares: make sure it declares every
/// `#[no_mangle]` item of the library (src/ffi.rs, src/hotpatch.rs), and
/// nothing else.  (That each declaration has the definition's signature is
/// checked when the test compiles, see tests/abi.rs.)
fn check_mirror_is_complete(root: &Path, mirror: &Path) {
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let defined: BTreeSet<String> = ["src/ffi.rs", "src/hotpatch.rs"]
        .iter()
        .flat_map(|f| no_mangle_names(&read(&root.join(f))))
        .collect();
    let declared: BTreeSet<String> = declared_names(&read(mirror)).into_iter().collect();
    assert!(
        defined.len() == 21 && defined == declared,
        "src/mirror.rs must declare the library's 21 #[no_mangle] items:\n  \
         defined, not declared: {:?}\n  declared, not defined: {:?}\n  defined: {}",
        defined.difference(&declared).collect::<Vec<_>>(),
        declared.difference(&defined).collect::<Vec<_>>(),
        defined.len(),
    );
}
