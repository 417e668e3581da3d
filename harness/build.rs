//! Compiles the userland kernel stand-in once (`c/`: the kernel services
//! the library imports, the three indirection stubs, the EPT and AMD test
//! formats; against `include/`, the stand-in headers, and the library's
//! headers) with the one strict flag set, into `libvmm_gpt_harness.a`.
//!
//! The archive is linked whole and unbundled into every dependent: the
//! stubs and most kernel services are referenced only by the `vmm-gpt`
//! rlib, which the linker reads after this crate's archive, and kernel.c's
//! constructor by nothing at all, so a plain archive link would drop them
//! (`+whole-archive` needs `-bundle` in an rlib).  The build scripts of the
//! dependents get `DEP_VMM_GPT_HARNESS_{CDIR,KINC,HINC,LIB}`: the sources,
//! the stand-in headers, the library's headers and the archive, for the
//! executables and renamed implementations they link themselves.
//!
//! `VMM_GPT_SANITIZE=1` compiles it with ASan and UBSan (the dependent
//! links their runtimes: difftest's build script).

use vmm_gpt_harness_build::{
    env_is_1, env_path, library_debug, rerun_if_changed_tree, workspace_root, CFLAGS,
    SANITIZE_CFLAGS,
};

const SOURCES: &[&str] = &["kernel.c", "stubs.S", "pte_ept.c", "pte_rvi.c"];

fn main() {
    let manifest = env_path("CARGO_MANIFEST_DIR");
    let cdir = manifest.join("c");
    let kinc = manifest.join("include");
    let hinc = workspace_root(1).join("include");
    println!("cargo:rerun-if-changed=build.rs");
    for dir in [&cdir, &kinc, &hinc] {
        rerun_if_changed_tree(dir);
    }
    let mut build = cc::Build::new();
    build
        .include(&cdir)
        .include(&kinc)
        .include(&hinc)
        .files(SOURCES.iter().map(|f| cdir.join(f)))
        .flag("-Werror=incompatible-pointer-types")
        .link_lib_modifier("-bundle")
        .link_lib_modifier("+whole-archive");
    for flag in CFLAGS {
        build.flag(flag);
    }
    if env_is_1("VMM_GPT_SANITIZE") {
        for flag in SANITIZE_CFLAGS {
            build.flag(flag);
        }
    }
    build.compile("vmm_gpt_harness");
    // Whether the library linked as a crate is a DEBUG build, by its own
    // rule: `LIB.debug`, which picks the original it is compared with.
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_library_debug)");
    if library_debug() {
        println!("cargo:rustc-cfg=vmm_gpt_library_debug");
    }
    println!("cargo:rustc-link-lib=dylib=pthread");
    println!("cargo:rustc-link-lib=dylib=dl");
    let out = env_path("OUT_DIR");
    println!("cargo:cdir={}", cdir.display());
    println!("cargo:kinc={}", kinc.display());
    println!("cargo:hinc={}", hinc.display());
    println!("cargo:lib={}", out.join("libvmm_gpt_harness.a").display());
}
