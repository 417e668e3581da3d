//! Builds the C side of the test harness.
//!
//! 1. A static library of the harness (`ctest/c`: the kernel stand-in, the
//!    indirection stubs, the two test PTE formats, the vtest runner, the ABI
//!    parity checks), of every `ctest/c/test_*.c` and of their helpers,
//!    linked whole into the test targets: the tests are reached only through
//!    constructors, which a plain archive link would drop.
//! 2. With `ILLUMOS_GATE` set, the reference executables: the same tests
//!    linked with the original illumos `vmm_gpt.c` (an external input,
//!    compiled from the checkout, never copied) instead of the library,
//!    `$OUT_DIR/c_unit_reference` compiled with `-DDEBUG` (as a DEBUG kernel
//!    builds it) and `$OUT_DIR/c_unit_reference_ndebug` without (as
//!    production illumos runs it).  Their paths reach the tests
//!    `c_unit_reference` and `c_unit_reference_ndebug` as
//!    `VMM_GPT_REFERENCE_EXE` and `VMM_GPT_REFERENCE_NDEBUG_EXE` (empty when
//!    not built).  `VMM_GPT_REQUIRE_REFERENCE=1` makes a missing
//!    `ILLUMOS_GATE` an error.
//! 3. With `VMM_GPT_KERNEL_OBJECT` (and `VMM_GPT_KERNEL_OBJECT_DEBUG`) set to
//!    objects from illumos-build/build.sh, `$OUT_DIR/c_unit_kernel_object`
//!    (`_debug`), and with `VMM_GPT_RELEASE_STATICLIB` set to the release
//!    staticlib, `$OUT_DIR/c_unit_release`: the same tests linked with the
//!    library's code as it ships, and no Rust runtime; see
//!    `build_library_exes`.
//!
//! Every executable's `main` (`ctest/c/main/main.c`) tells the runner
//! whether the original or the library is linked in and whether it is a
//! DEBUG build; the Rust test target `c_unit` (the library as the test
//! profile builds it, with `debug_assertions`) passes the same from Rust.

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
/// The `main` of the executables build.rs links (not part of the harness
/// library: it is in a directory of its own).
const MAIN: &str = "main/main.c";
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

/// The C and assembly sources of `ctest/c` (not its subdirectories), sorted:
/// the harness, the tests (`test_*.c`) and whatever helpers they share (e.g.
/// `tutil.c`).
fn c_sources(cdir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(cdir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", cdir.display())));
    let mut sources: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && (name.ends_with(".c") || name.ends_with(".S"))
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

/// How an executable's implementation was built: what the vtest runner
/// is told (`vtest_reference`, `vtest_debug`) through the `main` it gets.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Kind {
    /// The original `vmm_gpt.c`, not the library's code.
    reference: bool,
    /// A DEBUG build: the original's `ASSERT`s (the library's
    /// `debug_assertions`) are live.
    debug: bool,
}

/// The executables of the C unit tests linked with an implementation other
/// than the Rust test targets' (the library in the test profile): the
/// harness and test objects are compiled once, the `main` once per kind.
struct Linker<'a> {
    dirs: &'a Dirs,
    sources: &'a [PathBuf],
    /// The harness and the tests, compiled on first use.
    objs: Option<Vec<PathBuf>>,
    /// `ctest/c/main/main.c`, compiled per kind.
    mains: Vec<(Kind, PathBuf)>,
}

impl<'a> Linker<'a> {
    fn new(dirs: &'a Dirs, sources: &'a [PathBuf]) -> Self {
        Linker {
            dirs,
            sources,
            objs: None,
            mains: Vec::new(),
        }
    }

    fn objdir(&self) -> PathBuf {
        let objdir = self.dirs.out.join("exe");
        fs::create_dir_all(&objdir)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", objdir.display())));
        objdir
    }

    /// The harness and the tests, as the Rust test targets get them, but
    /// compiled into objects of their own.  abi_parity.c is a compile-time
    /// check of the headers: the test targets' build has done it.
    fn harness(&mut self) -> Vec<PathBuf> {
        if let Some(objs) = &self.objs {
            return objs.clone();
        }
        let objdir = self.objdir();
        let abi_parity = self.dirs.cdir.join("abi_parity.c");
        let mut objs = Vec::new();
        for src in self.sources.iter().filter(|s| **s != abi_parity) {
            let name = src.file_name().expect("a file name").to_string_lossy();
            let obj = objdir.join(format!("{name}.o"));
            self.dirs.compile(
                src,
                &obj,
                CFLAGS,
                &format!("compiling {name} for the test executables"),
            );
            objs.push(obj);
        }
        self.objs = Some(objs.clone());
        objs
    }

