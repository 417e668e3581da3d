//! Builds the C side of the differential tests, so that every
//! implementation compared lives in one binary:
//!
//! 1. The kernel stand-in, once: `ctest/c/kernel.c`, the EPT and AMD test
//!    formats (`pte_ept.c`, `pte_rvi.c`) and the library's three
//!    indirection stubs (`stubs.S`), in `libvmm_gpt_difftest_harness.a`.
//! 2. With `ILLUMOS_GATE` set, the original, twice: `vmm_gpt.c` from the
//!    checkout (an external, CDDL input: compiled from there, never
//!    copied) against the library's headers and the stand-in headers, with
//!    `-DDEBUG` (its `ASSERT`s on, as a DEBUG kernel builds it) and
//!    without (as production kernels build it).  Each copy gets its own
//!    prefix: every global symbol of the original's ABI is renamed with
//!    `objcopy --redefine-syms`, its 21 definitions (`ref_vmm_gpt_init`,
//!    ..., `ref_vmm_gpt_impl_panic`, `ref_vmm_pte_uninit_impl`) and the
//!    stubs it calls (`ref_vmm_gpti_map_table`, ...), and it gets its own
//!    copy of the stubs (`stubs.S` assembled again, renamed the same way),
//!    whose jumps go to `ref_vmm_gpt_impl_panic` until `ref_vmm_gpt_init`
//!    patches them.  `nm` then checks that each defines exactly the 21
//!    renamed symbols and imports nothing of the library's or of another
//!    copy's.  DEBUG: `ref_*`, `libvmm_gpt_difftest_ref.a`,
//!    `cfg(vmm_gpt_reference)`; non-DEBUG: `ref_ndebug_*`,
//!    `cfg(vmm_gpt_reference_ndebug)`.
//!
//! Without `ILLUMOS_GATE`, `VMM_GPT_REQUIRE_REFERENCE=1` fails the build;
//! otherwise the crate builds without the original and its tests skip.
//!
//! 3. With `VMM_GPT_KERNEL_OBJECT`, `VMM_GPT_KERNEL_OBJECT_DEBUG` and
//!    `VMM_GPT_RELEASE_STATICLIB` set, the non-DEBUG and DEBUG kernel objects of
//!    illumos-build/build.sh and the release staticlib, renamed the same
//!    way (`kobj_*`, `kobj_debug_*`, `rel_*`; see `build_prebuilt`).
//!
//! `VMM_GPT_SANITIZE=1` compiles all of this C with AddressSanitizer and
//! UndefinedBehaviorSanitizer (aborting on the first error) and links their
//! runtimes (`cfg(vmm_gpt_sanitize)`).

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// Flags of the harness C code (as ctest/build.rs).
const CFLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-std=gnu11", "-g"];
/// Flags of the original: not `-Wextra`, which it is not written for;
/// `-DDEBUG` is added for the DEBUG copy.
const ORIGINAL_CFLAGS: &[&str] = &["-Wall", "-Werror", "-std=gnu11", "-g"];
/// `VMM_GPT_SANITIZE=1`: ASan and UBSan, every error fatal.
const SANITIZE_CFLAGS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];
/// The kernel stand-in, from `ctest/c`.
const HARNESS: &[&str] = &["kernel.c", "pte_ept.c", "pte_rvi.c", "stubs.S"];
const STUBS: &str = "stubs.S";
/// Where an illumos-gate checkout has the original.
const ORIGINAL: &str = "usr/src/uts/intel/io/vmm/vmm_gpt.c";
/// ASan's ODR indicator of a global `x` is `__odr_asan.x`: renamed along.
const ODR: &str = "__odr_asan.";

/// The 21 global symbols the original defines (docs/abi.md).
const DEFINED: [&str; 21] = [
    "vmm_gpt_init",
    "vmm_gpt_fini",
    "vmm_gpt_alloc",
    "vmm_gpt_free",
    "vmm_gpt_walk",
    "vmm_gpt_iter_init",
    "vmm_gpt_iter_next",
    "vmm_gpt_populate_region",
    "vmm_gpt_map_at",
    "vmm_gpt_vacate_region",
    "vmm_gpt_unmap",
    "vmm_gpt_unmap_region",
    "vmm_gpt_get_pmtp",
    "vmm_gpte_is_mapped",
    "vmm_gpte_reset_accessed",
    "vmm_gpte_reset_dirty",
    "vmm_gpte_query_accessed",
    "vmm_gpte_query_dirty",
    "vmm_gpt_can_track_dirty",
    "vmm_gpt_impl_panic",
    "vmm_pte_uninit_impl",
];
/// The stubs: defined by `stubs.S`, called by the original.
const STUB_NAMES: [&str; 3] = ["vmm_gpti_map_table", "vmm_gpti_map_page", "vmm_gpti_parse"];

