//! Links every implementation of the C surface other than the library
//! into the crate, renamed, for the tables of src/lib.rs:
//!
//! 1. With `ILLUMOS_GATE` set, the original, twice: `vmm_gpt.c` from the
//!    checkout (an external, CDDL input: compiled from there, never
//!    copied) against the library's headers and the stand-in headers, with
//!    `-DDEBUG` (its `ASSERT`s on, as a DEBUG kernel builds it) and
//!    without (as production kernels build it).  Each copy gets its own
//!    prefix: every global symbol of the original's ABI is renamed with
//!    `objcopy --redefine-syms`, its 21 definitions (`ref_vmm_gpt_init`,
//!    ..., `ref_vmm_gpt_impl_panic`, `ref_vmm_pte_uninit_impl`) and the
//!    stubs it calls (`ref_vmm_gpti_map_table`, ...), and it gets its own
//!    copy of the stubs (the harness's `stubs.S` assembled again, renamed
//!    the same way), whose jumps go to `ref_vmm_gpt_impl_panic` until
//!    `ref_vmm_gpt_init` patches them.  `nm` then checks that each defines
//!    exactly the 21 renamed symbols and imports nothing of the library's
//!    or of another copy's.  DEBUG: `ref_*`, `libvmm_gpt_impls_ref.a`,
//!    `cfg(vmm_gpt_reference)`; non-DEBUG: `ref_ndebug_*`,
//!    `cfg(vmm_gpt_reference_ndebug)`.  Without `ILLUMOS_GATE`,
//!    `VMM_GPT_REQUIRE_REFERENCE=1` fails the build; otherwise the crate
//!    builds without the original and the tests that need it skip.
//! 2. With `VMM_GPT_KERNEL_OBJECT`, `VMM_GPT_KERNEL_OBJECT_DEBUG` and
//!    `VMM_GPT_RELEASE_STATICLIB` set, the non-DEBUG and DEBUG kernel
//!    objects of illumos-build/build.sh and the release staticlib, renamed
//!    the same way (`kobj_*`, `kobj_debug_*`, `rel_*`; see
//!    `build_prebuilt`), and the opt-in builds with the extension
//!    `vmm_gpt_harvest_dirty` (`hv_*`, `kobj_hv_*`, `kobj_hv_debug_*`).
//!    Dependents then link their tests without PIE
//!    (`DEP_VMM_GPT_IMPLS_NO_PIE=1`).
//!
//! `VMM_GPT_SANITIZE=1` compiles the originals with AddressSanitizer and
//! UndefinedBehaviorSanitizer, as vmm-gpt-harness compiles the stand-in;
//! the dependent links their runtimes.

use std::path::{Path, PathBuf};

use vmm_gpt_harness_build::{
    archiver, env_is_1, exports, exports_harvest, fail, original, prebuilt, prefixed, rename, run,
    staticlib_object, symbols, without_odr, workspace_root, Harness, CFLAGS, ORIGINAL_CFLAGS,
    SANITIZE_CFLAGS, STUB_NAMES,
};

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
    /// An opt-in build, with the extension's exports beside the 21.
    harvest: bool,
}

impl Renamed {
    const fn new(what: &'static str, prefix: &'static str, cfg: &'static str) -> Renamed {
        Renamed {
            what,
            prefix,
            cfg,
            harvest: false,
        }
    }

    const fn harvest(what: &'static str, prefix: &'static str, cfg: &'static str) -> Renamed {
        Renamed {
            what,
            prefix,
            cfg,
            harvest: true,
        }
    }
}

