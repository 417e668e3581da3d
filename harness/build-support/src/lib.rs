//! What the test crates' build scripts share: one strict flag set, the
//! compile, rename (`objcopy --redefine-syms`), symbol-check (`nm`) and
//! archive steps, the original's location in an illumos-gate checkout, and
//! the library's DEBUG rule.  Used as a build-dependency by
//! `vmm-gpt-harness` (the kernel stand-in), `vmm-gpt-ctest` (the C unit
//! test executables) and `vmm-gpt-difftest` (the renamed implementations).

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// Flags of all harness and test C code.
pub const CFLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-std=gnu11", "-g"];
/// Flags of the original `vmm_gpt.c`: not `-Wextra`, which it is not
/// written for (an unused parameter, e.g.); `-DDEBUG` is added for DEBUG.
pub const ORIGINAL_CFLAGS: &[&str] = &["-Wall", "-Werror", "-std=gnu11", "-g"];
/// `VMM_GPT_SANITIZE=1`: ASan and UBSan, every error fatal.
pub const SANITIZE_CFLAGS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];
/// Where an illumos-gate checkout has the original.
pub const ORIGINAL: &str = "usr/src/uts/intel/io/vmm/vmm_gpt.c";
/// The stubs: defined by the harness's `stubs.S`, called by every
/// implementation.
pub const STUB_NAMES: [&str; 3] = ["vmm_gpti_map_table", "vmm_gpti_map_page", "vmm_gpti_parse"];
/// ASan's ODR indicator of a global `x` is `__odr_asan.x`: renamed along.
const ODR: &str = "__odr_asan.";

/// Ends the build script with an error message (shown by cargo).
pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(1);
}

pub fn env_path(name: &str) -> PathBuf {
    PathBuf::from(env::var_os(name).unwrap_or_else(|| fail(&format!("{name} is not set"))))
}

/// Whether `name` is `1` (and rerun when it changes).
pub fn env_is_1(name: &str) -> bool {
    println!("cargo:rerun-if-env-changed={name}");
    env::var(name).is_ok_and(|v| v == "1")
}

/// The workspace root: the parent of the package running the script
/// (`depth` directories up).
pub fn workspace_root(depth: usize) -> PathBuf {
    let mut root = env_path("CARGO_MANIFEST_DIR");
    for _ in 0..depth {
        root = root
            .parent()
            .unwrap_or_else(|| fail("the package has no parent directory"))
            .to_path_buf();
    }
    root
}

/// The 21 global symbols the original defines: `illumos-build/exports.txt`.
pub fn exports(root: &Path) -> Vec<String> {
    list_file(root, "illumos-build/exports.txt")
}

/// The opt-in extension's exports (`illumos-build/exports-harvest.txt`):
/// what the objects of `build.sh --harvest` and the staticlib built with
/// the cargo feature `harvest-dirty` define beside the 21.
pub fn exports_harvest(root: &Path) -> Vec<String> {
    list_file(root, "illumos-build/exports-harvest.txt")
}

/// The names of a list file under `root`: one a line, `#` comments.
fn list_file(root: &Path, file: &str) -> Vec<String> {
    let path = root.join(file);
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Whether the library linked as a crate is a DEBUG build, by its own rule
/// (its build.rs: `cfg(vmm_gpt_debug)`): `VMM_GPT_DEBUG=1` or `0`, else the
/// profile's debug assertions, which the calling package shares with it.
pub fn library_debug() -> bool {
    println!("cargo:rerun-if-env-changed=VMM_GPT_DEBUG");
    match env::var("VMM_GPT_DEBUG").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some(),
    }
}

/// A tool from the environment, `VMM_GPT_<var>` (`VMM_GPT_OBJCOPY=...`:
/// the names `illumos-build/build.sh` reads too), else by its plain name.
pub fn tool(var: &str, default: &str) -> OsString {
    let var = format!("VMM_GPT_{var}");
    println!("cargo:rerun-if-env-changed={var}");
    env::var_os(&var).unwrap_or_else(|| default.into())
}

