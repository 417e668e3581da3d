//! Builds the C side of the test harness.
//!
//! 1. A static library of the vtest runner, the ABI parity checks, every
//!    `ctest/c/test_*.c` and their helpers, linked whole into the test
//!    targets: the tests are reached only through constructors, which a
//!    plain archive link would drop.  The kernel stand-in (the kernel
//!    services, the indirection stubs, the two test PTE formats) is
//!    `vmm-gpt-harness`'s, compiled once there.
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

use std::fs;
use std::path::{Path, PathBuf};

use vmm_gpt_harness_build::{
    compiler_command, env_is_1, fail, have_valgrind_h, library_debug, original, prebuilt,
    rerun_if_changed_tree, run, workspace_root, Harness, CFLAGS, ORIGINAL_CFLAGS,
};

/// The runner and the ABI parity checks in `ctest/c` (which also holds the
/// tests, `test_*.c`, and their helpers: every `.c` and `.S` there is
/// built).
const RUNNER: &[&str] = &["vtest_main.c", "abi_parity.c"];
/// The archive of the runner and the tests.
const TESTS: &str = "vmm_gpt_ctest_tests";
/// The `main` of the executables build.rs links (not part of the test
/// library: it is in a directory of its own).
const MAIN: &str = "main/main.c";

/// The C and assembly sources of `ctest/c` (not its subdirectories), sorted:
/// the runner, the tests (`test_*.c`) and whatever helpers they share (e.g.
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
    for f in RUNNER {
        if !sources.contains(&cdir.join(f)) {
            fail(&format!("{} is missing", cdir.join(f).display()));
        }
    }
    sources
}

/// The harness of vmm-gpt-harness and the tests' directory.
struct Dirs {
    harness: Harness,
    /// `ctest/c`.
    tdir: PathBuf,
}

impl Dirs {
    /// Compiles one C file to `obj` with `flags`, against the tests'
    /// directory, the harness and the headers under test.
    fn compile(&self, src: &Path, obj: &Path, flags: &[&str], what: &str) {
        let mut flags = flags.to_vec();
        let include = format!("-I{}", self.tdir.display());
        flags.push(&include);
        self.harness.compile(src, obj, &flags, what);
    }
}

impl Dirs {
    /// Links `$OUT_DIR/<name>`, an executable of the C unit tests linked
    /// with an implementation other than the Rust test targets' (the
    /// library in the test profile): the runner and the tests (the archive
    /// the test targets get, whole: the tests are reached only through
    /// constructors), the stand-in (whole), the `main` that tells the
    /// runner whether `imp` is the original (`reference`) and a DEBUG build
    /// (`debug`: the original's `ASSERT`s, the library's
    /// `debug_assertions`), and the implementation `imp`.  Returns its path.  `no_pie` for the kernel
    /// objects: the kernel code model's absolute 32-bit relocations
    /// (R_X86_64_32S) cannot go into a position-independent executable.
    fn link(&self, name: &str, reference: bool, debug: bool, imp: &Path, no_pie: bool) -> PathBuf {
        let main = self.harness.subdir("exe").join(format!("main.{name}.o"));
        let reference = format!("-DVTEST_MAIN_REFERENCE={}", u8::from(reference));
        let debug = format!("-DVTEST_MAIN_DEBUG={}", u8::from(debug));
        let flags = [CFLAGS, &[reference.as_str(), debug.as_str()]].concat();
        self.compile(
            &self.tdir.join(MAIN),
            &main,
            &flags,
            "compiling main/main.c",
        );
        let exe = self.harness.out.join(name);
        let mut cmd = compiler_command();
        if no_pie {
            cmd.arg("-no-pie");
        }
        // -rdynamic: modgetsymname() finds symbols through dladdr().
        cmd.arg("-rdynamic")
            .arg("-o")
            .arg(&exe)
            .arg("-Wl,--whole-archive")
            .arg(self.harness.out.join(format!("lib{TESTS}.a")))
            .arg(&self.harness.lib)
            .arg("-Wl,--no-whole-archive")
            .arg(&main)
            .arg(imp)
            .args(["-lpthread", "-ldl"]);
        run(cmd, &format!("linking {name}"));
        exe
    }
}