/// Ends the build script with an error message (shown by cargo).
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(1);
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(env::var_os(name).unwrap_or_else(|| fail(&format!("{name} is not set"))))
}

fn env_is_1(name: &str) -> bool {
    println!("cargo:rerun-if-env-changed={name}");
    env::var(name).is_ok_and(|v| v == "1")
}

/// A tool from the environment (`OBJCOPY=...`), else by its plain name.
fn tool(var: &str, default: &str) -> OsString {
    println!("cargo:rerun-if-env-changed={var}");
    env::var_os(var).unwrap_or_else(|| default.into())
}

/// Asks cargo to rerun the script when `dir` or anything under it changes.
fn rerun_if_changed_tree(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            rerun_if_changed_tree(&p);
        } else {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

/// The command line, for error messages.
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command; on failure, ends the build with its output.  Returns
/// its standard output.
fn run(mut cmd: Command, what: &str) -> String {
    let line = shown(&cmd);
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("{what}: cannot run {line}: {e}")));
    if !output.status.success() {
        fail(&format!(
            "{what} failed ({}):\n{line}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The C compiler that cc would use, with its target, code generation and
/// optimization flags, and of its warning flags only `-Wall`.
fn compiler_command() -> Command {
    cc::Build::new()
        .warnings(true)
        .extra_warnings(false)
        .get_compiler()
        .to_command()
}

/// Whether the C compiler accepts `source` (preprocessing only).
fn compiles(source: &str, out: &Path) -> bool {
    let probe = out.join("probe.c");
    if fs::write(&probe, source).is_err() {
        return false;
    }
    let mut cmd = compiler_command();
    cmd.arg("-E").arg(&probe).arg("-o").arg(out.join("probe.i"));
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Where `ILLUMOS_GATE` points; a relative path is taken from the
/// workspace root (then from this package's directory).
fn resolve_gate(gate: &OsString, root: &Path, manifest: &Path) -> PathBuf {
    let gate = PathBuf::from(gate);
    if gate.is_absolute() {
        return gate;
    }
    for base in [root, manifest] {
        let p = base.join(&gate);
        if p.join(ORIGINAL).is_file() {
            return p;
        }
    }
    root.join(gate)
}

struct Dirs {
    cdir: PathBuf,
    kinc: PathBuf,
    hinc: PathBuf,
    out: PathBuf,
}

/// The global symbols `nm` lists for an object: (defined, undefined).
fn symbols(obj: &Path) -> (Vec<String>, Vec<String>) {
    let mut cmd = Command::new(tool("NM", "nm"));
    cmd.arg("-g").arg(obj);
    let listing = run(cmd, "listing symbols");
    let mut defined = Vec::new();
    let mut undefined = Vec::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["U" | "w", name] => undefined.push(name.to_string()),
            [_, kind, name] if *kind != "U" && *kind != "w" => defined.push(name.to_string()),
            _ => {}
        }
    }
    defined.sort();
    undefined.sort();
    (defined, undefined)
}

/// Renames with `objcopy --redefine-syms` every symbol of `names` to
/// `<prefix><name>` (and its ASan ODR indicator along), from `input` into
/// `output`.
fn rename(input: &Path, output: &Path, names: &[&str], prefix: &str, out: &Path) {
    let map = out.join(format!(
        "{}.redefine",
        output.file_name().unwrap_or_default().to_string_lossy()
    ));
    let text: String = names
        .iter()
        .map(|n| format!("{n} {prefix}{n}\n{ODR}{n} {ODR}{prefix}{n}\n"))
        .collect();
    fs::write(&map, text).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", map.display())));
    let mut cmd = Command::new(tool("OBJCOPY", "objcopy"));
    cmd.arg(format!("--redefine-syms={}", map.display()))
        .arg(input)
        .arg(output);
    run(cmd, "renaming symbols");
}

/// The symbols but ASan's ODR indicators: all of them before renaming
/// (`prefix` None), the renamed ones after (a stale one stays, and fails
/// the check).
fn without_odr(names: Vec<String>, prefix: Option<&str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| match n.strip_prefix(ODR) {
            Some(rest) => prefix.is_some_and(|p| !rest.starts_with(p)),
            None => true,
        })
        .collect()
}

fn sorted(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.into_iter().collect();
    v.sort();
    v
}

/// One renamed copy of the ABI: the objects defining the 21 symbols with
/// `prefix` in front (`ref_vmm_gpt_init`, ...) and importing the 3 stubs
/// with it, plus their own copy of the stubs (`stubs.S` assembled again,
/// renamed the same way, jumping to `<prefix>vmm_gpt_impl_panic` until
/// `<prefix>vmm_gpt_init` patches them).
struct Renamed {
    /// What it is, for messages ("the original (DEBUG)").
    what: &'static str,
    /// The prefix of its symbols.
    prefix: &'static str,
    /// `cfg(<cfg>)` tells the crate it is linked.
    cfg: &'static str,
}

const ORIGINAL_DEBUG: Renamed = Renamed {
    what: "the original (DEBUG)",
    prefix: "ref_",
    cfg: "vmm_gpt_reference",
};
const ORIGINAL_NDEBUG: Renamed = Renamed {
    what: "the original (non-DEBUG)",
    prefix: "ref_ndebug_",
    cfg: "vmm_gpt_reference_ndebug",
};
const KERNEL_OBJECT: Renamed = Renamed {
    what: "the kernel object",
    prefix: "kobj_",
    cfg: "vmm_gpt_kernel_object",
};
const KERNEL_OBJECT_DEBUG: Renamed = Renamed {
    what: "the DEBUG kernel object",
    prefix: "kobj_debug_",
    cfg: "vmm_gpt_kernel_object_debug",
};
const STATICLIB: Renamed = Renamed {
    what: "the release staticlib",
    prefix: "rel_",
    cfg: "vmm_gpt_staticlib",
};
/// Every copy: none may import another's symbols.
const COPIES: [&Renamed; 5] = [
    &ORIGINAL_DEBUG,
    &ORIGINAL_NDEBUG,
    &KERNEL_OBJECT,
    &KERNEL_OBJECT_DEBUG,
    &STATICLIB,
];

impl Dirs {
    /// Compiles (or assembles) `src` into `obj` with `flags`, against the
    /// library's and the stand-in's headers (and the sanitizers, if on).
    fn compile(&self, src: &Path, obj: &Path, flags: &[&str], sanitize: bool, what: &str) {
        let mut cmd = compiler_command();
        cmd.args(flags);
        if sanitize {
            cmd.args(SANITIZE_CFLAGS);
        }
        cmd.arg("-I")
            .arg(&self.cdir)
            .arg("-I")
            .arg(&self.kinc)
            .arg("-I")
            .arg(&self.hinc)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(obj);
        run(cmd, what);
    }

    /// A directory of its own under OUT_DIR.
    fn objdir(&self, copy: &Renamed) -> PathBuf {
        let d = self.out.join(copy.prefix.trim_end_matches('_'));
        fs::create_dir_all(&d)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", d.display())));
        d
    }
}

impl Renamed {
    /// Renames `obj` (defining the 21 unprefixed symbols) and a new copy of
    /// the stubs, checks the result, archives both as
    /// `libvmm_gpt_difftest_<prefix>.a`, links it whole and sets the cfg.
    fn finish(&self, dirs: &Dirs, obj: &Path, sanitize: bool) {
        let objdir = dirs.objdir(self);
        let mut names: Vec<&str> = DEFINED.to_vec();
        names.extend(STUB_NAMES);
        let renamed = objdir.join(format!("{}vmm_gpt.o", self.prefix));
        rename(obj, &renamed, &names, self.prefix, &objdir);

        let stubs_plain = objdir.join("stubs.o");
        dirs.compile(
            &dirs.cdir.join(STUBS),
            &stubs_plain,
            CFLAGS,
            sanitize,
            &format!("assembling the stubs for {}", self.what),
        );
        let stubs = objdir.join(format!("{}stubs.o", self.prefix));
        let mut stub_names: Vec<&str> = STUB_NAMES.to_vec();
        stub_names.push("vmm_gpt_impl_panic");
        rename(&stubs_plain, &stubs, &stub_names, self.prefix, &objdir);

        // Exactly the 21 renamed symbols defined, nothing unprefixed left;
        // the 3 renamed stubs imported; nothing of the library's (which
        // would make it call the library) or of another copy imported.
        let prefixed = |n: &str| format!("{}{n}", self.prefix);
        let (defined, undefined) = symbols(&renamed);
        let defined = without_odr(defined, Some(self.prefix));
        let expected = sorted(DEFINED.iter().map(|s| prefixed(s)));
        if defined != expected {
            fail(&format!(
                "after renaming, {} defines {defined:?}, not {expected:?}",
                self.what
            ));
        }
        for s in STUB_NAMES {
            if !undefined.contains(&prefixed(s)) {
                fail(&format!(
                    "after renaming, {} does not import {}: {undefined:?}",
                    self.what,
                    prefixed(s)
                ));
            }
        }
        let foreign = |u: &String| {
            u.starts_with("vmm_")
                || COPIES.iter().any(|c| {
                    c.prefix != self.prefix
                        && DEFINED
                            .iter()
                            .chain(STUB_NAMES.iter())
                            .any(|n| *u == format!("{}{n}", c.prefix))
                })
        };
        if let Some(bad) = undefined.iter().find(|u| foreign(u)) {
            fail(&format!(
                "after renaming, {} still imports {bad} (of another implementation)",
                self.what
            ));
        }
        let (defined, undefined) = symbols(&stubs);
        let expected = sorted(STUB_NAMES.iter().map(|s| prefixed(s)));
        if defined != expected || undefined != [prefixed("vmm_gpt_impl_panic")] {
            fail(&format!(
                "after renaming, the stubs of {} define {defined:?} and import {undefined:?}",
                self.what
            ));
        }

        let name = format!("vmm_gpt_difftest_{}", self.prefix.trim_end_matches('_'));
        let lib = dirs.out.join(format!("lib{name}.a"));
        let _ = fs::remove_file(&lib);
        let mut cmd = cc::Build::new().get_archiver();
        cmd.arg("crs").arg(&lib).arg(&renamed).arg(&stubs);
        run(cmd, &format!("archiving {}", self.what));
        println!("cargo:rustc-link-search=native={}", dirs.out.display());
        println!("cargo:rustc-link-lib=static:+whole-archive={name}");
        println!("cargo:rustc-cfg={}", self.cfg);
    }
}

/// Builds the original from the checkout twice, as a DEBUG kernel would
/// (`-DDEBUG`: its ASSERTs on; `ref_*`) and as a production one would
/// (`ref_ndebug_*`), each renamed with its own stubs.
fn build_originals(dirs: &Dirs, gate: &Path, sanitize: bool) {
    let original = gate.join(ORIGINAL);
    println!("cargo:rerun-if-changed={}", original.display());
    if !original.is_file() {
        fail(&format!(
            "ILLUMOS_GATE={}: the original {} is not there",
            gate.display(),
            original.display()
        ));
    }
    for (copy, debug) in [(&ORIGINAL_DEBUG, true), (&ORIGINAL_NDEBUG, false)] {
        let mut flags = ORIGINAL_CFLAGS.to_vec();
        if debug {
            flags.push("-DDEBUG");
        }
        let plain = dirs.objdir(copy).join("vmm_gpt.o");
        dirs.compile(
            &original,
            &plain,
            &flags,
            sanitize,
            &format!("compiling {}", copy.what),
        );
        let (defined, _) = symbols(&plain);
        let defined = without_odr(defined, None);
        let expected = sorted(DEFINED.iter().map(|s| s.to_string()));
        if defined != expected {
            fail(&format!(
                "{} defines {defined:?}, not the 21 symbols of docs/abi.md",
                copy.what
            ));
        }
        copy.finish(dirs, &plain, sanitize);
    }
    println!(
        "cargo:rustc-env=VMM_GPT_DIFFTEST_ORIGINAL={}",
        original.display()
    );
}

fn main() {
    let manifest = env_path("CARGO_MANIFEST_DIR");
    let root = manifest
        .parent()
        .unwrap_or_else(|| fail("the package has no parent directory"))
        .to_path_buf();
    let dirs = Dirs {
        cdir: root.join("ctest/c"),
        kinc: root.join("ctest/include"),
        hinc: root.join("include"),
        out: env_path("OUT_DIR"),
    };

    println!("cargo:rerun-if-changed=build.rs");
    for copy in COPIES {
        println!("cargo::rustc-check-cfg=cfg({})", copy.cfg);
    }
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_sanitize)");
    for f in HARNESS.iter().chain(["ktest.h"].iter()) {
        println!("cargo:rerun-if-changed={}", dirs.cdir.join(f).display());
    }
    rerun_if_changed_tree(&dirs.kinc);
    rerun_if_changed_tree(&dirs.hinc);
    println!("cargo:rerun-if-env-changed=ILLUMOS_GATE");
    let require = env_is_1("VMM_GPT_REQUIRE_REFERENCE");
    let sanitize = env_is_1("VMM_GPT_SANITIZE");

    // Whether the library linked as a crate is a DEBUG build, by its own
    // rule (its build.rs: `cfg(vmm_gpt_debug)`): VMM_GPT_DEBUG=1 or 0, else
    // the profile's debug assertions, which this package shares with it.
    // `sys::LIB.debug`, which picks the original it is compared with.
    println!("cargo:rerun-if-env-changed=VMM_GPT_DEBUG");
    let library_debug = match env::var("VMM_GPT_DEBUG").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some(),
    };
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_library_debug)");
    if library_debug {
        println!("cargo:rustc-cfg=vmm_gpt_library_debug");
    }

    // 1. The kernel stand-in.  Linked whole: kernel.c's constructor
    // (pthread_atfork) is reached by nothing else.
    let mut build = cc::Build::new();
    build
        .include(&dirs.cdir)
        .include(&dirs.kinc)
        .include(&dirs.hinc)
        .files(HARNESS.iter().map(|f| dirs.cdir.join(f)))
        .flag("-Werror=incompatible-pointer-types")
        .link_lib_modifier("+whole-archive");
    for flag in CFLAGS {
        build.flag(flag);
    }
    if sanitize {
        for flag in SANITIZE_CFLAGS {
            build.flag(flag);
        }
    }
    build.compile("vmm_gpt_difftest_harness");
    if sanitize {
        // The sanitizer runtimes, as `gcc -fsanitize=address,undefined`
        // would link them; rustc links with -nodefaultlibs, which leaves
        // them out, so they are named here, as the first shared libraries
        // (ASan insists on coming first).
        println!("cargo:rustc-link-lib=dylib=asan");
        println!("cargo:rustc-link-lib=dylib=ubsan");
        println!("cargo:rustc-cfg=vmm_gpt_sanitize");
    }
    println!("cargo:rustc-link-lib=dylib=pthread");
    println!("cargo:rustc-link-lib=dylib=dl");
    // modgetsymname() names symbols through dladdr(): the dynamic table.
    println!("cargo:rustc-link-arg-tests=-rdynamic");

    // kernel.c tells valgrind about its code patches through a client
    // request when <valgrind/valgrind.h> is there; else the valgrind test
    // has valgrind check all code for changes.
    let have_vg_h = compiles("#include <valgrind/valgrind.h>\n", &dirs.out);
    println!(
        "cargo:rustc-env=VMM_GPT_HAVE_VALGRIND_H={}",
        if have_vg_h { "1" } else { "0" }
    );

    // 2. The original.
    match env::var_os("ILLUMOS_GATE").filter(|g| !g.is_empty()) {
        Some(gate) => {
            let gate = resolve_gate(&gate, &root, &manifest);
            build_originals(&dirs, &gate, sanitize);
        }
        None if require => fail(
            "VMM_GPT_REQUIRE_REFERENCE=1, but ILLUMOS_GATE is not set: point it at an \
             illumos-gate checkout holding the original (../shared/illumos-gate)",
        ),
        None => println!("cargo:rustc-env=VMM_GPT_DIFFTEST_ORIGINAL="),
    }

    // 3. The kernel objects and the release staticlib.
    build_prebuilt(&dirs, &root);
}

