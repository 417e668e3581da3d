#!/usr/bin/env bash
# Builds the kernel object: the vmm-gpt library compiled for illumos kernel
# code and linked into one relocatable object that the vmm module links in
# place of vmm_gpt.o.
#
#   illumos-build/build.sh [--variant nondebug|debug|all] [--mode host|json]
#                          [--out FILE] [--target-dir DIR] [--require-debug]
#                          [--check]
#
# Variants (the library's checks, see README.md "DEBUG and non-DEBUG"):
#   nondebug  -> target/kernel/vmm_gpt.o        VERIFY-class checks only
#   debug     -> target/kernel/vmm_gpt.debug.o  also the ASSERT-class ones
#                (debug_assertions), for DEBUG kernels
#   all       (default) both; the debug variant needs a nightly toolchain
#             (-Z ub-checks=no) and is skipped with a message when there is
#             none, unless --require-debug.
#
# Modes:
#   host  (default) the host's x86_64 target with kernel code generation
#         flags, on stable (nondebug) and nightly (debug).  The precompiled
#         `core` is userland code and must not be linked: the build fails if
#         the library's object needs anything from it.
#   json  the illumos kernel target specification
#         (x86_64-unknown-illumos-kernel.json) with -Z build-std=core: needs a
#         nightly with rust-src (VMM_GPT_NIGHTLY, default $PINNED_NIGHTLY).
#
# --out FILE writes the (single) variant built to FILE, e.g. an illumos
# build's $(OBJS_DIR)/vmm_gpt.o.  --target-dir DIR is cargo's target
# directory (default target/kernel-build, apart from the normal build's).
# --check then runs the checker (illumos-build/objcheck) on what was built
# and fails if it breaks a rule (scripts/test.sh has cargo test do that).
#
# Environment: VMM_GPT_NIGHTLY (toolchain for the debug variant and json
# mode), VMM_GPT_LD, VMM_GPT_OBJCOPY, VMM_GPT_NM, VMM_GPT_AR,
# VMM_GPT_READELF, VMM_GPT_SIZE (GNU binutils; on illumos gld, gobjcopy, ... are tried when
# the plain names are not GNU's).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

# The nightly the json mode was written against: rustc 1.97.0-nightly
# (e50aa6fba 2026-05-19).  rustup names a nightly by the day after its commit.
PINNED_NIGHTLY=nightly-2026-05-20

die() {
    echo "build.sh: error: $*" >&2
    exit 1
}
note() { echo "build.sh: $*"; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

variant=all
mode=host
out=""
target_dir="$root/target/kernel-build"
require_debug=0
check=0
while [ $# -gt 0 ]; do
    case "$1" in
    --variant) variant="${2:?--variant needs a value}"; shift 2 ;;
    --mode) mode="${2:?--mode needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --target-dir) target_dir="${2:?--target-dir needs a value}"; shift 2 ;;
    --require-debug) require_debug=1; shift ;;
    --check) check=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$variant" in nondebug | debug | all) ;; *) die "--variant: nondebug, debug or all, not '$variant'" ;; esac
case "$mode" in host | json) ;; *) die "--mode: host or json, not '$mode'" ;; esac
if [ -n "$out" ] && [ "$variant" = all ]; then
    die "--out needs a single --variant (nondebug or debug)"
