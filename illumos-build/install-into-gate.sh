#!/usr/bin/env bash
# Puts the Rust vmm_gpt into an illumos-gate checkout, so that its build
# links the kernel object made from the crate in place of vmm_gpt.o:
#
#   illumos-build/install-into-gate.sh [--harvest] [--fixes] /path/to/illumos-gate
#
# 1. copies this repository (without target/ and .git) to
#    usr/src/uts/intel/io/vmm/vmm_gpt/ (Makefile.vmm_gpt's VMM_GPT_CRATE);
# 2. installs illumos-build/Makefile.vmm_gpt as
#    usr/src/uts/intel/io/vmm/Makefile.vmm_gpt;
# 3. appends `include $(UTSBASE)/intel/io/vmm/Makefile.vmm_gpt` to
#    usr/src/uts/intel/io/vmm/Makefile.rules (once).
#
# Makefile.vmm, vmm_gpt_indirect.S, vmm.mapfile and the headers stay as they
# are.  Run it again after changing the crate.  See illumos-build/README.md.
#
# --harvest also installs the opt-in extension: the fragment builds the
# object with vmm_gpt_harvest_dirty (build.sh --harvest), its header goes
# to usr/src/uts/intel/io/vmm/sys/vmm_gpt_ext.h, and vmm_vm.c gets
# patches/vmm_vm-harvest-dirty.patch (vmspace_bits_operate() harvests
# with it; applied once: an already patched vmm_vm.c is left alone).
#
# --fixes applies the fixes of upstream defects of vmm_vm.c to the gate
# (patches/vmm_vm-unmap-held-pages.patch, patches/vmm_vm-hold-bounds.patch;
# each once, in that order, before or after --harvest's patch; see
# illumos-build/README.md, "Upstream defects").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

# shellcheck source=illumos-build/lib.sh
. "$here/lib.sh"

harvest=0
fixes=0
while [ $# -gt 1 ]; do
    case "$1" in
    --harvest) harvest=1 ;;
    --fixes) fixes=1 ;;
    *) die "usage: $0 [--harvest] [--fixes] /path/to/illumos-gate" ;;
    esac
    shift
done
[ $# -eq 1 ] || die "usage: $0 [--harvest] [--fixes] /path/to/illumos-gate"
gate="$(cd "$1" && pwd)" || die "no such directory: $1"
vmm="$gate/usr/src/uts/intel/io/vmm"
[ -d "$vmm" ] || die "$gate is not an illumos-gate checkout: no usr/src/uts/intel/io/vmm"
[ -f "$vmm/Makefile.rules" ] || die "no $vmm/Makefile.rules (this illumos-gate predates it: add the include line to the vmm module's Makefile by hand)"
[ -f "$vmm/vmm_gpt_indirect.S" ] || echo "install-into-gate.sh: warning: no vmm_gpt_indirect.S: this gate predates the hot-patched stubs the crate needs" >&2

# Applies a patch to the gate once: an already patched file is left alone.
apply_once() {
    local p="$1"
    if (cd "$gate" && patch -p1 -R --dry-run -s -f <"$p" >/dev/null 2>&1); then
        echo "install-into-gate.sh: $(basename "$p"): vmm_vm.c is already patched"
    else
        (cd "$gate" && patch -p1 -N -s <"$p") ||
            die "$p does not apply to $vmm/vmm_vm.c"
        echo "install-into-gate.sh: $(basename "$p"): applied"
    fi
}

dest="$vmm/vmm_gpt"
echo "install-into-gate.sh: copying the crate to $dest"
rm -rf "$dest"
mkdir -p "$dest"
(cd "$root" && tar --exclude=./target --exclude=./.git --exclude='./fuzz/target' -cf - .) |
    (cd "$dest" && tar -xf -)

echo "install-into-gate.sh: installing $vmm/Makefile.vmm_gpt"
cp "$here/Makefile.vmm_gpt" "$vmm/Makefile.vmm_gpt"

if [ "$harvest" = 1 ]; then
    patchfile="$here/patches/vmm_vm-harvest-dirty.patch"
    echo "install-into-gate.sh: the extension: build.sh --harvest, sys/vmm_gpt_ext.h, vmm_vm.c patched"
    sed -i.orig 's/^VMM_GPT_EXTENSIONS[[:space:]]*=.*/VMM_GPT_EXTENSIONS	= --harvest/' \
        "$vmm/Makefile.vmm_gpt"
    rm -f "$vmm/Makefile.vmm_gpt.orig"
    grep -q '^VMM_GPT_EXTENSIONS.*--harvest' "$vmm/Makefile.vmm_gpt" ||
        die "could not set VMM_GPT_EXTENSIONS in $vmm/Makefile.vmm_gpt"
    cp "$root/include/sys/vmm_gpt_ext.h" "$vmm/sys/vmm_gpt_ext.h"
    apply_once "$patchfile"
fi

if [ "$fixes" = 1 ]; then
    echo "install-into-gate.sh: the fixes of upstream defects of vmm_vm.c"
    apply_once "$here/patches/vmm_vm-unmap-held-pages.patch"
    apply_once "$here/patches/vmm_vm-hold-bounds.patch"
fi

line='include $(UTSBASE)/intel/io/vmm/Makefile.vmm_gpt'
if grep -qxF "$line" "$vmm/Makefile.rules"; then
    echo "install-into-gate.sh: Makefile.rules already includes it"
else
    echo "install-into-gate.sh: appending the include to $vmm/Makefile.rules"
    printf '\n# vmm_gpt.o from the Rust vmm-gpt crate (vmm_gpt/illumos-build/README.md)\n%s\n' \
        "$line" >>"$vmm/Makefile.rules"
fi
echo "install-into-gate.sh: done; build the vmm module as usual (illumos-build/README.md, step 3)"
