//! Builds the consumer test: the real consumer of vmm_gpt, bhyve's
//! `vmm_vm.c`, in userland, once per implementation of vmm_gpt.
//!
//! 1. From the illumos-gate checkout `ILLUMOS_GATE` names (an external,
//!    CDDL input: compiled from there, never copied into the repository),
//!    `usr/src/uts/intel/io/vmm/vmm_vm.c` is copied to OUT_DIR, patched
//!    with `illumos-build/patches/vmm_vm-unmap-held-pages.patch` (the fix
//!    of `vmc_space_unmap()`'s loop, which every copy needs: the driver
//!    keeps holds across unmaps), and compiled with `-Wall -Werror` and
//!    `-DDEBUG` (its ASSERTs live) against the stand-in headers of
//!    `consumer/include` (what it includes beyond the harness's), the
//!    harness's stand-in headers, the library's generated headers and,
//!    last (`-idirafter`), the gate's `sys/vmm_vm.h`.  The driver
//!    (`c/driver.c`) is compiled beside it, and the two are combined
//!    (`ld -r`).  The services both need (`c/services.c`: mutexes, lists,
//!    the reservoir, ...) are compiled once and shared.
//! 2. The other variants of `vmm_vm.c`, each a copy in OUT_DIR patched
//!    (`patch -p1`) and combined with the driver the same way ([`VARIANTS`]):
//!    `vmm_vm-harvest-dirty.patch` and then the fix (the consumer of the
//!    opt-in extension `vmm_gpt_harvest_dirty()`); the gate's `vmm_vm.c`
//!    unfixed (the test of the test: it must fail the driver's holds across
//!    unmaps); the fix and `vmm_vm-hold-bounds.patch`, with the driver
//!    compiled `-DCONSUMER_GPA_BOUNDED` (it then requires every hold and
//!    fault beyond the vmspace to fail).  The whole series that
//!    `install-into-gate.sh --harvest --fixes` applies (the three patches)
//!    is compiled the same way, though no copy runs it.
//! 3. The combination is renamed once per implementation (`objcopy
//!    --redefine-syms`): its imports of the vmm_gpt ABI get the
//!    implementation's prefix (none for the library, `ref_` for the DEBUG
//!    original, ...: the copies `vmm-gpt-impls` links), everything it
//!    defines gets `consumer_<tag>_`, so that copies do not collide and
//!    each has one entry point, `consumer_<tag>_consumer_run`.  The
//!    imports of the prebuilt implementations (kernel objects, staticlibs),
//!    which impls links only when their variables are set, are made weak:
//!    `consumer_<tag>_linked()` says at run time whether they resolved.
//! 4. The mutants, a test of the test: one-line changes of the original
//!    `vmm_gpt.c`, written to OUT_DIR, compiled without DEBUG, renamed
//!    `mut<N>_*` with their own copy of the stubs, as impls renames the
//!    originals, and a copy of the combination over each.
//!
//! Everything goes into one archive linked whole; `copies.rs` in OUT_DIR
//! lists the copies and mutants for `src/lib.rs`.  Without `ILLUMOS_GATE`
//! nothing is built and the tests skip (`VMM_GPT_REQUIRE_REFERENCE=1`
//! makes that a build failure, as for every crate).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmm_gpt_harness_build::{
    archiver, env_is_1, env_path, exports, exports_harvest, fail, original, rename,
    rerun_if_changed_tree, run, symbols, tool, without_odr, workspace_root, Harness, CFLAGS,
    ORIGINAL_CFLAGS, SANITIZE_CFLAGS, STUB_NAMES,
};

/// The patch of the opt-in extension's consumer, relative to the root.
const HARVEST_PATCH: &str = "illumos-build/patches/vmm_vm-harvest-dirty.patch";
/// The fix of `vmc_space_unmap()`'s loop: every copy but `Unfixed` has it.
const UNMAP_PATCH: &str = "illumos-build/patches/vmm_vm-unmap-held-pages.patch";
/// `vmspace_lookup_map()` refusing GPAs beyond the vmspace.
const BOUNDS_PATCH: &str = "illumos-build/patches/vmm_vm-hold-bounds.patch";
/// Where an illumos-gate checkout has vmm_vm.c (beside the original).
const VMM_VM: &str = "vmm_vm.c";
/// ASan's prefix of a global's ODR indicator (`VMM_GPT_SANITIZE=1`).
const ODR: &str = "__odr_asan.";
/// Optimization of everything compiled here (the test profile builds the
/// originals with opt-level 2 too).
const OPT: &str = "-O2";