/// Asks cargo to rerun the script when `dir` or anything under it changes.
pub fn rerun_if_changed_tree(dir: &Path) {
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

/// Runs a command; on failure, ends the build with its output.  Returns
/// its standard output.
pub fn run(mut cmd: Command, what: &str) -> String {
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
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
/// optimization flags, and of its warning flags only `-Wall` (each
/// compilation adds what else it wants: `-Wextra` is not for the original).
pub fn compiler_command() -> Command {
    cc::Build::new()
        .warnings(true)
        .extra_warnings(false)
        .get_compiler()
        .to_command()
}

/// The archiver that cc would use.
pub fn archiver() -> Command {
    cc::Build::new().get_archiver()
}

/// Whether the C compiler accepts `source` (preprocessing only).
pub fn compiles(source: &str, out: &Path) -> bool {
    let probe = out.join("probe.c");
    if fs::write(&probe, source).is_err() {
        return false;
    }
    let mut cmd = compiler_command();
    cmd.arg("-E").arg(&probe).arg("-o").arg(out.join("probe.i"));
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Sets `VMM_GPT_HAVE_VALGRIND_H` for the crate: kernel.c tells valgrind
/// about its code patches through a client request from
/// `<valgrind/valgrind.h>` when it is there; else valgrind is told to check
/// all code for changes.
pub fn have_valgrind_h(out: &Path) {
    let have = compiles("#include <valgrind/valgrind.h>\n", out);
    println!("cargo:rustc-env=VMM_GPT_HAVE_VALGRIND_H={}", u8::from(have));
}

/// The original in the checkout `ILLUMOS_GATE` names, or `None` when it is
/// unset (an error with `VMM_GPT_REQUIRE_REFERENCE=1`).  A relative path is
/// taken from the workspace root first, then from the package's directory.
pub fn original(root: &Path) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=ILLUMOS_GATE");
    let require = env_is_1("VMM_GPT_REQUIRE_REFERENCE");
    let Some(gate) = env::var_os("ILLUMOS_GATE").filter(|g| !g.is_empty()) else {
        if require {
            fail(
                "VMM_GPT_REQUIRE_REFERENCE=1, but ILLUMOS_GATE is not set: point it at an \
                 illumos-gate checkout holding the original (../shared/illumos-gate)",
            );
        }
        return None;
    };
    let gate = PathBuf::from(gate);
    let manifest = env_path("CARGO_MANIFEST_DIR");
    let gate = if gate.is_absolute() {
        gate
    } else {
        [root, &manifest]
            .iter()
            .map(|b| b.join(&gate))
            .find(|p| p.join(ORIGINAL).is_file())
            .unwrap_or_else(|| root.join(&gate))
    };
    let original = gate.join(ORIGINAL);
    println!("cargo:rerun-if-changed={}", original.display());
    if !original.is_file() {
        fail(&format!(
            "ILLUMOS_GATE={}: the original {} is not there",
            gate.display(),
            original.display()
        ));
    }
    Some(original)
}

/// A file built elsewhere, named by the environment variable `var` (a
/// relative path is from the workspace root); `None` when unset.
pub fn prebuilt(var: &str, root: &Path, how: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    let file = root.join(env::var_os(var).filter(|v| !v.is_empty())?);
    println!("cargo:rerun-if-changed={}", file.display());
    if !file.is_file() {
        fail(&format!("{var}={}: no such file ({how})", file.display()));
    }
    Some(file)
}

/// The harness of `vmm-gpt-harness`, as its build script hands it to the
/// build scripts of the packages depending on it (`DEP_VMM_GPT_HARNESS_*`).
pub struct Harness {
    /// `harness/c`: the stand-in's sources and `ktest.h`.
    pub cdir: PathBuf,
    /// `harness/include`: the stand-in headers the original's includes need.
    pub kinc: PathBuf,
    /// `include`: the library's headers.
    pub hinc: PathBuf,
    /// The stand-in, compiled once: `libvmm_gpt_harness.a`.
    pub lib: PathBuf,
    /// `OUT_DIR` of the package running the script.
    pub out: PathBuf,
}

impl Harness {
    /// From the `DEP_VMM_GPT_HARNESS_*` variables.
    pub fn from_dep() -> Self {
        Harness {
            cdir: env_path("DEP_VMM_GPT_HARNESS_CDIR"),
            kinc: env_path("DEP_VMM_GPT_HARNESS_KINC"),
            hinc: env_path("DEP_VMM_GPT_HARNESS_HINC"),
            lib: env_path("DEP_VMM_GPT_HARNESS_LIB"),
            out: env_path("OUT_DIR"),
        }
    }

    /// Compiles (or assembles) `src` into `obj` with `flags`, against the
    /// harness, the stand-in headers and the library's headers; on failure,
    /// ends the build with the compiler's output (`what` says what failed).
    pub fn compile(&self, src: &Path, obj: &Path, flags: &[&str], what: &str) {
        let mut cmd = compiler_command();
        cmd.args(flags);
        for dir in [&self.cdir, &self.kinc, &self.hinc] {
            cmd.arg("-I").arg(dir);
        }
        cmd.arg("-c").arg(src).arg("-o").arg(obj);
        run(cmd, what);
    }

    /// A directory of its own under OUT_DIR.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let d = self.out.join(name);
        fs::create_dir_all(&d)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", d.display())));
        d
    }
}

/// The global symbols `nm` lists for an object: (defined, undefined), sorted.
pub fn symbols(obj: &Path) -> (Vec<String>, Vec<String>) {
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
pub fn rename<S: AsRef<str>>(input: &Path, output: &Path, names: &[S], prefix: &str) {
    let map = output.with_extension("redefine");
    let text: String = names
        .iter()
        .map(|n| {
            let n = n.as_ref();
            format!("{n} {prefix}{n}\n{ODR}{n} {ODR}{prefix}{n}\n")
        })
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
pub fn without_odr(names: Vec<String>, prefix: Option<&str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| match n.strip_prefix(ODR) {
            Some(rest) => prefix.is_some_and(|p| !rest.starts_with(p)),
            None => true,
        })
        .collect()
}

/// `names` with `prefix` in front, sorted.
pub fn prefixed<S: AsRef<str>>(names: &[S], prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = names
        .iter()
        .map(|n| format!("{prefix}{}", n.as_ref()))
        .collect();
    v.sort();
    v
}

/// The library's own members of the release staticlib (not core and
/// compiler_builtins) linked into one object with every symbol but
/// `exports` made local: `<dir>/vmm_gpt.o`, returned.
pub fn staticlib_object(lib: &Path, dir: &Path, exports: &[String]) -> PathBuf {
    let members_dir = dir.join("members");
    let _ = fs::remove_dir_all(&members_dir);
    fs::create_dir_all(&members_dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", members_dir.display())));
    // The library's own members (rustc names them <crate>-<hash>.*.o).
    let mut cmd = archiver();
    cmd.arg("t").arg(lib);
    let members: Vec<String> = run(cmd, "listing the staticlib")
        .lines()
        .filter(|m| m.starts_with("vmm_gpt-") && m.ends_with(".o"))
        .map(str::to_string)
        .collect();
    if members.is_empty() {
        fail(&format!("no vmm_gpt member in {}", lib.display()));
    }
    let mut cmd = archiver();
    cmd.current_dir(&members_dir)
        .arg("x")
        .arg(lib)
        .args(&members);
    run(cmd, "extracting the staticlib's members");
    let linked = dir.join("linked.o");
    let mut cmd = Command::new(tool("LD", "ld"));
    cmd.arg("-r").arg("-o").arg(&linked);
    cmd.args(members.iter().map(|m| members_dir.join(m)));
    run(cmd, "linking the staticlib's members");
    let keep = dir.join("exports.txt");
    fs::write(&keep, exports.join("\n") + "\n")
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", keep.display())));
    let kept = dir.join("vmm_gpt.o");
    let mut cmd = Command::new(tool("OBJCOPY", "objcopy"));
    cmd.arg(format!("--keep-global-symbols={}", keep.display()))
        .arg(&linked)
        .arg(&kept);
    run(cmd, "localizing the staticlib's symbols");
    kept
}
