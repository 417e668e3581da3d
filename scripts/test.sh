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

step cargo clippy
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --release (the staticlib; headers must not change)"
cargo build --release -p vmm-gpt
test -f target/release/libvmm_gpt.a

step cargo test
cargo test --workspace

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    step "headers unchanged by the builds"
    git diff --exit-code --stat -- include/
fi
echo
echo "test.sh: all tests passed"