    /// `main.c` for `kind`.
    fn main_obj(&mut self, kind: Kind) -> PathBuf {
        if let Some((_, obj)) = self.mains.iter().find(|(k, _)| *k == kind) {
            return obj.clone();
        }
        let obj = self.objdir().join(format!(
            "main.{}.{}.o",
            if kind.reference {
                "original"
            } else {
                "library"
            },
            if kind.debug { "debug" } else { "ndebug" }
        ));
        let mut flags = CFLAGS.to_vec();
        let reference = format!("-DVTEST_MAIN_REFERENCE={}", u8::from(kind.reference));
        let debug = format!("-DVTEST_MAIN_DEBUG={}", u8::from(kind.debug));
        flags.push(&reference);
        flags.push(&debug);
        self.dirs.compile(
            &self.dirs.cdir.join(MAIN),
            &obj,
            &flags,
            "compiling main/main.c",
        );
        self.mains.push((kind, obj.clone()));
        obj
    }

    /// Links `$OUT_DIR/<name>` from the harness, the tests, the `main` of
    /// `kind` and the implementation `imp` (objects or archives), and
    /// returns its path.  `no_pie` for the kernel objects: the kernel code
    /// model's absolute 32-bit relocations (R_X86_64_32S) cannot go into a
    /// position-independent executable.
    fn link(&mut self, name: &str, kind: Kind, imp: &[PathBuf], no_pie: bool) -> PathBuf {
        let harness = self.harness();
        let main = self.main_obj(kind);
        let exe = self.dirs.out.join(name);
        let mut cmd = compiler_command();
        if no_pie {
            cmd.arg("-no-pie");
        }
        // -rdynamic: modgetsymname() finds symbols through dladdr().
        cmd.arg("-rdynamic")
            .arg("-o")
            .arg(&exe)
            .args(&harness)
            .arg(&main)
            .args(imp)
            .args(["-lpthread", "-ldl"]);
        run(cmd, &format!("linking {name}"));
        exe
    }
}

/// Builds the reference executables from the original in `gate`:
/// `c_unit_reference` (compiled with `-DDEBUG`, as a DEBUG kernel builds it)
/// and `c_unit_reference_ndebug` (without, as production illumos runs it).
/// Returns their paths.
fn build_references(linker: &mut Linker, gate: &Path) -> (PathBuf, PathBuf) {
    let original = gate.join(ORIGINAL);
    println!("cargo:rerun-if-changed={}", original.display());
    if !original.is_file() {
        fail(&format!(
            "ILLUMOS_GATE={}: the original {} is not there",
            gate.display(),
            original.display()
        ));
    }
    let objdir = linker.dirs.out.join("reference");
    fs::create_dir_all(&objdir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", objdir.display())));

    // The original must compile cleanly against the headers under test and
    // the stand-ins, both ways.
    let ndebug_obj = objdir.join("vmm_gpt.o");
    let debug_obj = objdir.join("vmm_gpt.debug.o");
    let mut flags = ORIGINAL_CFLAGS.to_vec();
    linker.dirs.compile(
        &original,
        &ndebug_obj,
        &flags,
        "compiling the original vmm_gpt.c",
    );
    flags.push("-DDEBUG");
    linker.dirs.compile(
        &original,
        &debug_obj,
        &flags,
        "compiling the original vmm_gpt.c with -DDEBUG",
    );
    let debug = Kind {
        reference: true,
        debug: true,
    };
    let ndebug = Kind {
        reference: true,
        debug: false,
    };
    (
        linker.link("c_unit_reference", debug, &[debug_obj], false),
        linker.link("c_unit_reference_ndebug", ndebug, &[ndebug_obj], false),
    )
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

    // Whether the library linked into the Rust test targets (c_unit) is a
    // DEBUG build, by the library's own rule (its build.rs): VMM_GPT_DEBUG=1
    // or 0, else the profile's debug assertions, which this package shares
    // with the library.
    println!("cargo:rerun-if-env-changed=VMM_GPT_DEBUG");
    let library_debug = match env::var("VMM_GPT_DEBUG").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some(),
    };
    println!(
        "cargo:rustc-env=VMM_GPT_LIBRARY_DEBUG={}",
        u8::from(library_debug)
    );

    // kernel.c tells valgrind about its code patches through a client
    // request from <valgrind/valgrind.h> (shipped with valgrind); without the
    // header, c_unit.rs has valgrind check all code for changes instead.
    let have_vg_h = compiles("#include <valgrind/valgrind.h>\n", &dirs.out);
    println!(
        "cargo:rustc-env=VMM_GPT_HAVE_VALGRIND_H={}",
        if have_vg_h { "1" } else { "0" }
    );

    let mut linker = Linker::new(&dirs, &sources);

    // 2. The reference executables.
    let require = env::var("VMM_GPT_REQUIRE_REFERENCE").is_ok_and(|v| v == "1");
    let (reference, reference_ndebug) = match env::var_os("ILLUMOS_GATE").filter(|g| !g.is_empty())
    {
        Some(gate) => {
            let gate = resolve_gate(&gate, &root, &manifest);
            let (debug, ndebug) = build_references(&mut linker, &gate);
            (debug.display().to_string(), ndebug.display().to_string())
        }
        None if require => fail(
            "VMM_GPT_REQUIRE_REFERENCE=1, but ILLUMOS_GATE is not set: point it at an \
                 illumos-gate checkout holding the original (../shared/illumos-gate)",
        ),
        None => (String::new(), String::new()),
    };
    println!("cargo:rustc-env=VMM_GPT_REFERENCE_EXE={reference}");
    println!("cargo:rustc-env=VMM_GPT_REFERENCE_NDEBUG_EXE={reference_ndebug}");

    // 3. The executables of the library's builds that ship.
    build_library_exes(&mut linker, &root);
}