/// Which `vmm_vm.c` a copy is built from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// The gate's, with the fix of `vmc_space_unmap()`.
    Fixed,
    /// With the opt-in extension's patch and the fix.
    Harvest,
    /// The gate's as it is.
    Unfixed,
    /// With the fix and the bound of `vmspace_lookup_map()`; the driver
    /// compiled with `-DCONSUMER_GPA_BOUNDED`.
    Bounded,
}

/// Each variant: its name (`copies.rs`, the OUT_DIR subdirectory), the
/// patches applied in order, the driver's extra flags.
const VARIANTS: &[(Variant, &str, &[&str], &[&str])] = &[
    (Variant::Fixed, "fixed", &[UNMAP_PATCH], &[]),
    (
        Variant::Harvest,
        "harvest",
        &[HARVEST_PATCH, UNMAP_PATCH],
        &[],
    ),
    (Variant::Unfixed, "unfixed", &[], &[]),
    (
        Variant::Bounded,
        "bounded",
        &[UNMAP_PATCH, BOUNDS_PATCH],
        &["-DCONSUMER_GPA_BOUNDED"],
    ),
];

/// One copy of vmm_vm.c + driver.
struct ConsumerCopy {
    /// Its symbols' prefix: `consumer_<tag>_`.
    tag: &'static str,
    /// The prefix of the implementation it imports (`ref_vmm_gpt_alloc`).
    prefix: &'static str,
    /// The vmm_vm.c it is built from.
    variant: Variant,
    /// The implementation is linked by impls only when its variable is
    /// set: its imports are weak.
    weak: bool,
}

const COPIES: &[ConsumerCopy] = &[
    ConsumerCopy {
        tag: "lib",
        prefix: "",
        variant: Variant::Fixed,
        weak: false,
    },
    ConsumerCopy {
        tag: "ref",
        prefix: "ref_",
        variant: Variant::Fixed,
        weak: false,
    },
    ConsumerCopy {
        tag: "ref_ndebug",
        prefix: "ref_ndebug_",
        variant: Variant::Fixed,
        weak: false,
    },
    ConsumerCopy {
        tag: "kobj",
        prefix: "kobj_",
        variant: Variant::Fixed,
        weak: true,
    },
    ConsumerCopy {
        tag: "kobj_debug",
        prefix: "kobj_debug_",
        variant: Variant::Fixed,
        weak: true,
    },
    ConsumerCopy {
        tag: "rel",
        prefix: "rel_",
        variant: Variant::Fixed,
        weak: true,
    },
    ConsumerCopy {
        tag: "hv",
        prefix: "hv_",
        variant: Variant::Harvest,
        weak: true,
    },
    ConsumerCopy {
        tag: "kobj_hv",
        prefix: "kobj_hv_",
        variant: Variant::Harvest,
        weak: true,
    },
    ConsumerCopy {
        tag: "kobj_hv_debug",
        prefix: "kobj_hv_debug_",
        variant: Variant::Harvest,
        weak: true,
    },
    ConsumerCopy {
        tag: "unfixed",
        prefix: "",
        variant: Variant::Unfixed,
        weak: false,
    },
    ConsumerCopy {
        tag: "lib_bounded",
        prefix: "",
        variant: Variant::Bounded,
        weak: false,
    },
    ConsumerCopy {
        tag: "ref_bounded",
        prefix: "ref_",
        variant: Variant::Bounded,
        weak: false,
    },
    ConsumerCopy {
        tag: "ref_ndebug_bounded",
        prefix: "ref_ndebug_",
        variant: Variant::Bounded,
        weak: false,
    },
];

/// A one-line change of the original: in the lines `context` (compared
/// without their indentation, consecutive, found exactly once), line
/// `line` becomes `to`.
struct Mutant {
    name: &'static str,
    what: &'static str,
    context: &'static [&'static str],
    line: usize,
    to: &'static str,
}

