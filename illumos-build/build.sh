#!/usr/bin/env bash
# Builds the kernel object: the vmm-gpt library compiled for illumos kernel
# code and linked into one relocatable object that the vmm module links in
# place of vmm_gpt.o.
#
#   illumos-build/build.sh [--variant nondebug|debug|all] [--mode none|json]
#                          [--harvest] [--out FILE] [--target-dir DIR] [--check]
#
# Variants (the library's checks, see docs/checks.md):
#   nondebug  -> target/kernel/vmm_gpt.o        as production illumos runs
#                the original: its VERIFYs, no ASSERTs
#   debug     -> target/kernel/vmm_gpt.debug.o  also the original's ASSERTs
#                (--cfg vmm_gpt_debug), for DEBUG kernels
#   all       (default) both
#
# Modes:
#   none  (default) stable rustc, target x86_64-unknown-none, whose
#         precompiled core is soft-float kernel code (no SIMD, no red zone,
#         kernel code model); rustc is run directly on src/lib.rs: no cargo,
#         no dependencies, nothing downloaded, nothing written outside the
#         target directory.  The target's standard library is added with
#         rustup when missing (the only step that needs the network).
#   json  the illumos kernel target specification
#         (x86_64-unknown-illumos-kernel.json) with cargo -Z build-std=core
#         on a nightly with rust-src (VMM_GPT_NIGHTLY, default nightly):
#         what OPTE does; adds compiler retpolines (which -C jump-tables=no
#         and the library's thunk calls give the none mode) and the stack
#         protector (-Z stack-protector=strong, __stack_chk_guard /
#         __stack_chk_fail from illumos), which stable rustc lacks.
#
# --harvest builds the opt-in object: the library with its extension
# vmm_gpt_harvest_dirty() (the cargo feature harvest-dirty,
# include/sys/vmm_gpt_ext.h), exporting the 21 symbols and that one
# (exports-harvest.txt), as target/kernel/vmm_gpt.harvest.o and
# vmm_gpt.harvest.debug.o.  Without it, the object exports exactly the 21.
#
# --out FILE writes the (single) variant built to FILE, e.g. an illumos
# build's $(OBJS_DIR)/vmm_gpt.o.  --target-dir DIR is the build directory
# (default target/kernel-build).  --check then runs the checker
# (illumos-build/objcheck) on what was built and fails if it breaks a rule
# (scripts/test.sh has cargo test do that).
#
# Environment: VMM_GPT_NIGHTLY (the json mode's toolchain), VMM_GPT_LD,
# VMM_GPT_OBJCOPY, VMM_GPT_NM, VMM_GPT_AR, VMM_GPT_READELF, VMM_GPT_SIZE
# (GNU binutils; on illumos gld, gobjcopy, ... are tried when the plain
# names are not GNU's).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"


# shellcheck source=illumos-build/lib.sh
. "$here/lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

variant=all
mode=none
out=""
target_dir="$root/target/kernel-build"
check=0
harvest=0
while [ $# -gt 0 ]; do
    case "$1" in
    --variant) variant="${2:?--variant needs a value}"; shift 2 ;;
    --mode) mode="${2:?--mode needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --target-dir) target_dir="${2:?--target-dir needs a value}"; shift 2 ;;
    --require-debug) shift ;; # accepted for old callers: both variants build on stable
    --check) check=1; shift ;;
    --harvest) harvest=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$variant" in nondebug | debug | all) ;; *) die "--variant: nondebug, debug or all, not '$variant'" ;; esac
case "$mode" in none | json) ;; *) die "--mode: none or json, not '$mode'" ;; esac
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

nightly="${VMM_GPT_NIGHTLY:-nightly}"
have_toolchain() { cargo "+$1" --version >/dev/null 2>&1; }

# Lists without comments.
names() { grep -v '^[[:space:]]*\(#\|$\)' "$1"; }
EXPORTS="$here/exports.txt"
IMPORTS="$here/imports.txt"
LDSCRIPT="$here/kernel-object.ld"
TARGET_JSON="$here/x86_64-unknown-illumos-kernel.json"

