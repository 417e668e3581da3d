//! Builds the C side of the differential tests, so that both
//! implementations live in one binary:
//!
//! 1. The kernel stand-in, once: `ctest/c/kernel.c`, the EPT and AMD test
//!    formats (`pte_ept.c`, `pte_rvi.c`) and the library's three
//!    indirection stubs (`stubs.S`), in `libvmm_gpt_difftest_harness.a`.
//! 2. With `ILLUMOS_GATE` set, the original: `vmm_gpt.c` from the checkout
//!    (an external, CDDL input: compiled from there, never copied) with
//!    `-DDEBUG`, against the library's headers and the stand-in headers,
//!    and its own copy of the stubs (`stubs.S` assembled again).  In both
//!    objects every global symbol of the original's ABI is renamed with
//!    `objcopy --redefine-syms` to `ref_<name>`: its 21 definitions
//!    (`ref_vmm_gpt_init`, ..., `ref_vmm_gpt_impl_panic`,
//!    `ref_vmm_pte_uninit_impl`) and the stubs it calls
//!    (`ref_vmm_gpti_map_table`, `ref_vmm_gpti_map_page`,
//!    `ref_vmm_gpti_parse`), whose jumps go to `ref_vmm_gpt_impl_panic`
//!    until `ref_vmm_gpt_init` patches them.  `nm` then checks that the
//!    original defines exactly the 21 renamed symbols and imports nothing
//!    of the library's.  Archive: `libvmm_gpt_difftest_ref.a`; the crate
//!    sees it as `cfg(vmm_gpt_reference)`.
//!
//! Without `ILLUMOS_GATE`, `VMM_GPT_REQUIRE_REFERENCE=1` fails the build;
//! otherwise the crate builds without the original and its tests skip.
//!
//! With `VMM_GPT_KERNEL_OBJECT` set, the kernel object of
//! illumos-build/build.sh, renamed `kobj_*` the same way
//! (`cfg(vmm_gpt_kernel_object)`; see `build_kernel_object`).
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
/// Flags of the original: not `-Wextra`, which it is not written for; the
/// DEBUG kernel build (ASSERTs on), as the C unit tests' reference.
const ORIGINAL_CFLAGS: &[&str] = &["-Wall", "-Werror", "-std=gnu11", "-g", "-DDEBUG"];
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
/// What the renamed symbols start with.
const PREFIX: &str = "ref_";
/// ASan's ODR indicator of a global `x` is `__odr_asan.x`: renamed along.
const ODR: &str = "__odr_asan.";

/// The 21 global symbols the original defines (illumos-abi.md).
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
/// `ref_<name>` (and its ASan ODR indicator along), from `input` into
/// `output`.
fn rename(input: &Path, output: &Path, names: &[&str], out: &Path) {
    let map = out.join(format!(
        "{}.redefine",
        output.file_name().unwrap_or_default().to_string_lossy()
    ));
    let text: String = names
        .iter()
        .map(|n| format!("{n} {PREFIX}{n}\n{ODR}{n} {ODR}{PREFIX}{n}\n"))
        .collect();
    fs::write(&map, text).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", map.display())));
    let mut cmd = Command::new(tool("OBJCOPY", "objcopy"));
    cmd.arg(format!("--redefine-syms={}", map.display()))
        .arg(input)
        .arg(output);
    run(cmd, "renaming symbols");
}

/// The symbols but ASan's ODR indicators: all of them before renaming,
/// the renamed ones after (a stale one stays, and fails the check).
fn without_odr(names: Vec<String>, renamed: bool) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| match n.strip_prefix(ODR) {
            Some(rest) => renamed && !rest.starts_with(PREFIX),
            None => true,
        })
        .collect()
}

fn sorted(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.into_iter().collect();
    v.sort();
    v
}