const MUTANTS: &[Mutant] = &[
    Mutant {
        name: "reset-returns-new",
        what: "vmm_gpt_reset_bits returns the bits it leaves, not the old ones",
        context: &["return (oldpte & mask);"],
        line: 0,
        to: "return (newpte & mask);",
    },
    Mutant {
        name: "query-dirty-reads-accessed",
        what: "vmm_gpte_query_dirty tests the accessed bit",
        context: &["return ((*ptep & vmm_pte_impl->vpi_bit_dirty) != 0);"],
        line: 0,
        to: "return ((*ptep & vmm_pte_impl->vpi_bit_accessed) != 0);",
    },
    Mutant {
        name: "populate-skips-last-page",
        what: "vmm_gpt_populate_region_lvl ends a page early (a range's last page may get no table)",
        context: &[
            "const uint64_t end = addr + len;",
            "const uint64_t incr = vmm_gpt_lvl_len(lvl);",
        ],
        line: 0,
        to: "const uint64_t end = addr + len - PAGESIZE;",
    },
    Mutant {
        name: "map-ignores-prot",
        what: "vmm_gpt_map_at maps every page read-write-execute",
        context: &["const vmm_gpt_entry_t pte = vmm_gpti_map_page(pfn, prot, attr);"],
        line: 0,
        to: "const vmm_gpt_entry_t pte = vmm_gpti_map_page(pfn, PROT_READ | PROT_WRITE | PROT_EXEC, attr);",
    },
    Mutant {
        name: "map-ignores-attr",
        what: "vmm_gpt_map_at maps every page write-back",
        context: &["const vmm_gpt_entry_t pte = vmm_gpti_map_page(pfn, prot, attr);"],
        line: 0,
        to: "const vmm_gpt_entry_t pte = vmm_gpti_map_page(pfn, prot, MTRR_TYPE_WB);",
    },
    Mutant {
        name: "map-at-always-new",
        what: "vmm_gpt_map_at reports a new mapping where one was already",
        context: &["#endif /* DEBUG */", "return (false);"],
        line: 1,
        to: "return (true);",
    },
    Mutant {
        name: "unmap-region-uncounted",
        what: "vmm_gpt_unmap_region does not count what it unmaps",
        context: &["num_unmapped++;"],
        line: 0,
        to: "(void) 0;",
    },
    Mutant {
        name: "pmtp-ignores-tracking",
        what: "vmm_gpt_get_pmtp never asks for A/D tracking",
        context: &["return (vmm_pte_impl->vpi_get_pmtp(root_pfn, track_dirty));"],
        line: 0,
        to: "return (vmm_pte_impl->vpi_get_pmtp(root_pfn, false));",
    },
    Mutant {
        name: "vacate-keeps-leaf-tables",
        what: "vmm_gpt_vacate_region frees no leaf table",
        context: &["if (node->vgn_ref_cnt == 0) {"],
        line: 0,
        to: "if (node->vgn_ref_cnt == 0 && node->vgn_level != LEVEL1) {",
    },
];

struct Ctx {
    harness: Harness,
    /// `consumer/c` and `consumer/include`.
    cdir: PathBuf,
    cinc: PathBuf,
    /// The gate's directory of vmm_vm.c and vmm_gpt.c.
    vmmdir: PathBuf,
    /// The ABI's names (the 21 and the extension's): what a copy imports.
    abi: Vec<String>,
    /// The 21 exports: what the mutants define.
    exports: Vec<String>,
    /// `VMM_GPT_SANITIZE=1`: everything compiled with ASan and UBSan too.
    sanitize: bool,
}

impl Ctx {
    fn dir(&self, name: &str) -> PathBuf {
        self.harness.subdir(name)
    }

    /// Compiles a C file of vmm_vm.c's world: the consumer's headers
    /// first, then the harness's and the library's, the gate's last.
    fn compile_consumer(&self, src: &Path, obj: &Path, base: &[&str], what: &str) {
        let inc_c = format!("-I{}", self.cdir.display());
        let inc = format!("-I{}", self.cinc.display());
        let after = format!("-idirafter{}", self.vmmdir.display());
        let mut flags = base.to_vec();
        flags.extend([OPT, "-DDEBUG", inc_c.as_str(), inc.as_str(), after.as_str()]);
        if self.sanitize {
            flags.extend(SANITIZE_CFLAGS);
        }
        self.harness.compile(src, obj, &flags, what);
    }