fi
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
case "$out" in "" | /*) ;; *) out="$PWD/$out" ;; esac

# --- tools -----------------------------------------------------------------

# A GNU binutils tool: $1 is the variable that overrides it, $2 the name.
gnu_tool() {
    local override="$1" name="$2" t
    if [ -n "${!override:-}" ]; then
        echo "${!override}"
        return
    fi
    for t in "$name" "g$name"; do
        if command -v "$t" >/dev/null 2>&1 && [[ "$("$t" --version 2>/dev/null || true)" == *GNU* ]]; then
            echo "$t"
            return
        fi
    done
    die "GNU $name not found (set $override)"
}
LD="$(gnu_tool VMM_GPT_LD ld)"
OBJCOPY="$(gnu_tool VMM_GPT_OBJCOPY objcopy)"
NM="$(gnu_tool VMM_GPT_NM nm)"
AR="$(gnu_tool VMM_GPT_AR ar)"
READELF="$(gnu_tool VMM_GPT_READELF readelf)"
SIZE="$(gnu_tool VMM_GPT_SIZE size)"
command -v cargo >/dev/null || die "cargo not found"

nightly="${VMM_GPT_NIGHTLY:-}"
if [ -z "$nightly" ]; then
    if [ "$mode" = json ]; then nightly="$PINNED_NIGHTLY"; else nightly=nightly; fi
fi
have_toolchain() { cargo "+$1" --version >/dev/null 2>&1; }

# Lists without comments.
names() { grep -v '^[[:space:]]*\(#\|$\)' "$1"; }
EXPORTS="$here/exports.txt"
IMPORTS="$here/imports.txt"
LDSCRIPT="$here/kernel-object.ld"
TARGET_JSON="$here/x86_64-unknown-illumos-kernel.json"

# Kernel code generation on the host target (the json target sets the same
# in its specification):
# - kernel code model, static relocations: absolute 32-bit sign-extended
#   addresses (R_X86_64_32S) as the kernel's C code uses, and no GOT;
# - no red zone (interrupts run on the kernel stack), no MMX/SSE/AVX and the
#   soft-float ABI (kernel code must not touch the FPU/SIMD state);
# - frame pointers (kernel stack traces, DTrace, mdb);
# - no unwind tables, abort on panic (the kernel never unwinds);
# - relro-level=off: rustc then leaves out the module flag RtLibUseGOT,
#   which makes LLVM call memset/memcpy through the GOT (call
#   *memset@GOTPCREL(%rip), which krtld would turn into a jump into garbage)
#   when it emits those calls.
# rustc warns that disabling SSE2 and enabling soft-float on an x86_64 target
# with a hard-float ABI is being phased out ("will become a hard error"): the
# flags still take effect here, and the checker proves the result has no
# SIMD/x87 code.  The json mode needs no such flags.
HOST_FLAGS=(
    -C code-model=kernel
    -C relocation-model=static
    -C no-redzone=yes
    -C target-feature=-mmx,-sse,-sse2,-sse3,-ssse3,-sse4.1,-sse4.2,-avx,-avx2,+soft-float
    -C force-frame-pointers=yes
    -C force-unwind-tables=no
    -C panic=abort
    -C relro-level=off
)

host_triple="$(rustc -vV | sed -n 's/^host: //p')"

# --- build -----------------------------------------------------------------

# Builds one variant's staticlib; prints its path.
build_staticlib() {
    local v="$1" toolchain=() flags=() target=() zflags=() profile_env=()
    if [ "$mode" = host ]; then
        flags=("${HOST_FLAGS[@]}")
        target=(--target "$host_triple")
    else
        toolchain=("+$nightly")
        target=(--target "$TARGET_JSON")
        zflags=(-Z build-std=core -Z json-target-spec)
    fi
    # Debug info is left out: the kernel cannot use Rust DWARF (no CTF is
    # made from it) and with it rustc puts every function's CFI in .eh_frame.
    profile_env=(
        CARGO_PROFILE_RELEASE_DEBUG=0
        CARGO_PROFILE_RELEASE_LTO=false
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
        CARGO_PROFILE_RELEASE_PANIC=abort
    )
    if [ "$v" = debug ]; then
        # ASSERT-class checks (debug_assertions); no overflow checks and no
        # UB checks, which call into core's panic machinery.
        toolchain=("+$nightly")
        profile_env+=(CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=false)
        flags+=(-Z ub-checks=no)
    else
        profile_env+=(CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=false CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=false)
    fi
    local encoded="" f
    for f in "${flags[@]}"; do
        encoded="${encoded:+$encoded$'\x1f'}$f"
    done

    local json
    # The flags reach only the library (with --target, build scripts are
    # built without them); nothing from the caller's environment leaks in.
    json="$(
        cd "$root"
        unset RUSTFLAGS RUSTC RUSTDOC CARGO_BUILD_TARGET CARGO_TARGET_DIR
        env "${profile_env[@]}" CARGO_ENCODED_RUSTFLAGS="$encoded" \
            cargo "${toolchain[@]}" build --release -p vmm-gpt --lib \
            "${target[@]}" "${zflags[@]}" --target-dir "$target_dir" \
            --message-format=json-render-diagnostics
    )" || die "cargo build of the $v variant failed"
    local lib
    lib="$(printf '%s\n' "$json" | grep '"reason":"compiler-artifact"' |
        grep '"name":"vmm_gpt"' |
        sed -n 's|.*"\([^"]*/libvmm_gpt[^"/]*\.a\)".*|\1|p' | tail -1)"
    [ -n "$lib" ] && [ -f "$lib" ] || die "cargo reported no libvmm_gpt.a for the $v variant"
    echo "$lib"
}