/// Builds `libvmm_gpt_difftest_ref.a`: the original and its stubs, renamed.
fn build_reference(dirs: &Dirs, gate: &Path, sanitize: bool) {
    let original = gate.join(ORIGINAL);
    println!("cargo:rerun-if-changed={}", original.display());
    if !original.is_file() {
        fail(&format!(
            "ILLUMOS_GATE={}: the original {} is not there",
            gate.display(),
            original.display()
        ));
    }
    let objdir = dirs.out.join("reference");
    fs::create_dir_all(&objdir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", objdir.display())));

    let compile = |src: &Path, obj: &Path, flags: &[&str], what: &str| {
        let mut cmd = compiler_command();
        cmd.args(flags);
        if sanitize {
            cmd.args(SANITIZE_CFLAGS);
        }
        cmd.arg("-I")
            .arg(&dirs.cdir)
            .arg("-I")
            .arg(&dirs.kinc)
            .arg("-I")
            .arg(&dirs.hinc)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(obj);
        run(cmd, what);
    };

    // The original, DEBUG, then renamed.
    let plain = objdir.join("vmm_gpt.o");
    compile(
        &original,
        &plain,
        ORIGINAL_CFLAGS,
        "compiling the original vmm_gpt.c",
    );
    let (defined, _) = symbols(&plain);
    let defined = without_odr(defined, false);
    let expected = sorted(DEFINED.iter().map(|s| s.to_string()));
    if defined != expected {
        fail(&format!(
            "the original defines {defined:?}, not the 21 symbols of illumos-abi.md"
        ));
    }
    let mut names: Vec<&str> = DEFINED.to_vec();
    names.extend(STUB_NAMES);
    let ref_gpt = objdir.join("ref_vmm_gpt.o");
    rename(&plain, &ref_gpt, &names, &objdir);

    // Its own stubs: stubs.S assembled again, renamed, jumping to
    // ref_vmm_gpt_impl_panic.
    let stubs_plain = objdir.join("stubs.o");
    compile(
        &dirs.cdir.join(STUBS),
        &stubs_plain,
        CFLAGS,
        "assembling the stubs for the original",
    );
    let ref_stubs = objdir.join("ref_stubs.o");
    rename(
        &stubs_plain,
        &ref_stubs,
        &[
            "vmm_gpti_map_table",
            "vmm_gpti_map_page",
            "vmm_gpti_parse",
            "vmm_gpt_impl_panic",
        ],
        &objdir,
    );

    // Nothing unprefixed may be left defined, and the original must import
    // nothing of the library's (which would make it call the library).
    let (defined, undefined) = symbols(&ref_gpt);
    let defined = without_odr(defined, true);
    let expected = sorted(DEFINED.iter().map(|s| format!("{PREFIX}{s}")));
    if defined != expected {
        fail(&format!(
            "after renaming, the original defines {defined:?}, not {expected:?}"
        ));
    }
    for s in STUB_NAMES {
        let want = format!("{PREFIX}{s}");
        if !undefined.contains(&want) {
            fail(&format!(
                "after renaming, the original does not import {want}: {undefined:?}"
            ));
        }
    }
    if let Some(bad) = undefined.iter().find(|u| u.starts_with("vmm_")) {
        fail(&format!(
            "after renaming, the original still imports {bad} (of the library)"
        ));
    }
    let (defined, undefined) = symbols(&ref_stubs);
    let expected = sorted(STUB_NAMES.iter().map(|s| format!("{PREFIX}{s}")));
    if defined != expected || undefined != [format!("{PREFIX}vmm_gpt_impl_panic")] {
        fail(&format!(
            "after renaming, the original's stubs define {defined:?} and import \
             {undefined:?}"
        ));
    }

    let lib = dirs.out.join("libvmm_gpt_difftest_ref.a");
    let _ = fs::remove_file(&lib);
    let mut cmd = cc::Build::new().get_archiver();
    cmd.arg("crs").arg(&lib).arg(&ref_gpt).arg(&ref_stubs);
    run(cmd, "archiving the original");
    println!("cargo:rustc-link-search=native={}", dirs.out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive=vmm_gpt_difftest_ref");
    println!("cargo:rustc-cfg=vmm_gpt_reference");
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
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_reference)");
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_reference_ndebug)");
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_sanitize)");
    for f in HARNESS.iter().chain(["ktest.h"].iter()) {
        println!("cargo:rerun-if-changed={}", dirs.cdir.join(f).display());
    }
    rerun_if_changed_tree(&dirs.kinc);
    rerun_if_changed_tree(&dirs.hinc);
    println!("cargo:rerun-if-env-changed=ILLUMOS_GATE");
    let require = env_is_1("VMM_GPT_REQUIRE_REFERENCE");
    let sanitize = env_is_1("VMM_GPT_SANITIZE");

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
            build_reference(&dirs, &gate, sanitize);
            if env::var_os("CARGO_FEATURE_NDEBUG_REFERENCE").is_some() {
                build_ndebug_reference(&dirs, &gate);
            }
        }
        None if require => fail(
            "VMM_GPT_REQUIRE_REFERENCE=1, but ILLUMOS_GATE is not set: point it at an \
             illumos-gate checkout holding the original (../shared/illumos-gate)",
        ),
        None => println!("cargo:rustc-env=VMM_GPT_DIFFTEST_ORIGINAL="),
    }

    // 3. The kernel object.
    build_kernel_object(&dirs, &root);
}