    /// A copy of vmm_vm.c in `<dir>/usr/src/uts/intel/io/vmm/`, patched with
    /// `patches` (relative to `root`) in order; its path.
    fn patched_copy(&self, vmm_vm: &Path, root: &Path, dir: &Path, patches: &[&str]) -> PathBuf {
        let rel = Path::new("usr/src/uts/intel/io/vmm");
        let _ = fs::remove_dir_all(dir.join("usr"));
        fs::create_dir_all(dir.join(rel)).unwrap_or_else(|e| fail(&format!("{e}")));
        let copy = dir.join(rel).join(VMM_VM);
        fs::copy(vmm_vm, &copy).unwrap_or_else(|e| fail(&format!("copying vmm_vm.c: {e}")));
        for p in patches {
            let mut cmd = Command::new(tool("PATCH", "patch"));
            cmd.arg("-p1")
                .arg("--batch")
                .arg("--forward")
                .arg("-d")
                .arg(dir)
                .arg("-i")
                .arg(root.join(p));
            run(cmd, &format!("patching vmm_vm.c with {p}"));
        }
        copy
    }

    /// vmm_vm.c (`src`) and the driver (with `driver_flags`), combined:
    /// `<dir>/combined.o`.
    fn combine(&self, vmm_vm: &Path, dir: &Path, what: &str, driver_flags: &[&str]) -> PathBuf {
        let vm_obj = dir.join("vmm_vm.o");
        self.compile_consumer(
            vmm_vm,
            &vm_obj,
            ORIGINAL_CFLAGS,
            &format!("compiling {what}"),
        );
        let drv_obj = dir.join("driver.o");
        let mut flags = CFLAGS.to_vec();
        flags.extend(driver_flags);
        self.compile_consumer(
            &self.cdir.join("driver.c"),
            &drv_obj,
            &flags,
            "compiling consumer/c/driver.c",
        );
        let combined = dir.join("combined.o");
        let mut cmd = Command::new(tool("LD", "ld"));
        cmd.arg("-r")
            .arg("-o")
            .arg(&combined)
            .arg(&vm_obj)
            .arg(&drv_obj);
        run(cmd, &format!("combining {what} and the driver"));
        combined
    }

    /// Renames a combination for one copy; returns the object.
    fn rename_copy(&self, combined: &Path, tag: &str, prefix: &str, weak: bool) -> PathBuf {
        let dir = self.dir(&format!("copy_{tag}"));
        let (defined, undefined) = symbols(combined);
        let own = format!("consumer_{tag}_");
        let mut map = String::new();
        let mut weaken = Vec::new();
        for d in &defined {
            // ASan's ODR indicator of a global x (VMM_GPT_SANITIZE=1).
            match d.strip_prefix(ODR) {
                Some(x) => writeln!(map, "{d} {ODR}{own}{x}").unwrap(),
                None => writeln!(map, "{d} {own}{d}").unwrap(),
            }
        }
        for u in &undefined {
            if self.abi.contains(u) {
                writeln!(map, "{u} {prefix}{u}").unwrap();
                weaken.push(format!("{prefix}{u}"));
            } else if u.starts_with("vmm_gpt") || u.starts_with("vmm_gpte") {
                fail(&format!(
                    "vmm_vm.c or the driver imports {u}, not in the ABI"
                ));
            }
        }
        let map_file = dir.join("redefine");
        fs::write(&map_file, map).unwrap_or_else(|e| fail(&format!("writing {map_file:?}: {e}")));
        let out = dir.join(format!("consumer_{tag}.o"));
        let mut cmd = Command::new(tool("OBJCOPY", "objcopy"));
        cmd.arg(format!("--redefine-syms={}", map_file.display()));
        if weak {
            for w in &weaken {
                cmd.arg(format!("--weaken-symbol={w}"));
            }
        }
        cmd.arg(combined).arg(&out);
        run(cmd, &format!("renaming the consumer copy {tag}"));

        // Everything defined is the copy's own; every ABI import has the
        // implementation's prefix.
        let (defined, undefined) = symbols(&out);
        if let Some(bad) = defined
            .iter()
            .find(|d| !d.strip_prefix(ODR).unwrap_or(d).starts_with(&own))
        {
            fail(&format!("after renaming, the copy {tag} defines {bad}"));
        }
        if !defined.contains(&format!("{own}consumer_run")) {
            fail(&format!(
                "after renaming, the copy {tag} has no entry point"
            ));
        }
        for u in &undefined {
            if let Some(rest) = u.strip_prefix(prefix) {
                if self.abi.iter().any(|a| a == rest) {
                    continue;
                }
            }
            if u.contains("vmm_gpt") {
                fail(&format!("after renaming, the copy {tag} imports {u}"));
            }
        }
        out
    }

