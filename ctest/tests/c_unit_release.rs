//! The C unit tests (`ctest/c/test_*.c`) against the release staticlib
//! (`cargo build --release -p vmm-gpt`, `target/release/libvmm_gpt.a`: the
//! library without `debug_assertions`, a non-DEBUG build): runs the
//! executable that build.rs linked with `VMM_GPT_RELEASE_STATICLIB`
//! (scripts/test.sh sets it after the release build).  Skipped without it,
//! unless `VMM_GPT_REQUIRE_KERNEL_OBJECT=1` (CI), which makes that a
//! failure.

mod exe;

// Every test target of this package gets the C harness linked in (see
// Cargo.toml), which calls the library: link it, though unused here.
use vmm_gpt as _;
use vmm_gpt_harness as _;

fn main() {
    exe::run(
        "c_unit_release",
        &[exe::Exe {
            what: "release staticlib (non-DEBUG)",
            path: env!("VMM_GPT_RELEASE_EXE"),
            unset: "VMM_GPT_RELEASE_STATICLIB",
        }],
        "VMM_GPT_REQUIRE_KERNEL_OBJECT",
    );
}