/// With `VMM_GPT_KERNEL_OBJECT` naming the object illumos-build/build.sh
/// made (`target/kernel/vmm_gpt.o`; scripts/test.sh sets it), builds
/// `libvmm_gpt_difftest_kobj.a`: that object with its 21 exports and the 3
/// stubs it calls renamed `kobj_<name>`, and its own copy of the stubs
/// (jumping to `kobj_vmm_gpt_impl_panic`), as for the original.  The crate
/// sees it as `cfg(vmm_gpt_kernel_object)` (`sys::kernel_object()`), and the
/// test binaries are linked without PIE: the kernel code model's absolute
/// 32-bit relocations cannot go into a position-independent executable.
fn build_kernel_object(dirs: &Dirs, root: &Path) {
    const KOBJ: &str = "kobj_";
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_kernel_object)");
    println!("cargo:rerun-if-env-changed=VMM_GPT_KERNEL_OBJECT");
    let Some(obj) = env::var_os("VMM_GPT_KERNEL_OBJECT").filter(|v| !v.is_empty()) else {
        // tests/kernel_object.rs reads it with env!: empty, not missing.
        println!("cargo:rustc-env=VMM_GPT_DIFFTEST_KERNEL_OBJECT=");
        return;
    };
    let obj = root.join(obj); // a relative path is from the workspace root
    println!("cargo:rerun-if-changed={}", obj.display());
    if !obj.is_file() {
        fail(&format!(
            "VMM_GPT_KERNEL_OBJECT={}: no such object (run illumos-build/build.sh)",
            obj.display()
        ));
    }
    let objdir = dirs.out.join("kernel_object");
    fs::create_dir_all(&objdir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", objdir.display())));
    let rename_kobj = |input: &Path, output: &Path, names: &[&str]| {
        let map = objdir.join(format!(
            "{}.redefine",
            output.file_name().unwrap_or_default().to_string_lossy()
        ));
        let text: String = names.iter().map(|n| format!("{n} {KOBJ}{n}\n")).collect();
        fs::write(&map, text)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", map.display())));
        let mut cmd = Command::new(tool("OBJCOPY", "objcopy"));
        cmd.arg(format!("--redefine-syms={}", map.display()))
            .arg(input)
            .arg(output);
        run(cmd, "renaming the kernel object's symbols");
    };
    let mut names: Vec<&str> = DEFINED.to_vec();
    names.extend(STUB_NAMES);
    let kobj = objdir.join("kobj_vmm_gpt.o");
    rename_kobj(&obj, &kobj, &names);
    let stubs_plain = objdir.join("stubs.o");
    let mut cmd = compiler_command();
    cmd.args(CFLAGS)
        .arg("-c")
        .arg(dirs.cdir.join(STUBS))
        .arg("-o")
        .arg(&stubs_plain);
    run(cmd, "assembling the stubs for the kernel object");
    let kobj_stubs = objdir.join("kobj_stubs.o");
    let mut stub_names: Vec<&str> = STUB_NAMES.to_vec();
    stub_names.push("vmm_gpt_impl_panic");
    rename_kobj(&stubs_plain, &kobj_stubs, &stub_names);

    // It must define exactly the 21 renamed symbols, and import nothing of
    // the library's (which would make it call the library).
    let (defined, undefined) = symbols(&kobj);
    let expected = sorted(DEFINED.iter().map(|s| format!("{KOBJ}{s}")));
    if defined != expected {
        fail(&format!(
            "after renaming, the kernel object defines {defined:?}, not {expected:?}"
        ));
    }
    if let Some(bad) = undefined.iter().find(|u| u.starts_with("vmm_")) {
        fail(&format!(
            "after renaming, the kernel object still imports {bad} (of the library)"
        ));
    }

    let lib = dirs.out.join("libvmm_gpt_difftest_kobj.a");
    let _ = fs::remove_file(&lib);
    let mut cmd = cc::Build::new().get_archiver();
    cmd.arg("crs").arg(&lib).arg(&kobj).arg(&kobj_stubs);
    run(cmd, "archiving the kernel object");
    println!("cargo:rustc-link-search=native={}", dirs.out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive=vmm_gpt_difftest_kobj");
    println!("cargo:rustc-link-arg-tests=-no-pie");
    println!("cargo:rustc-cfg=vmm_gpt_kernel_object");
    println!(
        "cargo:rustc-env=VMM_GPT_DIFFTEST_KERNEL_OBJECT={}",
        obj.display()
    );
}

/// With the `ndebug-reference` feature (and `ILLUMOS_GATE`), builds
/// `libvmm_gpt_difftest_ref_ndebug.a`: the original compiled as for
/// `build_reference` but without `-DDEBUG` (ASSERTs off, as in production
/// kernels) and without sanitizers, its 21 exports and the 3 stubs it calls
/// renamed `ref_ndebug_<name>`, with its own copy of the stubs (jumping to
/// `ref_ndebug_vmm_gpt_impl_panic`).  The crate sees it as
/// `cfg(vmm_gpt_reference_ndebug)` (`sys::reference_ndebug()`): the
/// benchmarks' reference (benches/).
fn build_ndebug_reference(dirs: &Dirs, gate: &Path) {
    const NDEBUG_PREFIX: &str = "ref_ndebug_";
    let original = gate.join(ORIGINAL);
    let objdir = dirs.out.join("reference_ndebug");
    fs::create_dir_all(&objdir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", objdir.display())));
    let compile = |src: &Path, obj: &Path, flags: &[&str], what: &str| {
        let mut cmd = compiler_command();
        cmd.args(flags)
            .arg("-I")
            .arg(&dirs.cdir)
            .arg("-I")
            .arg(&dirs.kinc)
            .arg("-I")
            .arg(&dirs.hinc)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(obj);
        run(cmd, what);
    };
    let rename_ndebug = |input: &Path, output: &Path, names: &[&str]| {
        let map = objdir.join(format!(
            "{}.redefine",
            output.file_name().unwrap_or_default().to_string_lossy()
        ));
        let text: String = names
            .iter()
            .map(|n| format!("{n} {NDEBUG_PREFIX}{n}\n"))
            .collect();
        fs::write(&map, text)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", map.display())));
        let mut cmd = Command::new(tool("OBJCOPY", "objcopy"));
        cmd.arg(format!("--redefine-syms={}", map.display()))
            .arg(input)
            .arg(output);
        run(cmd, "renaming the non-DEBUG original's symbols");
    };

    // ORIGINAL_CFLAGS less -DDEBUG.
    let flags: Vec<&str> = ORIGINAL_CFLAGS
        .iter()
        .copied()
        .filter(|f| *f != "-DDEBUG")
        .collect();
    let plain = objdir.join("vmm_gpt.o");
    compile(
        &original,
        &plain,
        &flags,
        "compiling the original vmm_gpt.c without DEBUG",
    );
    let mut names: Vec<&str> = DEFINED.to_vec();
    names.extend(STUB_NAMES);
    let renamed = objdir.join("ref_ndebug_vmm_gpt.o");
    rename_ndebug(&plain, &renamed, &names);
    let stubs_plain = objdir.join("stubs.o");
    compile(
        &dirs.cdir.join(STUBS),
        &stubs_plain,
        CFLAGS,
        "assembling the stubs for the non-DEBUG original",
    );
    let stubs = objdir.join("ref_ndebug_stubs.o");
    let mut stub_names: Vec<&str> = STUB_NAMES.to_vec();
    stub_names.push("vmm_gpt_impl_panic");
    rename_ndebug(&stubs_plain, &stubs, &stub_names);

    // Exactly the 21 renamed symbols, importing nothing of the library's
    // and nothing of the DEBUG original's.
    let (defined, undefined) = symbols(&renamed);
    let expected = sorted(DEFINED.iter().map(|s| format!("{NDEBUG_PREFIX}{s}")));
    if defined != expected {
        fail(&format!(
            "after renaming, the non-DEBUG original defines {defined:?}, not {expected:?}"
        ));
    }
    if let Some(bad) = undefined
        .iter()
        .find(|u| u.starts_with("vmm_") || (u.starts_with(PREFIX) && !u.starts_with(NDEBUG_PREFIX)))
    {
        fail(&format!(
            "after renaming, the non-DEBUG original still imports {bad}"
        ));
    }

    let lib = dirs.out.join("libvmm_gpt_difftest_ref_ndebug.a");
    let _ = fs::remove_file(&lib);
    let mut cmd = cc::Build::new().get_archiver();
    cmd.arg("crs").arg(&lib).arg(&renamed).arg(&stubs);
    run(cmd, "archiving the non-DEBUG original");
    println!("cargo:rustc-link-search=native={}", dirs.out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive=vmm_gpt_difftest_ref_ndebug");
    println!("cargo:rustc-cfg=vmm_gpt_reference_ndebug");
}
