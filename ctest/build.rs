//! Builds the C side of the test harness.
//!
//! 1. A static library of the harness (`ctest/c`: the kernel stand-in, the
//!    indirection stubs, the two test PTE formats, the vtest runner, the ABI
//!    parity checks), of every `ctest/c/test_*.c` and of their helpers,
//!    linked whole into the test targets: the tests are reached only through
//!    constructors, which a plain archive link would drop.
//! 2. With `ILLUMOS_GATE` set, the reference executable
//!    `$OUT_DIR/c_unit_reference`: the same tests linked with the original
//!    illumos `vmm_gpt.c` (an external input, compiled from the checkout, never
//!    copied) instead of the library.  Its path reaches the
//!    `c_unit_reference` test as `VMM_GPT_REFERENCE_EXE` (empty when not
//!    built).  `VMM_GPT_REQUIRE_REFERENCE=1` makes a missing `ILLUMOS_GATE` an
//!    error.
//! 3. With `VMM_GPT_KERNEL_OBJECT` (and `VMM_GPT_KERNEL_OBJECT_DEBUG`) set to
//!    objects from illumos-build/build.sh, `$OUT_DIR/c_unit_kernel_object`
//!    (`_debug`): the same tests linked with that kernel object and no Rust
//!    runtime; see `build_kernel_object_exes`.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// Flags of all harness and test C code.
const CFLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-std=gnu11", "-g"];
/// Flags of the original `vmm_gpt.c`: not `-Wextra`, which it is not written
/// for (an unused parameter, e.g.).
const ORIGINAL_CFLAGS: &[&str] = &["-Wall", "-Werror", "-std=gnu11", "-g"];
/// The harness sources in `ctest/c` (which also holds the tests, `test_*.c`,
/// and their helpers: every `.c` and `.S` there is built).
const HARNESS: &[&str] = &[
    "kernel.c",
    "stubs.S",
    "pte_ept.c",
    "pte_rvi.c",
    "vtest_main.c",
    "abi_parity.c",
];
/// The `main` of the reference executable.
const REF_MAIN: &str = "ref_main.c";
/// Where an illumos-gate checkout has the original.
const ORIGINAL: &str = "usr/src/uts/intel/io/vmm/vmm_gpt.c";

/// Ends the build script with an error message (shown by cargo).
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(1);
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(env::var_os(name).unwrap_or_else(|| fail(&format!("{name} is not set"))))
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

/// The C and assembly sources of `ctest/c`, sorted: the harness, the tests
/// (`test_*.c`) and whatever helpers they share (e.g. `tutil.c`).
/// `ref_main.c` (a `main`) is only for the reference executable.
fn c_sources(cdir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(cdir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", cdir.display())));
    let mut sources: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.ends_with(".c") || name.ends_with(".S")) && name != REF_MAIN
        })
        .collect();
    sources.sort();
    for f in HARNESS {
        if !sources.contains(&cdir.join(f)) {
            fail(&format!("{} is missing", cdir.join(f).display()));
        }
    }
    sources
}

/// The C compiler that cc would use, with its target, code generation and
/// optimization flags, and of its warning flags only `-Wall` (each
/// compilation adds what else it wants: `-Wextra` is not for the original).
fn compiler_command() -> Command {
    cc::Build::new()
        .warnings(true)
        .extra_warnings(false)
        .get_compiler()
        .to_command()
}

