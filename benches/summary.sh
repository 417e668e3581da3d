#!/usr/bin/env bash
# The recorded comparison (benches/README.md): bench-summary built as the
# kernel builds the library, with the static relocation model, so that the
# library calls the stubs and the kernel stand-in directly, as the original
# does (a PIC/PIE build makes the library's calls go through the GOT, while
# the C original's are relaxed to direct calls by the linker).  The target
# triple is named so that RUSTFLAGS reach only the target, not build scripts
# and proc macros; the binary lands in target/<triple>/release.
#
# The harvest workloads need the opt-in staticlib (the feature
# harvest-dirty): it is built here the same way, in a target directory of
# its own (harvest-bench in the target directory), and linked through
# VMM_GPT_HARVEST_STATICLIB.
#
#   ILLUMOS_GATE=../shared/illumos-gate benches/summary.sh [--pairs N] [--format ept|rvi] [--only S]...
#
# Without ILLUMOS_GATE the library runs alone.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${ILLUMOS_GATE:-}" ]; then
    # build scripts run in other directories: make the path absolute
    ILLUMOS_GATE="$(cd "$ILLUMOS_GATE" && pwd)"
    export ILLUMOS_GATE
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-C relocation-model=static"
harvest_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")/harvest-bench"
cargo build --quiet --release --target "$triple" -p vmm-gpt --features harvest-dirty \
    --target-dir "$harvest_dir"
export VMM_GPT_HARVEST_STATICLIB="$harvest_dir/$triple/release/libvmm_gpt.a"
exec cargo run --quiet --release --target "$triple" \
    -p vmm-gpt-benches --bin bench-summary -- "$@"
