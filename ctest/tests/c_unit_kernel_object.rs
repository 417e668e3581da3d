//! The C unit tests (`ctest/c/test_*.c`) against the kernel objects: runs
//! the executables that build.rs linked with `VMM_GPT_KERNEL_OBJECT` (the
//! object `illumos-build/build.sh` makes, `target/kernel/vmm_gpt.o`, a
//! non-DEBUG build) and, when set, `VMM_GPT_KERNEL_OBJECT_DEBUG` (its DEBUG
//! variant, `vmm_gpt.debug.o`).  Those executables hold the kernel object,
//! the kernel stand-in, the stubs and the PTE formats, and nothing of Rust's
//! runtime.  Each knows whether it is a DEBUG build, so the death tests of
//! DEBUG-only checks expect the panic from the DEBUG object and the
//! non-DEBUG original's results from the other.

mod exe;

// Every test target of this package gets the C harness linked in (see
// Cargo.toml), which calls the library: link it, though unused here.
use vmm_gpt as _;
use vmm_gpt_harness as _;

fn main() {
    exe::run(
        "c_unit_kernel_object",
        &[
            exe::Exe {
                what: "non-DEBUG kernel object",
                path: env!("VMM_GPT_KERNEL_OBJECT_EXE"),
                unset: "VMM_GPT_KERNEL_OBJECT",
            },
            exe::Exe {
                what: "DEBUG kernel object",
                path: env!("VMM_GPT_KERNEL_OBJECT_DEBUG_EXE"),
                unset: "VMM_GPT_KERNEL_OBJECT_DEBUG",
            },
        ],
        "VMM_GPT_REQUIRE_KERNEL_OBJECT",
    );
}
