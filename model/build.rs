//! Links the userland kernel stand-in of `ctest/c` (the kernel services the
//! library imports, the three indirection stubs, the test EPT and AMD
//! formats) into the model's library, and so into its tests.
//!
//! The archive is linked whole and unbundled: the stubs and most kernel
//! services are referenced only by the `vmm-gpt` rlib, which the linker
//! reads after this crate's archive, so a plain archive link would drop
//! them.  (`+whole-archive` needs `-bundle` in an rlib.)

fn main() {
    let c = "../ctest/c";
    let files = ["kernel.c", "stubs.S", "pte_ept.c", "pte_rvi.c"];
    println!("cargo:rerun-if-changed=build.rs");
    for f in files {
        println!("cargo:rerun-if-changed={c}/{f}");
    }
    println!("cargo:rerun-if-changed={c}/ktest.h");
    println!("cargo:rerun-if-changed=../ctest/include");
    println!("cargo:rerun-if-changed=../include");
    let mut build = cc::Build::new();
    build
        .files(files.iter().map(|f| format!("{c}/{f}")))
        .include(c)
        .include("../ctest/include")
        .include("../include")
        .flag("-std=gnu11")
        .flag("-Wall")
        .flag("-Wextra")
        .warnings_into_errors(true)
        .link_lib_modifier("-bundle")
        .link_lib_modifier("+whole-archive");
    build.compile("vmm_gpt_model_kernel");
    println!("cargo:rustc-link-lib=dylib=pthread");
    println!("cargo:rustc-link-lib=dylib=dl");
    // modgetsymname() (only used in vmm_gpt_init()'s warnings) names symbols
    // through dladdr(), which sees only the dynamic symbol table.
    println!("cargo:rustc-link-arg-tests=-rdynamic");
}