/// An object built elsewhere, named by the environment variable `var`
/// (a relative path is from the workspace root); `None` when unset.
fn prebuilt(var: &str, root: &Path) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    let obj = env::var_os(var).filter(|v| !v.is_empty())?;
    let obj = root.join(obj);
    println!("cargo:rerun-if-changed={}", obj.display());
    if !obj.is_file() {
        fail(&format!(
            "{var}={}: no such file (illumos-build/build.sh makes the kernel objects, \
             `cargo build --release -p vmm-gpt` the staticlib)",
            obj.display()
        ));
    }
    Some(obj)
}

/// The kernel objects of illumos-build/build.sh and the release
/// staticlib, when named (scripts/test.sh sets the first two):
///
/// - `VMM_GPT_KERNEL_OBJECT` (`target/kernel/vmm_gpt.o`, non-DEBUG):
///   renamed `kobj_*`, `cfg(vmm_gpt_kernel_object)`;
/// - `VMM_GPT_KERNEL_OBJECT_DEBUG` (`target/kernel/vmm_gpt.debug.o`,
///   DEBUG): `kobj_debug_*`, `cfg(vmm_gpt_kernel_object_debug)`;
/// - `VMM_GPT_RELEASE_STATICLIB` (`target/release/libvmm_gpt.a`, non-DEBUG): its
///   own members (not core and compiler_builtins) linked into one object,
///   every symbol but the 21 made local, then renamed `rel_*`,
///   `cfg(vmm_gpt_staticlib)`.
///
/// Each gets its own copy of the stubs, as the originals do.  With a
/// kernel object the test binaries are linked without PIE: the kernel code
/// model's absolute 32-bit relocations cannot go into a
/// position-independent executable.
fn build_prebuilt(dirs: &Dirs, root: &Path) {
    let mut no_pie = false;
    for (copy, var, env_name) in [
        (
            &KERNEL_OBJECT,
            "VMM_GPT_KERNEL_OBJECT",
            "VMM_GPT_DIFFTEST_KERNEL_OBJECT",
        ),
        (
            &KERNEL_OBJECT_DEBUG,
            "VMM_GPT_KERNEL_OBJECT_DEBUG",
            "VMM_GPT_DIFFTEST_KERNEL_OBJECT_DEBUG",
        ),
    ] {
        // The tests read these with env!: empty, not missing.
        let Some(obj) = prebuilt(var, root) else {
            println!("cargo:rustc-env={env_name}=");
            continue;
        };
        copy.finish(dirs, &obj, false);
        no_pie = true;
        println!("cargo:rustc-env={env_name}={}", obj.display());
    }
    if no_pie {
        println!("cargo:rustc-link-arg-tests=-no-pie");
    }

    let Some(lib) = prebuilt("VMM_GPT_RELEASE_STATICLIB", root) else {
        println!("cargo:rustc-env=VMM_GPT_DIFFTEST_STATICLIB=");
        return;
    };
    let objdir = dirs.objdir(&STATICLIB);
    let members_dir = objdir.join("members");
    let _ = fs::remove_dir_all(&members_dir);
    fs::create_dir_all(&members_dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", members_dir.display())));
    // The library's own members (rustc names them <crate>-<hash>.*.o).
    let mut cmd = cc::Build::new().get_archiver();
    cmd.arg("t").arg(&lib);
    let members: Vec<String> = run(cmd, "listing the staticlib")
        .lines()
        .filter(|m| m.starts_with("vmm_gpt-") && m.ends_with(".o"))
        .map(str::to_string)
        .collect();
    if members.is_empty() {
        fail(&format!("no vmm_gpt member in {}", lib.display()));
    }
    let mut cmd = cc::Build::new().get_archiver();
    cmd.current_dir(&members_dir)
        .arg("x")
        .arg(&lib)
        .args(&members);
    run(cmd, "extracting the staticlib's members");
    let linked = objdir.join("linked.o");
    let mut cmd = Command::new(tool("LD", "ld"));
    cmd.arg("-r").arg("-o").arg(&linked);
    cmd.args(members.iter().map(|m| members_dir.join(m)));
    run(cmd, "linking the staticlib's members");
    let keep = objdir.join("exports.txt");
    fs::write(&keep, DEFINED.join("\n") + "\n")
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", keep.display())));
    let kept = objdir.join("vmm_gpt.o");
    let mut cmd = Command::new(tool("OBJCOPY", "objcopy"));
    cmd.arg(format!("--keep-global-symbols={}", keep.display()))
        .arg(&linked)
        .arg(&kept);
    run(cmd, "localizing the staticlib's symbols");
    STATICLIB.finish(dirs, &kept, false);
    println!(
        "cargo:rustc-env=VMM_GPT_DIFFTEST_STATICLIB={}",
        lib.display()
    );
}