const ORIGINAL_DEBUG: Renamed = Renamed::new("the original (DEBUG)", "ref_", "vmm_gpt_reference");
const ORIGINAL_NDEBUG: Renamed = Renamed::new(
    "the original (non-DEBUG)",
    "ref_ndebug_",
    "vmm_gpt_reference_ndebug",
);
const KERNEL_OBJECT: Renamed = Renamed::new("the kernel object", "kobj_", "vmm_gpt_kernel_object");
const KERNEL_OBJECT_DEBUG: Renamed = Renamed::new(
    "the DEBUG kernel object",
    "kobj_debug_",
    "vmm_gpt_kernel_object_debug",
);
const STATICLIB: Renamed = Renamed::new("the release staticlib", "rel_", "vmm_gpt_staticlib");
const HARVEST_STATICLIB: Renamed = Renamed::harvest(
    "the opt-in release staticlib",
    "hv_",
    "vmm_gpt_harvest_staticlib",
);
const KERNEL_OBJECT_HARVEST: Renamed = Renamed::harvest(
    "the opt-in kernel object",
    "kobj_hv_",
    "vmm_gpt_kernel_object_harvest",
);
const KERNEL_OBJECT_HARVEST_DEBUG: Renamed = Renamed::harvest(
    "the opt-in DEBUG kernel object",
    "kobj_hv_debug_",
    "vmm_gpt_kernel_object_harvest_debug",
);
/// Every copy: none may import another's symbols.
const COPIES: [&Renamed; 8] = [
    &ORIGINAL_DEBUG,
    &ORIGINAL_NDEBUG,
    &KERNEL_OBJECT,
    &KERNEL_OBJECT_DEBUG,
    &STATICLIB,
    &HARVEST_STATICLIB,
    &KERNEL_OBJECT_HARVEST,
    &KERNEL_OBJECT_HARVEST_DEBUG,
];

/// What every copy is built with.
struct Ctx {
    harness: Harness,
    /// The 21 exports (`illumos-build/exports.txt`).
    exports: Vec<String>,
    /// The 21 and the extension's (`exports-harvest.txt`), of the opt-in
    /// builds.
    exports_harvest: Vec<String>,
    /// `VMM_GPT_SANITIZE=1`: the originals compiled with the sanitizers.
    sanitize: bool,
}

impl Ctx {
    /// What `copy` defines.
    fn exports_of(&self, copy: &Renamed) -> &[String] {
        if copy.harvest {
            &self.exports_harvest
        } else {
            &self.exports
        }
    }

    /// Compiles `src` into `obj` with `flags` (and the sanitizers, if on).
    fn compile(&self, src: &Path, obj: &Path, flags: &[&str], what: &str) {
        let mut flags = flags.to_vec();
        if self.sanitize {
            flags.extend(SANITIZE_CFLAGS);
        }
        self.harness.compile(src, obj, &flags, what);
    }
}

impl Renamed {
    fn objdir(&self, ctx: &Ctx) -> PathBuf {
        ctx.harness.subdir(self.prefix.trim_end_matches('_'))
    }