# Kernel code generation (the target, x86_64-unknown-none or the json
# specification, already gives the kernel code model, no red zone and
# soft-float without SIMD):
# - static relocations: absolute 32-bit sign-extended addresses
#   (R_X86_64_32S) as the kernel's C code uses, and no GOT; relro-level=off
#   keeps rustc from setting the module flag that makes LLVM call
#   memset/memcpy through the GOT (krtld has none);
# - frame pointers, and no shrink-wrapping: every function starts with
#   push %rbp; mov %rsp,%rbp, where DTrace's fbt puts its entry probe
#   (illumos: -fno-shrink-wrap);
# - no jump tables: their indirect jmp would be a raw indirect branch
#   (illumos builds with retpolines); the library's only indirect calls go
#   through __x86_indirect_thunk_rax itself (src/kernel.rs);
# - v0 symbol mangling (names without '$', usable in D probe descriptions)
#   with a fixed crate hash (-C metadata), the same in every build and
#   variant;
# - no unwind tables, abort on panic, no debug info (the kernel cannot use
#   Rust DWARF: no CTF is made from it), one codegen unit, no overflow or
#   debug-assertion checks (the DEBUG variant's checks are the library's
#   own cfg), and every warning an error.
CODEGEN_FLAGS=(
    -C opt-level=3
    -C codegen-units=1
    -C panic=abort
    -C relocation-model=static
    -C relro-level=off
    -C force-frame-pointers=yes
    -C llvm-args=-enable-shrink-wrap=false
    -C jump-tables=no
    -C force-unwind-tables=no
    -C symbol-mangling-version=v0
    -C metadata=vmm_gpt
    -C debuginfo=0
    -C debug-assertions=no
    -C overflow-checks=no
    --check-cfg 'cfg(vmm_gpt_debug)'
    --check-cfg 'cfg(test)'
    --check-cfg 'cfg(feature, values("hosted", "harvest-dirty"))'
    -D warnings
)
NONE_TARGET=x86_64-unknown-none

# --- build -----------------------------------------------------------------

# The none mode's target: its precompiled core must be installed (rustup),
# though the object may use nothing from it (checked in link_object).
ensure_none_target() {
    local sysroot
    sysroot="$(rustc --print sysroot)"
    if [ -d "$sysroot/lib/rustlib/$NONE_TARGET/lib" ]; then
        return
    fi
    command -v rustup >/dev/null || die "the $NONE_TARGET target is not installed and there is no rustup to add it"
    note "adding the $NONE_TARGET target (rustup target add $NONE_TARGET)"
    rustup target add "$NONE_TARGET" >&2 || die "rustup target add $NONE_TARGET failed"
}

# Builds one variant's staticlib; prints its path.
build_staticlib() {
    local v="$1" cfg=() features=()
    if [ "$v" = debug ]; then cfg=(--cfg vmm_gpt_debug); fi
    local dir="$target_dir/$mode-$v"
    if [ "$harvest" = 1 ]; then
        dir="$dir-harvest"
        features=(--features harvest-dirty)
        if [ "$mode" = none ]; then cfg+=(--cfg 'feature="harvest-dirty"'); fi
    fi
    mkdir -p "$dir"
    if [ "$mode" = none ]; then
        (
            cd "$root"
            unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
            rustc --edition 2021 --crate-type staticlib --crate-name vmm_gpt \
                --target "$NONE_TARGET" "${CODEGEN_FLAGS[@]}" "${cfg[@]}" \
                -o "$dir/libvmm_gpt.a" src/lib.rs
        ) >&2 || die "rustc of the $v variant failed"
        echo "$dir/libvmm_gpt.a"
        return
    fi

    # json: cargo for -Z build-std; the retpoline target features and the
    # stack protector are nightly-only and must be in core too.
    local flags=("${CODEGEN_FLAGS[@]}" -Z stack-protector=strong "${cfg[@]}")
    local encoded="" f json lib
    for f in "${flags[@]}"; do
        encoded="${encoded:+$encoded$'\x1f'}$f"
    done
    json="$(
        cd "$root"
        unset RUSTFLAGS RUSTC RUSTDOC CARGO_BUILD_TARGET CARGO_TARGET_DIR
        env CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_LTO=false \
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort \
            VMM_GPT_DEBUG="$([ "$v" = debug ] && echo 1 || echo 0)" \
            CARGO_ENCODED_RUSTFLAGS="$encoded" \
            cargo "+$nightly" build --release -p vmm-gpt --lib "${features[@]}" \
            --target "$TARGET_JSON" -Z build-std=core -Z json-target-spec \
            --target-dir "$dir" --message-format=json-render-diagnostics
    )" || die "cargo build of the $v variant failed"
    lib="$(printf '%s\n' "$json" | grep '"reason":"compiler-artifact"' |
        grep '"name":"vmm_gpt"' |
        sed -n 's|.*"\([^"]*/libvmm_gpt[^"/]*\.a\)".*|\1|p' | tail -1)"
    [ -n "$lib" ] && [ -f "$lib" ] || die "cargo reported no libvmm_gpt.a for the $v variant"
    echo "$lib"
}