/// Builds the reference executables from the original:
/// `c_unit_reference` (compiled with `-DDEBUG`, as a DEBUG kernel builds it)
/// and `c_unit_reference_ndebug` (without, as production illumos runs it).
/// Returns their paths.
fn build_references(dirs: &Dirs, original: &Path) -> (PathBuf, PathBuf) {
    let objdir = dirs.harness.subdir("reference");
    // The original must compile cleanly against the headers under test and
    // the stand-ins, both ways.
    let build = |debug: bool| {
        let obj = objdir.join(if debug {
            "vmm_gpt.debug.o"
        } else {
            "vmm_gpt.o"
        });
        let mut flags = ORIGINAL_CFLAGS.to_vec();
        if debug {
            flags.push("-DDEBUG");
        }
        dirs.harness.compile(
            original,
            &obj,
            &flags,
            &format!("compiling the original vmm_gpt.c {}", flags.join(" ")),
        );
        let name = if debug {
            "c_unit_reference"
        } else {
            "c_unit_reference_ndebug"
        };
        dirs.link(name, true, debug, &obj, false)
    };
    (build(true), build(false))
}

fn main() {
    let root = workspace_root(1);
    let dirs = Dirs {
        harness: Harness::from_dep(),
        tdir: root.join("ctest/c"),
    };

    println!("cargo:rerun-if-changed=build.rs");
    rerun_if_changed_tree(&dirs.tdir);

    let sources = c_sources(&dirs.tdir);

    // 1. The runner and the tests, for the test targets (the stand-in comes
    // with the vmm-gpt-harness crate).  abi_parity.c has no code to run: it
    // compiles (with incompatible pointer types an error) or the build
    // fails.
    let mut build = cc::Build::new();
    build
        .include(&dirs.tdir)
        .include(&dirs.harness.cdir)
        .include(&dirs.harness.kinc)
        .include(&dirs.harness.hinc)
        .files(&sources)
        .flag("-Werror=incompatible-pointer-types")
        // The tests are reached only through constructors: link it whole.
        .link_lib_modifier("+whole-archive");
    for flag in CFLAGS {
        build.flag(flag);
    }
    build.compile(TESTS);
    // modgetsymname() names symbols through dladdr(), which sees only the
    // dynamic symbol table.
    println!("cargo:rustc-link-arg-tests=-rdynamic");

    // Whether the library linked into the Rust test targets (c_unit) is a
    // DEBUG build, by the library's own rule.
    println!(
        "cargo:rustc-env=VMM_GPT_LIBRARY_DEBUG={}",
        u8::from(library_debug())
    );
    have_valgrind_h(&dirs.harness.out);

    // 2. The reference executables.
    let (reference, reference_ndebug) = match original(&root) {
        Some(original) => {
            let (debug, ndebug) = build_references(&dirs, &original);
            (debug.display().to_string(), ndebug.display().to_string())
        }
        None => (String::new(), String::new()),
    };
    println!("cargo:rustc-env=VMM_GPT_REFERENCE_EXE={reference}");
    println!("cargo:rustc-env=VMM_GPT_REFERENCE_NDEBUG_EXE={reference_ndebug}");

    // 3. The executables of the library's builds that ship.
    build_library_exes(&dirs, &root);
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
    /// here: for both kernel objects, not for the staticlib (scripts/test.sh
    /// runs clippy, which runs this script, before the release build;
    /// `c_unit_release` fails instead).
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
        how: "run illumos-build/build.sh and point it at target/kernel/vmm_gpt.debug.o",
        exe: "c_unit_kernel_object_debug",
        exe_var: "VMM_GPT_KERNEL_OBJECT_DEBUG_EXE",
        kernel: true,
        required: true,
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
fn build_library_exes(dirs: &Dirs, root: &Path) {
    let require = env_is_1("VMM_GPT_REQUIRE_KERNEL_OBJECT");
    for s in &SHIPPED {
        let Some(file) = prebuilt(s.var, root, s.how) else {
            if require && s.required {
                fail(&format!(
                    "VMM_GPT_REQUIRE_KERNEL_OBJECT=1, but {} is not set: {}",
                    s.var, s.how
                ));
            }
            println!("cargo:rustc-env={}=", s.exe_var);
            continue;
        };
        let exe = dirs.link(s.exe, false, s.debug, &file, s.kernel);
        println!("cargo:rustc-env={}={}", s.exe_var, exe.display());
    }
}