    /// Renames `obj` (defining the 21 unprefixed symbols) and a new copy of
    /// the stubs, checks the result, archives both as
    /// `libvmm_gpt_difftest_<prefix>.a`, links it whole and sets the cfg.
    fn finish(&self, ctx: &Ctx, obj: &Path) {
        let objdir = self.objdir(ctx);
        let exports = ctx.exports_of(self);
        let mut names: Vec<&str> = exports.iter().map(String::as_str).collect();
        names.extend(STUB_NAMES);
        let renamed = objdir.join(format!("{}vmm_gpt.o", self.prefix));
        rename(obj, &renamed, &names, self.prefix);

        let stubs_plain = objdir.join("stubs.o");
        ctx.compile(
            &ctx.harness.cdir.join("stubs.S"),
            &stubs_plain,
            CFLAGS,
            &format!("assembling the stubs for {}", self.what),
        );
        let stubs = objdir.join(format!("{}stubs.o", self.prefix));
        let mut stub_names: Vec<&str> = STUB_NAMES.to_vec();
        stub_names.push("vmm_gpt_impl_panic");
        rename(&stubs_plain, &stubs, &stub_names, self.prefix);

        // Exactly the 21 renamed symbols defined, nothing unprefixed left;
        // the 3 renamed stubs imported; nothing of the library's (which
        // would make it call the library) or of another copy imported.
        let (defined, undefined) = symbols(&renamed);
        let defined = without_odr(defined, Some(self.prefix));
        let expected = prefixed(exports, self.prefix);
        if defined != expected {
            fail(&format!(
                "after renaming, {} defines {defined:?}, not {expected:?}",
                self.what
            ));
        }
        for s in prefixed(&STUB_NAMES, self.prefix) {
            if !undefined.contains(&s) {
                fail(&format!(
                    "after renaming, {} does not import {s}: {undefined:?}",
                    self.what
                ));
            }
        }
        let foreign = |u: &String| {
            u.starts_with("vmm_")
                || COPIES.iter().any(|c| {
                    c.prefix != self.prefix
                        && ctx
                            .exports_harvest
                            .iter()
                            .map(String::as_str)
                            .chain(STUB_NAMES)
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
        let panic = prefixed(&["vmm_gpt_impl_panic"], self.prefix);
        if defined != prefixed(&STUB_NAMES, self.prefix) || undefined != panic {
            fail(&format!(
                "after renaming, the stubs of {} define {defined:?} and import {undefined:?}",
                self.what
            ));
        }

        let name = format!("vmm_gpt_impls_{}", self.prefix.trim_end_matches('_'));
        let out = &ctx.harness.out;
        let lib = out.join(format!("lib{name}.a"));
        let _ = std::fs::remove_file(&lib);
        let mut cmd = archiver();
        cmd.arg("crs").arg(&lib).arg(&renamed).arg(&stubs);
        run(cmd, &format!("archiving {}", self.what));
        println!("cargo:rustc-link-search=native={}", out.display());
        println!("cargo:rustc-link-lib=static:+whole-archive={name}");
        println!("cargo:rustc-cfg={}", self.cfg);
    }
}

/// Builds the original twice, as a DEBUG kernel would (`-DDEBUG`: its
/// ASSERTs on; `ref_*`) and as a production one would (`ref_ndebug_*`),
/// each renamed with its own stubs.
fn build_originals(ctx: &Ctx, original: &Path) {
    for (copy, debug) in [(&ORIGINAL_DEBUG, true), (&ORIGINAL_NDEBUG, false)] {
        let mut flags = ORIGINAL_CFLAGS.to_vec();
        if debug {
            flags.push("-DDEBUG");
        }
        let plain = copy.objdir(ctx).join("vmm_gpt.o");
        ctx.compile(
            original,
            &plain,
            &flags,
            &format!("compiling {}", copy.what),
        );
        let (defined, _) = symbols(&plain);
        let defined = without_odr(defined, None);
        if defined != prefixed(&ctx.exports, "") {
            fail(&format!(
                "{} defines {defined:?}, not the 21 symbols of illumos-build/exports.txt",
                copy.what
            ));
        }
        copy.finish(ctx, &plain);
    }
    println!(
        "cargo:rustc-env=VMM_GPT_IMPLS_ORIGINAL={}",
        original.display()
    );
}

fn main() {
    let root = workspace_root(2);
    let ctx = Ctx {
        harness: Harness::from_dep(),
        exports: exports(&root),
        exports_harvest: [exports(&root), exports_harvest(&root)].concat(),
        sanitize: env_is_1("VMM_GPT_SANITIZE"),
    };

    println!("cargo:rerun-if-changed=build.rs");
    for copy in COPIES {
        println!("cargo::rustc-check-cfg=cfg({})", copy.cfg);
    }

    // 1. The original.
    match original(&root) {
        Some(original) => build_originals(&ctx, &original),
        None => println!("cargo:rustc-env=VMM_GPT_IMPLS_ORIGINAL="),
    }

    // 2. The kernel objects and the release staticlib.
    build_prebuilt(&ctx, &root);
}

/// The kernel objects of illumos-build/build.sh and the release
/// staticlib, when named (scripts/test.sh sets them):
///
/// - `VMM_GPT_KERNEL_OBJECT` (`target/kernel/vmm_gpt.o`, non-DEBUG):
///   renamed `kobj_*`, `cfg(vmm_gpt_kernel_object)`;
/// - `VMM_GPT_KERNEL_OBJECT_DEBUG` (`target/kernel/vmm_gpt.debug.o`,
///   DEBUG): `kobj_debug_*`, `cfg(vmm_gpt_kernel_object_debug)`;
/// - `VMM_GPT_RELEASE_STATICLIB` (`target/release/libvmm_gpt.a`, non-DEBUG): its
///   own members (not core and compiler_builtins) linked into one object,
///   every symbol but the 21 made local, then renamed `rel_*`,
///   `cfg(vmm_gpt_staticlib)`;
/// - the opt-in builds, with `vmm_gpt_harvest_dirty` beside the 21:
///   `VMM_GPT_HARVEST_STATICLIB` (`cargo build --release --features
///   harvest-dirty`; `hv_*`, `cfg(vmm_gpt_harvest_staticlib)`),
///   `VMM_GPT_KERNEL_OBJECT_HARVEST` and `_HARVEST_DEBUG` (`build.sh
///   --harvest`; `kobj_hv_*`, `kobj_hv_debug_*`,
///   `cfg(vmm_gpt_kernel_object_harvest[_debug])`).
///
/// Each gets its own copy of the stubs, as the originals do.  With a
/// kernel object the test binaries are linked without PIE: the kernel code
/// model's absolute 32-bit relocations cannot go into a
/// position-independent executable.
fn build_prebuilt(ctx: &Ctx, root: &Path) {
    const HOW: &str = "illumos-build/build.sh makes the kernel objects, \
                       `cargo build --release -p vmm-gpt` the staticlib";
    let mut no_pie = false;
    for (copy, var, env_name) in [
        (
            &KERNEL_OBJECT,
            "VMM_GPT_KERNEL_OBJECT",
            "VMM_GPT_IMPLS_KERNEL_OBJECT",
        ),
        (
            &KERNEL_OBJECT_DEBUG,
            "VMM_GPT_KERNEL_OBJECT_DEBUG",
            "VMM_GPT_IMPLS_KERNEL_OBJECT_DEBUG",
        ),
        (
            &STATICLIB,
            "VMM_GPT_RELEASE_STATICLIB",
            "VMM_GPT_IMPLS_STATICLIB",
        ),
        (
            &HARVEST_STATICLIB,
            "VMM_GPT_HARVEST_STATICLIB",
            "VMM_GPT_IMPLS_HARVEST_STATICLIB",
        ),
        (
            &KERNEL_OBJECT_HARVEST,
            "VMM_GPT_KERNEL_OBJECT_HARVEST",
            "VMM_GPT_IMPLS_KERNEL_OBJECT_HARVEST",
        ),
        (
            &KERNEL_OBJECT_HARVEST_DEBUG,
            "VMM_GPT_KERNEL_OBJECT_HARVEST_DEBUG",
            "VMM_GPT_IMPLS_KERNEL_OBJECT_HARVEST_DEBUG",
        ),
    ] {
        // The tests read these with env!: empty, not missing.
        let Some(file) = prebuilt(var, root, HOW) else {
            println!("cargo:rustc-env={env_name}=");
            continue;
        };
        if copy.cfg == STATICLIB.cfg || copy.cfg == HARVEST_STATICLIB.cfg {
            let obj = staticlib_object(&file, &copy.objdir(ctx), ctx.exports_of(copy));
            copy.finish(ctx, &obj);
        } else {
            copy.finish(ctx, &file);
            no_pie = true;
        }
        println!("cargo:rustc-env={env_name}={}", file.display());
    }
    println!("cargo:no_pie={}", u8::from(no_pie));
}