    /// `consumer_<tag>_linked()`: whether the copy's implementation
    /// resolved (its imports may be weak).
    fn linked_check(&self, tag: &str, prefix: &str, patched: bool, weak: bool) -> PathBuf {
        let dir = self.dir(&format!("copy_{tag}"));
        let src = dir.join("linked.c");
        let mut text = String::from(
            "/* Generated by consumer/build.rs: whether the copy's implementation is linked. */\n",
        );
        let mut names = vec![format!("{prefix}vmm_gpt_init")];
        if patched {
            names.push(format!("{prefix}vmm_gpt_harvest_dirty"));
        }
        if weak {
            for n in &names {
                writeln!(text, "extern char {n} __attribute__((weak));").unwrap();
            }
        }
        writeln!(text, "int consumer_{tag}_linked(void);").unwrap();
        writeln!(text, "int\nconsumer_{tag}_linked(void)\n{{").unwrap();
        if weak {
            let cond: Vec<String> = names.iter().map(|n| format!("&{n} != 0")).collect();
            writeln!(text, "\treturn ({});\n}}", cond.join(" && ")).unwrap();
        } else {
            writeln!(text, "\treturn (1);\n}}").unwrap();
        }
        fs::write(&src, text).unwrap_or_else(|e| fail(&format!("writing {src:?}: {e}")));
        let obj = dir.join("linked.o");
        self.harness
            .compile(&src, &obj, CFLAGS, &format!("compiling {}", src.display()));
        obj
    }
}

/// The mutated original, or why when the change does not
/// apply to this checkout's vmm_gpt.c.
fn mutate(text: &str, m: &Mutant) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let n = m.context.len();
    let hits: Vec<usize> = (0..lines.len().saturating_sub(n - 1))
        .filter(|&i| (0..n).all(|k| lines[i + k].trim() == m.context[k]))
        .collect();
    if hits.len() != 1 {
        return Err(format!(
            "its lines {:?} occur {} times in vmm_gpt.c, not once",
            m.context,
            hits.len()
        ));
    }
    let at = hits[0] + m.line;
    let indent: String = lines[at]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[at] = format!("{indent}{}", m.to);
    Ok(out.join("\n") + "\n")
}

/// Compiles and renames one mutant (`mut<N>_*`) with its own stubs; the
/// objects to archive.
fn build_mutant(ctx: &Ctx, original: &str, idx: usize, m: &Mutant) -> Result<Vec<PathBuf>, String> {
    let text = mutate(original, m)?;
    let prefix = format!("mut{idx}_");
    let dir = ctx.dir(&format!("mutant{idx}"));
    let src = dir.join("vmm_gpt.c");
    fs::write(&src, text).unwrap_or_else(|e| fail(&format!("writing {src:?}: {e}")));
    let plain = dir.join("vmm_gpt.o");
    let mut flags = ORIGINAL_CFLAGS.to_vec();
    flags.push(OPT);
    if ctx.sanitize {
        flags.extend(SANITIZE_CFLAGS);
    }
    ctx.harness.compile(
        &src,
        &plain,
        &flags,
        &format!("compiling the mutant {}", m.name),
    );
    let mut names: Vec<&str> = ctx.exports.iter().map(String::as_str).collect();
    names.extend(STUB_NAMES);
    let renamed = dir.join(format!("{prefix}vmm_gpt.o"));
    rename(&plain, &renamed, &names, &prefix);
    let (defined, _) = symbols(&renamed);
    let defined = without_odr(defined, Some(&prefix));
    let mut expected: Vec<String> = ctx.exports.iter().map(|e| format!("{prefix}{e}")).collect();
    expected.sort();
    if defined != expected {
        fail(&format!(
            "the mutant {} defines {defined:?} after renaming",
            m.name
        ));
    }
    let stubs_plain = dir.join("stubs.o");
    ctx.harness.compile(
        &ctx.harness.cdir.join("stubs.S"),
        &stubs_plain,
        CFLAGS,
        "assembling the stubs for a mutant",
    );
    let stubs = dir.join(format!("{prefix}stubs.o"));
    let mut stub_names: Vec<&str> = STUB_NAMES.to_vec();
    stub_names.push("vmm_gpt_impl_panic");
    rename(&stubs_plain, &stubs, &stub_names, &prefix);
    Ok(vec![renamed, stubs])
}