scratch="$(mktemp -d "${TMPDIR:-/tmp}/vmm-gpt-kobj.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
if [ "$harvest" = 1 ]; then
    # The 21 and the extension's, in one list for objcopy and the checks.
    names "$EXPORTS" >"$scratch/exports"
    names "$here/exports-harvest.txt" >>"$scratch/exports"
    EXPORTS="$scratch/exports"
fi

# Links a staticlib's own members into the kernel object $2.
link_object() {
    local lib="$1" dest="$2" v="$3" work="$scratch/$3"
    mkdir -p "$work"

    # The library's own members (<...>.vmm_gpt.<hash>-cgu.N.rcgu.o); the
    # rest of the archive is core and compiler_builtins.
    local members=()
    mapfile -t members < <("$AR" t "$lib" | grep -E '[.]vmm_gpt[.][^.]+-cgu[.][0-9]+[.]rcgu[.]o$')
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
        die "$dest: the global definitions are not exactly the $(names "$EXPORTS" | wc -l) exports (diff: - missing, + extra)"
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
    if [ "$mode" = json ] && ! have_toolchain "$nightly"; then
        die "the json mode needs the '$nightly' toolchain with rust-src (set VMM_GPT_NIGHTLY)"
    fi
    if [ "$mode" = none ]; then ensure_none_target; fi
    note "building the $v variant ($mode mode)"
    lib="$(build_staticlib "$v")"
    link_object "$lib" "$dest" "$v"
}

kdir="$root/target/kernel"
base=vmm_gpt
if [ "$harvest" = 1 ]; then base=vmm_gpt.harvest; fi
built=()
case "$variant" in
nondebug) built=("${out:-$kdir/$base.o}") && build_variant nondebug "${built[0]}" ;;
debug) built=("${out:-$kdir/$base.debug.o}") && build_variant debug "${built[0]}" ;;
all)
    built=("$kdir/$base.o" "$kdir/$base.debug.o")
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
    # The checker is a host program with no dependencies: compiled with
    # rustc directly (the host's default target, no kernel flags), so that
    # this works offline too, where cargo would want every workspace
    # member's dependencies.
    ocdir="$target_dir/objcheck"
    mkdir -p "$ocdir"
    (
        cd "$root/illumos-build/objcheck"
        unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
        # (what cargo would set: the checker finds its include files by it)
        export CARGO_MANIFEST_DIR="$PWD"
        rustc --edition 2021 -O --crate-type rlib --crate-name vmm_gpt_objcheck \
            -o "$ocdir/libvmm_gpt_objcheck.rlib" src/lib.rs &&
            rustc --edition 2021 -O --crate-name objcheck \
                --extern vmm_gpt_objcheck="$ocdir/libvmm_gpt_objcheck.rlib" \
                -o "$ocdir/objcheck" src/main.rs
    ) || die "building the checker failed"
    (
        cd "$root"
        "$ocdir/objcheck" --brief $([ "$harvest" = 1 ] && echo --harvest) "${objects[@]}"
    ) || die "the kernel object breaks the checker's rules (see above)"
fi
