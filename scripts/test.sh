#!/usr/bin/env bash
# Runs every test of the project: formatting, the kernel objects, lints,
# the release build of the staticlib, and
# `cargo test` over the workspace: the C unit tests against the library
# (and under valgrind when it is installed), against the original vmm_gpt.c
# when ILLUMOS_GATE is set, the ABI checks, the header checks, and with
# ILLUMOS_GATE the consumer test (consumer/: bhyve's vmm_vm.c over every
# implementation built here, the opt-in ones through its patched copy).
#
# Environment:
#   ILLUMOS_GATE               an illumos-gate checkout (or ../shared/illumos-gate)
#                              holding the original; unset: reference tests skip
#   VMM_GPT_REQUIRE_REFERENCE  1: fail instead of skipping without the original
#   VMM_GPT_VALGRIND           1: require valgrind; 0: skip it; unset: use it if
#                              installed
#   VMM_GPT_SANITIZE_OPS       operations of the differential run under the
#                              sanitizers (default 1000000)
#   VMM_GPT_REQUIRE_KERNEL_OBJECT  1: fail instead of skipping when a test
#                              lacks the kernel object (this script always
#                              builds it: illumos-build/build.sh, then the
#                              checker, the C unit tests and the differential
#                              test run against target/kernel/vmm_gpt.o)
#   VMM_GPT_REQUIRE_HARVEST    1: fail instead of skipping when a test lacks
#                              the opt-in builds (this script always builds
#                              them: build.sh --harvest, the staticlib with
#                              the feature harvest-dirty)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${ILLUMOS_GATE:-}" ]; then
    # build scripts run in other directories: make the path absolute
    ILLUMOS_GATE="$(cd "$ILLUMOS_GATE" && pwd)"
    export ILLUMOS_GATE
    echo "test.sh: original vmm_gpt.c from $ILLUMOS_GATE"
else
    echo "test.sh: ILLUMOS_GATE unset: tests against the original are skipped"
fi

step() { echo; echo "== $*"; }

step cargo fmt --check
cargo fmt --all -- --check

step "illumos-build/build.sh (the kernel objects; checked and tested by cargo test)"
# Stable rustc, x86_64-unknown-none, -D warnings: any rustc warning fails.
bash illumos-build/build.sh

step "the kernel build offline: empty cargo home, no network, the tree unchanged"
tree_before="$(git status --porcelain 2>/dev/null || true)"
offline_home="$(mktemp -d)"
for v in nondebug debug; do
    CARGO_HOME="$offline_home" CARGO_NET_OFFLINE=true \
        bash illumos-build/build.sh --variant "$v" --check \
        --target-dir target/kernel-offline --out "target/kernel-offline/vmm_gpt.$v.o" >/dev/null
    cmp "target/kernel-offline/vmm_gpt.$v.o" \
        "target/kernel/vmm_gpt$([ "$v" = debug ] && echo .debug).o" ||
        { echo "test.sh: the offline $v build differs from the normal one" >&2; exit 1; }
done
rm -rf "$offline_home"
if [ "$(git status --porcelain 2>/dev/null || true)" != "$tree_before" ]; then
    echo "test.sh: the kernel builds changed the source tree:" >&2
    git status --porcelain >&2
    exit 1
fi
echo "offline builds of both variants: identical objects, checked, tree unchanged"

step "illumos-build/build.sh --mode json (nightly, -Z build-std, retpolines, stack protector)"
# Where a nightly with rust-src can be had (.ci/run installs them);
# VMM_GPT_REQUIRE_JSON=1 makes its absence a failure.
if cargo "+${VMM_GPT_NIGHTLY:-nightly}" --version >/dev/null 2>&1 &&
    [ -d "$(rustc "+${VMM_GPT_NIGHTLY:-nightly}" --print sysroot)/lib/rustlib/src/rust/library/core" ]; then
    for v in nondebug debug; do
        bash illumos-build/build.sh --mode json --variant "$v" --check \
            --target-dir target/kernel-json --out "target/kernel-json/vmm_gpt.$v.o" | tail -n 4
    done
elif [ "${VMM_GPT_REQUIRE_JSON:-0}" = 1 ]; then
    echo "test.sh: VMM_GPT_REQUIRE_JSON=1 but no ${VMM_GPT_NIGHTLY:-nightly} toolchain with rust-src" >&2
    exit 1
else
    echo "skipped: no ${VMM_GPT_NIGHTLY:-nightly} toolchain with rust-src"
fi
# Both variants build on stable: both are always there.
export VMM_GPT_KERNEL_OBJECT="$PWD/target/kernel/vmm_gpt.o"
export VMM_GPT_KERNEL_OBJECT_DEBUG="$PWD/target/kernel/vmm_gpt.debug.o"

step "the opt-in builds: the extension vmm_gpt_harvest_dirty (feature harvest-dirty)"
# The kernel objects (checked: the 21 exports and the extension's, every
# other rule as for the default objects) and the staticlib, in a target
# directory of their own so that the default build never sees the feature.
bash illumos-build/build.sh --harvest --check | tail -n 12
if [ -d "$(rustc "+${VMM_GPT_NIGHTLY:-nightly}" --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library/core" ]; then
    bash illumos-build/build.sh --harvest --mode json --variant nondebug --check \
        --target-dir target/kernel-json --out target/kernel-json/vmm_gpt.harvest.o | tail -n 4
fi
cargo build --release -p vmm-gpt --features harvest-dirty --target-dir target/harvest
export VMM_GPT_HARVEST_STATICLIB="$PWD/target/harvest/release/libvmm_gpt.a"
export VMM_GPT_KERNEL_OBJECT_HARVEST="$PWD/target/kernel/vmm_gpt.harvest.o"
export VMM_GPT_KERNEL_OBJECT_HARVEST_DEBUG="$PWD/target/kernel/vmm_gpt.harvest.debug.o"

step cargo clippy
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p vmm-gpt --features harvest-dirty -- -D warnings

step "cargo build --release (the staticlib)"
cargo build --release -p vmm-gpt
test -f target/release/libvmm_gpt.a
export VMM_GPT_RELEASE_STATICLIB="$PWD/target/release/libvmm_gpt.a"

step cargo test
cargo test --workspace

step "cargo test -p vmm-gpt-difftest -p vmm-gpt-consumer with the C under ASan and UBSan"
# The differential tests and the real-consumer tests again, the C sides
# (kernel stand-in, original, vmm_vm.c and its driver) compiled with
# -fsanitize=address,undefined, in a target directory of
# their own.  Their valgrind test skips itself here: valgrind and ASan do
# not mix.
VMM_GPT_SANITIZE=1 VMM_GPT_DIFF_OPS="${VMM_GPT_SANITIZE_OPS:-1000000}" \
    cargo test -p vmm-gpt-difftest -p vmm-gpt-consumer --target-dir target/sanitize

step "the checked-in headers are what cbindgen makes (tools/headers)"
# The headers are made by `cargo run -p vmm-gpt-headers`, never by a build.
cargo run -q -p vmm-gpt-headers -- --check
echo
echo "test.sh: all tests passed"