fn main() {
    let root = workspace_root(1);
    let manifest = env_path("CARGO_MANIFEST_DIR");
    let cdir = manifest.join("c");
    let cinc = manifest.join("include");
    println!("cargo:rerun-if-changed=build.rs");
    rerun_if_changed_tree(&cdir);
    rerun_if_changed_tree(&cinc);
    for p in [HARVEST_PATCH, UNMAP_PATCH, BOUNDS_PATCH] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_consumer)");
    let out = env_path("OUT_DIR");
    let table = out.join("copies.rs");
    // VMM_GPT_SANITIZE=1 compiles the stand-in and the originals with ASan
    // and UBSan (vmm-gpt-harness, vmm-gpt-impls): link their runtimes, as
    // difftest does (first, as ASan insists).
    if env_is_1("VMM_GPT_SANITIZE") {
        println!("cargo:rustc-link-lib=dylib=asan");
        println!("cargo:rustc-link-lib=dylib=ubsan");
    }

    // Without the original there is no vmm_vm.c either: nothing to build.
    let Some(original) = original(&root) else {
        write_table(&table, &[], &[], "ILLUMOS_GATE is not set");
        return;
    };
    let vmmdir = original
        .parent()
        .unwrap_or_else(|| fail("the original has no directory"))
        .to_path_buf();
    let vmm_vm = vmmdir.join(VMM_VM);
    println!("cargo:rerun-if-changed={}", vmm_vm.display());
    println!(
        "cargo:rerun-if-changed={}",
        vmmdir.join("sys/vmm_vm.h").display()
    );
    if !vmm_vm.is_file() {
        let why = format!(
            "{} is not there: the consumer test needs vmm_vm.c beside the original",
            vmm_vm.display()
        );
        if env_is_1("VMM_GPT_REQUIRE_REFERENCE") {
            fail(&why);
        }
        write_table(&table, &[], &[], &why);
        return;
    }

    let ctx = Ctx {
        harness: Harness::from_dep(),
        cdir,
        cinc,
        vmmdir,
        abi: [exports(&root), exports_harvest(&root)].concat(),
        exports: exports(&root),
        sanitize: env_is_1("VMM_GPT_SANITIZE"),
    };
    let mut objects = Vec::new();

    // The shared services.
    let services = ctx.dir("services").join("services.o");
    ctx.compile_consumer(
        &ctx.cdir.join("services.c"),
        &services,
        CFLAGS,
        "compiling consumer/c/services.c",
    );
    objects.push(services);

    // 1, 2. Every variant whose patches are there (the fix must be).
    if !root.join(UNMAP_PATCH).is_file() {
        fail(&format!("{UNMAP_PATCH} is missing"));
    }
    let mut combined: Vec<(Variant, PathBuf)> = Vec::new();
    for (variant, name, patches, driver_flags) in VARIANTS {
        if !patches.iter().all(|p| root.join(p).is_file()) {
            continue;
        }
        let dir = ctx.dir(&format!("vmm_vm_{name}"));
        let copy = ctx.patched_copy(&vmm_vm, &root, &dir, patches);
        let what = format!("vmm_vm.c ({name}: {})", patches.join(", "));
        combined.push((*variant, ctx.combine(&copy, &dir, &what, driver_flags)));
    }
    // The whole series `install-into-gate.sh --harvest --fixes` makes,
    // compiled as the variants are (-Wall -Werror) though no copy runs it:
    // its bound would change what the harvest pairs compare, and each of
    // its patches runs in a variant above.
    let series = [HARVEST_PATCH, UNMAP_PATCH, BOUNDS_PATCH];
    if series.iter().all(|p| root.join(p).is_file()) {
        let dir = ctx.dir("vmm_vm_series");
        let copy = ctx.patched_copy(&vmm_vm, &root, &dir, &series);
        ctx.compile_consumer(
            &copy,
            &dir.join("vmm_vm.o"),
            ORIGINAL_CFLAGS,
            &format!("compiling vmm_vm.c ({})", series.join(", ")),
        );
    }
    let of = |v: Variant| combined.iter().find(|(w, _)| *w == v).map(|(_, p)| p);
    let plain = of(Variant::Fixed).expect("the fixed variant").clone();

    // 3. One copy per implementation.
    let mut copies = Vec::new();
    for c in COPIES {
        let Some(combined) = of(c.variant) else {
            continue;
        };
        let harvest = c.variant == Variant::Harvest;
        objects.push(ctx.rename_copy(combined, c.tag, c.prefix, c.weak));
        objects.push(ctx.linked_check(c.tag, c.prefix, harvest, c.weak));
        copies.push(c);
    }

    // 4. The mutants.
    let original_text = fs::read_to_string(&original)
        .unwrap_or_else(|e| fail(&format!("reading {}: {e}", original.display())));
    let mut mutants = Vec::new();
    for (i, m) in MUTANTS.iter().enumerate() {
        let idx = i + 1;
        match build_mutant(&ctx, &original_text, idx, m) {
            Ok(objs) => {
                objects.extend(objs);
                let tag = format!("mut{idx}");
                let prefix = format!("mut{idx}_");
                objects.push(ctx.rename_copy(&plain, &tag, &prefix, false));
                mutants.push((idx, m, Ok(())));
            }
            Err(why) => mutants.push((idx, m, Err(why))),
        }
    }

    let lib = out.join("libvmm_gpt_consumer.a");
    let _ = fs::remove_file(&lib);
    let mut cmd = archiver();
    cmd.arg("crs").arg(&lib).args(&objects);
    run(cmd, "archiving the consumer copies");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=vmm_gpt_consumer");
    println!("cargo:rustc-cfg=vmm_gpt_consumer");
    if std::env::var("DEP_VMM_GPT_IMPLS_NO_PIE").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg-tests=-no-pie");
    }
    // modgetsymname() names symbols through dladdr().
    println!("cargo:rustc-link-arg-tests=-rdynamic");
    write_table(&table, &copies, &mutants, "");
}

