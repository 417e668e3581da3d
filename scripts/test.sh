#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the release build of
# the staticlib (which must leave the checked-in headers unchanged), and
# `cargo test` over the workspace: the C unit tests against the library
# (and under valgrind when it is installed), against the original vmm_gpt.c
# when ILLUMOS_GATE is set, the ABI checks, and the header checks.
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

step "illumos-build/build.sh (the kernel object; checked and tested by cargo test)"
bash illumos-build/build.sh
export VMM_GPT_KERNEL_OBJECT="$PWD/target/kernel/vmm_gpt.o"
if [ -f target/kernel/vmm_gpt.debug.o ]; then
    export VMM_GPT_KERNEL_OBJECT_DEBUG="$PWD/target/kernel/vmm_gpt.debug.o"
fi

step cargo clippy
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --release (the staticlib; headers must not change)"
cargo build --release -p vmm-gpt
test -f target/release/libvmm_gpt.a
export VMM_GPT_RELEASE_STATICLIB="$PWD/target/release/libvmm_gpt.a"

step cargo test
cargo test --workspace

step "cargo test -p vmm-gpt-difftest with the C under ASan and UBSan"
# The differential tests again, the C sides (kernel stand-in, original)
# compiled with -fsanitize=address,undefined, in a target directory of
# their own.  Their valgrind test skips itself here: valgrind and ASan do
# not mix.
VMM_GPT_SANITIZE=1 VMM_GPT_DIFF_OPS="${VMM_GPT_SANITIZE_OPS:-1000000}" \
    cargo test -p vmm-gpt-difftest --target-dir target/sanitize

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    step "headers unchanged by the builds"
    git diff --exit-code --stat -- include/
fi
echo
echo "test.sh: all tests passed"
