//! What the shipped staticlib contains: `cargo build --release` of the
//! library (no_std, kernel panic handler, no `hosted` feature), inspected
//! with `nm`.  The library's own object must
//! - define exactly the 21 global symbols of illumos' `vmm_gpt.o` (Rust's
//!   mangled internals aside: the kernel link makes those local),
//! - import only the kernel services `vmm_gpt.c` imports, the three stubs
//!   and `memcpy`/`memmove`/`memset`/`memcmp`: no Rust runtime, no `core`
//!   function, so no panic machinery and no `core::fmt` on any path.

// The package links the C harness into every test target, and the harness
// needs the library.
use vmm_gpt as _;
use vmm_gpt_harness as _;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{names, EXPORTS, IMPORTS};

/// One of illumos-build's lists: the kernel object's exports and what it
/// may import, which the shipped staticlib must match as well.
fn list(text: &'static str) -> BTreeSet<&'static str> {
    names(text).into_iter().collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Builds the release staticlib in a target directory of its own (the
/// workspace's is locked by the `cargo test` running this).
fn build_staticlib() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("staticlib");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "vmm-gpt",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&root));
    target.join("release/libvmm_gpt.a")
}

/// The library's own members of the archive (the rest is `core` and
/// `compiler_builtins`, which the kernel object build (illumos-build/build.sh) deals with).
fn own_symbols(lib: &Path) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let listing = run(Command::new("nm").arg("-A").arg(lib));
    let (mut defined_global, mut undefined, mut all) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut members = 0;
    let prefix = format!("{}:", lib.display());
    for line in listing.lines() {
        // "<lib>:<member>:[value] <type> <name>"
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((member, sym)) = rest.split_once(':') else {
            continue;
        };
        if !member.starts_with("vmm_gpt-") {
            continue;
        }
        members += 1;
        let fields: Vec<&str> = sym.split_whitespace().collect();
        let (kind, name) = match fields.as_slice() {
            [kind, name] | [_, kind, name] => (*kind, (*name).to_string()),
            _ => continue,
        };
        all.insert(name.clone());
        if kind == "U" {
            undefined.insert(name);
        } else if kind.chars().all(|c| c.is_ascii_uppercase()) {
            defined_global.insert(name);
        }
    }
    assert!(members > 0, "no vmm_gpt object in {}", lib.display());
    (defined_global, undefined, all)
}

fn is_mangled(name: &str) -> bool {
    name.starts_with("_ZN") || name.starts_with("_R")
}

#[test]
fn staticlib_exports_and_imports_exactly_the_c_interface() {
    let lib = build_staticlib();
    let (defined, undefined, all) = own_symbols(&lib);

    let unmangled: BTreeSet<&str> = defined
        .iter()
        .map(String::as_str)
        .filter(|n| !is_mangled(n))
        .collect();
    let exports = list(EXPORTS);
    assert_eq!(
        unmangled, exports,
        "global definitions of the library's object"
    );

    let imports = list(IMPORTS);
    let extra: Vec<&String> = undefined
        .iter()
        .filter(|n| !imports.contains(n.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "imports beyond the kernel services: {extra:?}"
    );

    let fmt: Vec<&String> = all.iter().filter(|n| n.contains("core3fmt")).collect();
    assert!(fmt.is_empty(), "core::fmt in the library: {fmt:?}");
}
