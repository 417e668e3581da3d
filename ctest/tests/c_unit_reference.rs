//! The C unit tests (`ctest/c/test_*.c`) against the original illumos
//! `vmm_gpt.c` compiled with `-DDEBUG` (its `ASSERT`s live, as in a DEBUG
//! kernel): runs the executable that build.rs linked when `ILLUMOS_GATE` was
//! set.  `c_unit_reference_ndebug` runs them against the non-DEBUG build.

mod exe;

// Every test target of this package gets the C harness linked in (see
// Cargo.toml), which calls the library: link it, though unused here.
use vmm_gpt as _;
use vmm_gpt_harness as _;

fn main() {
    exe::run(
        "c_unit_reference",
        &[exe::Exe {
            what: "DEBUG original",
            path: env!("VMM_GPT_REFERENCE_EXE"),
            unset: "ILLUMOS_GATE",
        }],
        "VMM_GPT_REQUIRE_REFERENCE",
    );
}