type MutantRow<'a> = (usize, &'a Mutant, Result<(), String>);

/// `copies.rs`: the extern declarations of every copy's entry points and
/// the tables of copies and mutants.
fn write_table(path: &Path, copies: &[&ConsumerCopy], mutants: &[MutantRow], missing: &str) {
    let mut s = String::from("// Generated by consumer/build.rs.\n\n");
    writeln!(s, "/// Why nothing was built (empty when it was).").unwrap();
    writeln!(s, "pub const MISSING: &str = {missing:?};\n").unwrap();
    let mut decls = String::new();
    let entry = |tag: &str, linked: bool, decls: &mut String| {
        writeln!(
            decls,
            "    #[link_name = \"consumer_{tag}_consumer_run\"]\n    \
             fn consumer_{tag}_run(args: *const Args, out: *mut *mut c_char, len: *mut usize) -> c_int;"
        )
        .unwrap();
        if linked {
            writeln!(
                decls,
                "    #[link_name = \"consumer_{tag}_linked\"]\n    \
                 fn consumer_{tag}_linked() -> c_int;"
            )
            .unwrap();
        }
    };
    writeln!(s, "/// Every copy of vmm_vm.c + driver built.").unwrap();
    writeln!(s, "pub static COPIES: &[CopyDef] = &[").unwrap();
    for c in copies {
        entry(c.tag, true, &mut decls);
        writeln!(
            s,
            "    CopyDef {{ tag: {:?}, prefix: {:?}, vmm_vm: {:?}, run: consumer_{}_run, linked: consumer_{}_linked }},",
            c.tag,
            c.prefix,
            VARIANTS
                .iter()
                .find(|v| v.0 == c.variant)
                .map_or("", |v| v.1),
            c.tag,
            c.tag
        )
        .unwrap();
    }
    writeln!(s, "];\n").unwrap();
    writeln!(
        s,
        "/// The mutants of the original, built or not (and why)."
    )
    .unwrap();
    writeln!(s, "pub static MUTANTS: &[MutantDef] = &[").unwrap();
    for (idx, m, built) in mutants {
        let run = match built {
            Ok(()) => {
                let tag = format!("mut{idx}");
                entry(&tag, false, &mut decls);
                format!("Ok(consumer_{tag}_run)")
            }
            Err(why) => format!("Err({why:?})"),
        };
        writeln!(
            s,
            "    MutantDef {{ name: {:?}, what: {:?}, run: {run} }},",
            m.name, m.what
        )
        .unwrap();
    }
    writeln!(s, "];\n").unwrap();
    if !decls.is_empty() {
        writeln!(s, "extern \"C\" {{\n{decls}}}").unwrap();
    }
    fs::write(path, s).unwrap_or_else(|e| fail(&format!("writing {}: {e}", path.display())));
}
