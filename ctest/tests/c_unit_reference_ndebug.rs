//! The C unit tests (`ctest/c/test_*.c`) against the original illumos
//! `vmm_gpt.c` compiled without `DEBUG`, as production illumos runs it (its
//! `ASSERT`s compiled out): runs the executable that build.rs linked when
//! `ILLUMOS_GATE` was set.  What this build does with hostile input is what
//! the non-DEBUG builds of the library must do (test_parity.c).

mod exe;

// Every test target of this package gets the C harness linked in (see
// Cargo.toml), which calls the library: link it, though unused here.
use vmm_gpt as _;
use vmm_gpt_harness as _;

fn main() {
    exe::run(
        "c_unit_reference_ndebug",
        &[exe::Exe {
            what: "non-DEBUG original",
            path: env!("VMM_GPT_REFERENCE_NDEBUG_EXE"),
            unset: "ILLUMOS_GATE",
        }],
        "VMM_GPT_REQUIRE_REFERENCE",
    );
}