/// Runs a compiler command; on failure, ends the build with its output.
fn run(mut cmd: Command, what: &str) {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("{what}: cannot run {shown}: {e}")));
    if !output.status.success() {
        fail(&format!(
            "{what} failed ({}):\n{shown}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
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

/// Where `ILLUMOS_GATE` points.  A relative path is taken from the workspace
/// root first (the docs say `../shared/illumos-gate`, from the root), then
/// from this package's directory, where build scripts run.
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

impl Dirs {
    /// Compiles one C file to `obj` with `flags`, against the harness, the
    /// kernel stand-in headers and the headers under test; on failure, ends
    /// the build with the compiler's output (`what` says what failed).
    fn compile(&self, src: &Path, obj: &Path, flags: &[&str], what: &str) {
        let mut cmd = compiler_command();
        cmd.args(flags)
            .arg("-I")
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
}

/// Builds `$OUT_DIR/c_unit_reference` and returns its path.
fn build_reference(dirs: &Dirs, gate: &Path, sources: &[PathBuf]) -> PathBuf {
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

    // The original must compile cleanly against the headers under test and
    // the stand-ins, as a non-DEBUG and as a DEBUG kernel would build it; the
    // DEBUG object (ASSERTs on) is the one linked.
    let mut objs = Vec::new();
    let debug_obj = objdir.join("vmm_gpt.debug.o");
    let mut flags = ORIGINAL_CFLAGS.to_vec();
    dirs.compile(
        &original,
        &objdir.join("vmm_gpt.o"),
        &flags,
        "compiling the original vmm_gpt.c",
    );
    flags.push("-DDEBUG");
    dirs.compile(
        &original,
        &debug_obj,
        &flags,
        "compiling the original vmm_gpt.c with -DDEBUG",
    );
    objs.push(debug_obj);

    // abi_parity.c is a compile-time check of the headers: the test
    // targets' build has done it.
    let abi_parity = dirs.cdir.join("abi_parity.c");
    let ref_main = dirs.cdir.join(REF_MAIN);
    for src in sources
        .iter()
        .filter(|s| **s != abi_parity)
        .chain([&ref_main])
    {
        let name = src.file_name().expect("a file name").to_string_lossy();
        let obj = objdir.join(format!("{name}.o"));
        dirs.compile(
            src,
            &obj,
            CFLAGS,
            &format!("compiling {name} for the reference"),
        );
        objs.push(obj);
    }

    // -rdynamic: modgetsymname() finds symbols through dladdr().
    let exe = dirs.out.join("c_unit_reference");
    let mut cmd = compiler_command();
    cmd.arg("-rdynamic")
        .arg("-o")
        .arg(&exe)
        .args(&objs)
        .args(["-lpthread", "-ldl"]);
    run(cmd, "linking the reference executable");
    exe
}

fn main() {
    let manifest = env_path("CARGO_MANIFEST_DIR");
    let root = manifest
        .parent()
        .unwrap_or_else(|| fail("the package has no parent directory"))
        .to_path_buf();
    let dirs = Dirs {
        cdir: manifest.join("c"),
        kinc: manifest.join("include"),
        hinc: root.join("include"),
        out: env_path("OUT_DIR"),
    };

    println!("cargo:rerun-if-changed=build.rs");
    rerun_if_changed_tree(&dirs.cdir);
    rerun_if_changed_tree(&dirs.kinc);
    rerun_if_changed_tree(&dirs.hinc);
    println!("cargo:rerun-if-env-changed=ILLUMOS_GATE");
    println!("cargo:rerun-if-env-changed=VMM_GPT_REQUIRE_REFERENCE");

    let sources = c_sources(&dirs.cdir);

    // 1. The harness library of the test targets.  abi_parity.c has no code
    // to run: it compiles (with incompatible pointer types an error) or the
    // build fails.
    let mut build = cc::Build::new();
    build
        .include(&dirs.cdir)
        .include(&dirs.kinc)
        .include(&dirs.hinc)
        .files(&sources)
        .flag("-Werror=incompatible-pointer-types")
        // The tests are reached only through constructors: link it whole.
        .link_lib_modifier("+whole-archive");
    for flag in CFLAGS {
        build.flag(flag);
    }
    build.compile("vmm_gpt_ctest_harness");
    println!("cargo:rustc-link-lib=dylib=pthread");
    println!("cargo:rustc-link-lib=dylib=dl");
    // modgetsymname() names symbols through dladdr(), which sees only the
    // dynamic symbol table.
    println!("cargo:rustc-link-arg-tests=-rdynamic");

    // kernel.c tells valgrind about its code patches through a client
    // request from <valgrind/valgrind.h> (shipped with valgrind); without the
    // header, c_unit.rs has valgrind check all code for changes instead.
    let have_vg_h = compiles("#include <valgrind/valgrind.h>\n", &dirs.out);
    println!(
        "cargo:rustc-env=VMM_GPT_HAVE_VALGRIND_H={}",
        if have_vg_h { "1" } else { "0" }
    );

    // 2. The reference executable.
    let require = env::var("VMM_GPT_REQUIRE_REFERENCE").is_ok_and(|v| v == "1");
    match env::var_os("ILLUMOS_GATE").filter(|g| !g.is_empty()) {
        Some(gate) => {
            let gate = resolve_gate(&gate, &root, &manifest);
            let exe = build_reference(&dirs, &gate, &sources);
            println!("cargo:rustc-env=VMM_GPT_REFERENCE_EXE={}", exe.display());
        }
        None if require => fail(
            "VMM_GPT_REQUIRE_REFERENCE=1, but ILLUMOS_GATE is not set: point it at an \
             illumos-gate checkout holding the original (../shared/illumos-gate)",
        ),
        None => println!("cargo:rustc-env=VMM_GPT_REFERENCE_EXE="),
    }

    // 3. The kernel-object executables.
    build_kernel_object_exes(&dirs, &root, &sources);
}

/// The kernel objects that illumos-build/build.sh makes, and the
/// executables linked with them: (variable naming the object, executable,
/// variable that passes its path to the test).
const KERNEL_OBJECTS: [(&str, &str, &str); 2] = [
    (
        "VMM_GPT_KERNEL_OBJECT",
        "c_unit_kernel_object",
        "VMM_GPT_KERNEL_OBJECT_EXE",
    ),
    (
        "VMM_GPT_KERNEL_OBJECT_DEBUG",
        "c_unit_kernel_object_debug",
        "VMM_GPT_KERNEL_OBJECT_DEBUG_EXE",
    ),
];

/// With `VMM_GPT_KERNEL_OBJECT` (and `VMM_GPT_KERNEL_OBJECT_DEBUG`) naming
/// kernel objects from illumos-build/build.sh, links the C unit tests with
/// each of them, the kernel stand-in, the stubs and the PTE formats, and no
/// Rust runtime: the object that ships is the object that is tested.  The
/// test `c_unit_kernel_object` runs them (skips without them; with
/// `VMM_GPT_REQUIRE_KERNEL_OBJECT=1` a missing object is an error here).
fn build_kernel_object_exes(dirs: &Dirs, root: &Path, sources: &[PathBuf]) {
    println!("cargo:rerun-if-env-changed=VMM_GPT_REQUIRE_KERNEL_OBJECT");
    let require = env::var("VMM_GPT_REQUIRE_KERNEL_OBJECT").is_ok_and(|v| v == "1");
    let mut objs: Option<Vec<PathBuf>> = None;
    for (var, name, exe_var) in KERNEL_OBJECTS {
        println!("cargo:rerun-if-env-changed={var}");
        let Some(obj) = env::var_os(var).filter(|v| !v.is_empty()) else {
            if require && var == "VMM_GPT_KERNEL_OBJECT" {
                fail(
                    "VMM_GPT_REQUIRE_KERNEL_OBJECT=1, but VMM_GPT_KERNEL_OBJECT is not set: \
                     run illumos-build/build.sh and point it at target/kernel/vmm_gpt.o",
                );
            }
            println!("cargo:rustc-env={exe_var}=");
            continue;
        };
        let obj = root.join(obj); // a relative path is from the workspace root
        println!("cargo:rerun-if-changed={}", obj.display());
        if !obj.is_file() {
            fail(&format!(
                "{var}={}: no such object (run illumos-build/build.sh)",
                obj.display()
            ));
        }
        let harness = objs.get_or_insert_with(|| compile_kernel_object_harness(dirs, sources));
        // -no-pie: the kernel code model's absolute 32-bit relocations
        // (R_X86_64_32S) cannot go into a position-independent executable.
        // -rdynamic: modgetsymname() finds symbols through dladdr().
        let exe = dirs.out.join(name);
        let mut cmd = compiler_command();
        cmd.args(["-no-pie", "-rdynamic", "-o"])
            .arg(&exe)
            .args(harness.iter())
            .arg(&obj)
            .args(["-lpthread", "-ldl"]);
        run(cmd, &format!("linking {name} with {}", obj.display()));
        println!("cargo:rustc-env={exe_var}={}", exe.display());
    }
}

/// Compiles the harness and the tests (as for the reference, but with the
/// kernel-object main) into `$OUT_DIR/kernel_object`.
fn compile_kernel_object_harness(dirs: &Dirs, sources: &[PathBuf]) -> Vec<PathBuf> {
    let objdir = dirs.out.join("kernel_object");
    fs::create_dir_all(&objdir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", objdir.display())));
    let abi_parity = dirs.cdir.join("abi_parity.c");
    let main = dirs.cdir.join("kernel_object/main.c");
    let mut objs = Vec::new();
    for src in sources.iter().filter(|s| **s != abi_parity).chain([&main]) {
        let name = src.file_name().expect("a file name").to_string_lossy();
        let obj = objdir.join(format!("{name}.o"));
        dirs.compile(
            src,
            &obj,
            CFLAGS,
            &format!("compiling {name} for the kernel-object tests"),
        );
        objs.push(obj);
    }
    objs
}