/// A build of the library that ships, given to build.rs as a file.
struct Shipped {
    /// The variable naming the file.
    var: &'static str,
    /// Whether it is a DEBUG build.
    debug: bool,
    /// How to make it.
    how: &'static str,
    /// The executable linked with it, and the variable that passes the
    /// executable's path to the test.
    exe: &'static str,
    exe_var: &'static str,
    /// A kernel object (linked into a non-PIE executable).
    kernel: bool,
    /// Whether `VMM_GPT_REQUIRE_KERNEL_OBJECT=1` makes its absence an error
    /// here.  Not for the DEBUG object (it needs a nightly toolchain), nor
    /// for the staticlib: scripts/test.sh runs clippy, which runs this
    /// script, before the release build; `c_unit_release` fails instead.
    required: bool,
}

const SHIPPED: [Shipped; 3] = [
    Shipped {
        var: "VMM_GPT_KERNEL_OBJECT",
        debug: false,
        how: "run illumos-build/build.sh and point it at target/kernel/vmm_gpt.o",
        exe: "c_unit_kernel_object",
        exe_var: "VMM_GPT_KERNEL_OBJECT_EXE",
        kernel: true,
        required: true,
    },
    Shipped {
        var: "VMM_GPT_KERNEL_OBJECT_DEBUG",
        debug: true,
        how: "run illumos-build/build.sh (with a nightly toolchain) and point it at \
              target/kernel/vmm_gpt.debug.o",
        exe: "c_unit_kernel_object_debug",
        exe_var: "VMM_GPT_KERNEL_OBJECT_DEBUG_EXE",
        kernel: true,
        required: false,
    },
    Shipped {
        var: "VMM_GPT_RELEASE_STATICLIB",
        debug: false,
        how: "run cargo build --release -p vmm-gpt and point it at target/release/libvmm_gpt.a",
        exe: "c_unit_release",
        exe_var: "VMM_GPT_RELEASE_EXE",
        kernel: false,
        required: false,
    },
];

/// With `VMM_GPT_KERNEL_OBJECT`, `VMM_GPT_KERNEL_OBJECT_DEBUG` naming kernel
/// objects from illumos-build/build.sh and `VMM_GPT_RELEASE_STATICLIB` the
/// release staticlib (`cargo build --release -p vmm-gpt`), links the C unit
/// tests with each of them, the kernel stand-in, the stubs and the PTE
/// formats, and no Rust runtime besides what the staticlib holds: the code
/// that ships is the code that is tested.  The tests `c_unit_kernel_object`
/// and `c_unit_release` run them (and skip without them, or fail with
/// `VMM_GPT_REQUIRE_KERNEL_OBJECT=1`, which also makes a missing
/// `VMM_GPT_KERNEL_OBJECT` an error here; see `Shipped::required`).
fn build_library_exes(linker: &mut Linker, root: &Path) {
    println!("cargo:rerun-if-env-changed=VMM_GPT_REQUIRE_KERNEL_OBJECT");
    let require = env::var("VMM_GPT_REQUIRE_KERNEL_OBJECT").is_ok_and(|v| v == "1");
    for s in &SHIPPED {
        println!("cargo:rerun-if-env-changed={}", s.var);
        let Some(file) = env::var_os(s.var).filter(|v| !v.is_empty()) else {
            if require && s.required {
                fail(&format!(
                    "VMM_GPT_REQUIRE_KERNEL_OBJECT=1, but {} is not set: {}",
                    s.var, s.how
                ));
            }
            println!("cargo:rustc-env={}=", s.exe_var);
            continue;
        };
        let file = root.join(file); // a relative path is from the workspace root
        println!("cargo:rerun-if-changed={}", file.display());
        if !file.is_file() {
            fail(&format!(
                "{}={}: no such file ({})",
                s.var,
                file.display(),
                s.how
            ));
        }
        let kind = Kind {
            reference: false,
            debug: s.debug,
        };
        let exe = linker.link(s.exe, kind, &[file], s.kernel);
        println!("cargo:rustc-env={}={}", s.exe_var, exe.display());
    }
}