scratch="$(mktemp -d "${TMPDIR:-/tmp}/vmm-gpt-kobj.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# Links a staticlib's own members into the kernel object $2.
link_object() {
    local lib="$1" dest="$2" v="$3" work="$scratch/$3"
    mkdir -p "$work"

    # The library's own members (rustc names them <crate>-<hash>.*.o); the
    # rest of the archive is core and compiler_builtins.
    local members=()
    mapfile -t members < <("$AR" t "$lib" | grep '^vmm_gpt-.*\.o$')
    [ ${#members[@]} -gt 0 ] || die "no vmm_gpt member in $lib"
    (cd "$work" && "$AR" x "$lib" "${members[@]}")
    local objs=()
    for m in "${members[@]}"; do objs+=("$work/$m"); done

    # Whatever the library's object needs beyond the kernel's services
    # would come from the archive's core/compiler_builtins, which are
    # userland code (SSE, red zone): refuse instead of linking them.
    local needed
    needed="$("$NM" -u "${objs[@]}" | awk 'NF == 2 && $1 == "U" { print $2 }' | sort -u |
        grep -vxF -f <(names "$IMPORTS") || true)"
    if [ -n "$needed" ]; then
        echo "build.sh: the $v variant's object needs symbols that only the Rust runtime in" >&2
        echo "$lib provides (core/compiler_builtins, built as userland code):" >&2
        printf '  %s\n' "$needed" >&2
        die "refusing to link userland runtime code into a kernel object; see illumos-build/README.md"
    fi

    # .eh_frame is dropped by the link script: prove first that it holds
    # no unwinding information (no personality routine, no LSDA).  (Output
    # is captured before grep: with pipefail, grep -q ending a pipe early
    # could make a match look like a failure.)
    local sections frames fdes=0
    sections="$("$READELF" -SW "${objs[@]}")"
    if grep -q '\.gcc_except_table' <<<"$sections"; then
        die "the $v variant has exception tables (.gcc_except_table): it can unwind"
    fi
    if grep -q ' \.eh_frame ' <<<"$sections"; then
        frames="$("$READELF" --debug-dump=frames "${objs[@]}" 2>/dev/null)"
        if grep 'Augmentation:' <<<"$frames" | grep -q P; then
            die "the $v variant's .eh_frame names a personality routine: it can unwind"
        fi
        fdes="$(grep -c ' FDE ' <<<"$frames" || true)"
    fi

    # One relocatable object: the members' sections gathered by kind,
    # .eh_frame dropped, everything unreachable from the 21 exports removed
    # (the Rust panic handler, inlined copies), then every symbol but the
    # 21 made local.
    local roots=()
    while IFS= read -r s; do roots+=(-u "$s"); done < <(names "$EXPORTS")
    "$LD" -r --gc-sections "${roots[@]}" -T "$LDSCRIPT" -o "$work/linked.o" "${objs[@]}"
    mkdir -p "$(dirname "$dest")"
    "$OBJCOPY" --keep-global-symbols="$EXPORTS" --strip-debug "$work/linked.o" "$dest.tmp"
    # Replaced only when it changed, so that make relinks the module only
    # then.
    if cmp -s "$dest.tmp" "$dest"; then
        rm -f "$dest.tmp"
    else
        mv -f "$dest.tmp" "$dest"
    fi

    # The exports must all be there and be the only global definitions.
    local globals
    globals="$("$NM" -g --defined-only "$dest" | awk '{ print $NF }' | sort)"
    if [ "$globals" != "$(names "$EXPORTS" | sort)" ]; then
        diff <(names "$EXPORTS" | sort) <(echo "$globals") >&2 || true
        die "$dest: the global definitions are not exactly the 21 exports (diff: - missing, + extra)"
    fi

    echo
    note "$v variant: $dest"
    note "  from ${members[*]} ($(basename "$lib"))"
    note "  dropped .eh_frame: $fdes frame descriptors, no personality, no LSDA"
    "$NM" "$dest" | awk '
        $1 == "U" { u++ } NF == 3 && $2 ~ /^[tT]$/ { f++ }
        END { printf "build.sh:   %d functions, %d imports\n", f, u }'
    "$SIZE" "$dest" | sed 's/^/build.sh:   /'
    "$READELF" -rW "$dest" | awk '$3 ~ /^R_/ { n[$3]++ } END { for (k in n) printf "build.sh:   %5d %s\n", n[k], k }' | sort -k3
}

build_variant() {
    local v="$1" dest="$2" lib
    if [ "$v" = debug ] || [ "$mode" = json ]; then
        if ! have_toolchain "$nightly"; then
            if [ "$v" = debug ] && [ "$variant" = all ] && [ "$require_debug" = 0 ]; then
                note "no '$nightly' toolchain: the debug variant (needs -Z ub-checks=no) is skipped"
                rm -f "$dest"
                return
            fi
            die "the $v variant in $mode mode needs the '$nightly' toolchain (set VMM_GPT_NIGHTLY)"
        fi
    fi
    note "building the $v variant ($mode mode)"
    if [ "$mode" = host ]; then
        note "(rustc's warnings about the mmx, sse2 and soft-float target features are"
        note " expected on the host target: the flags take effect; see HOST_FLAGS in build.sh)"
    fi
    lib="$(build_staticlib "$v")"
    link_object "$lib" "$dest" "$v"
}

kdir="$root/target/kernel"
built=()
case "$variant" in
nondebug) built=("${out:-$kdir/vmm_gpt.o}") && build_variant nondebug "${built[0]}" ;;
debug) built=("${out:-$kdir/vmm_gpt.debug.o}") && build_variant debug "${built[0]}" ;;
all)
    built=("$kdir/vmm_gpt.o" "$kdir/vmm_gpt.debug.o")
    build_variant nondebug "${built[0]}"
    build_variant debug "${built[1]}"
    ;;
esac

if [ "$check" = 1 ]; then
    objects=()
    for o in "${built[@]}"; do
        if [ -f "$o" ]; then objects+=("$o"); fi
    done
    echo
    note "checking ${objects[*]}"
    # The checker is a host program: the default toolchain, no kernel flags.
    (
        cd "$root"
        unset CARGO_ENCODED_RUSTFLAGS RUSTFLAGS
        cargo run --release -q -p vmm-gpt-objcheck --target-dir "$target_dir" -- \
            --brief "${objects[@]}"
    ) || die "the kernel object breaks the checker's rules (see above)"
fi
