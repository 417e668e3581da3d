//! The differential tests' link setup.  The implementations come renamed
//! from `vmm-gpt-impls`, the kernel stand-in from `vmm-gpt-harness`;
//! here: with kernel objects linked, the tests without PIE (the kernel
//! code model's absolute 32-bit relocations cannot go into a
//! position-independent executable); `-rdynamic` for the stand-in's
//! `modgetsymname()` (dladdr); `VMM_GPT_HAVE_VALGRIND_H`.
//!
//! `VMM_GPT_SANITIZE=1` (the stand-in and the originals compiled with
//! AddressSanitizer and UndefinedBehaviorSanitizer by those crates) links
//! their runtimes and sets `cfg(vmm_gpt_sanitize)`.

use vmm_gpt_harness_build::{env_is_1, env_path, have_valgrind_h};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(vmm_gpt_sanitize)");
    if env_is_1("VMM_GPT_SANITIZE") {
        // As `gcc -fsanitize=address,undefined` would link them; rustc
        // links with -nodefaultlibs, which leaves them out, so they are
        // named here, as the first shared libraries (ASan insists on
        // coming first).
        println!("cargo:rustc-link-lib=dylib=asan");
        println!("cargo:rustc-link-lib=dylib=ubsan");
        println!("cargo:rustc-cfg=vmm_gpt_sanitize");
    }
    if std::env::var("DEP_VMM_GPT_IMPLS_NO_PIE").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg-tests=-no-pie");
    }
    println!("cargo:rustc-link-arg-tests=-rdynamic");
    have_valgrind_h(&env_path("OUT_DIR"));
}
