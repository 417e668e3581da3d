#!/usr/bin/env bash
# Puts the Rust vmm_gpt into an illumos-gate checkout, so that its build
# links the kernel object made from the crate in place of vmm_gpt.o:
#
#   illumos-build/install-into-gate.sh /path/to/illumos-gate
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
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

# shellcheck source=illumos-build/lib.sh
. "$here/lib.sh"

[ $# -eq 1 ] || die "usage: $0 /path/to/illumos-gate"
gate="$(cd "$1" && pwd)" || die "no such directory: $1"
vmm="$gate/usr/src/uts/intel/io/vmm"
[ -d "$vmm" ] || die "$gate is not an illumos-gate checkout: no usr/src/uts/intel/io/vmm"
[ -f "$vmm/Makefile.rules" ] || die "no $vmm/Makefile.rules (this illumos-gate predates it: add the include line to the vmm module's Makefile by hand)"
[ -f "$vmm/vmm_gpt_indirect.S" ] || echo "install-into-gate.sh: warning: no vmm_gpt_indirect.S: this gate predates the hot-patched stubs the crate needs" >&2

dest="$vmm/vmm_gpt"
echo "install-into-gate.sh: copying the crate to $dest"
rm -rf "$dest"
mkdir -p "$dest"
(cd "$root" && tar --exclude=./target --exclude=./.git --exclude='./fuzz/target' -cf - .) |
    (cd "$dest" && tar -xf -)

echo "install-into-gate.sh: installing $vmm/Makefile.vmm_gpt"
cp "$here/Makefile.vmm_gpt" "$vmm/Makefile.vmm_gpt"

line='include $(UTSBASE)/intel/io/vmm/Makefile.vmm_gpt'
if grep -qxF "$line" "$vmm/Makefile.rules"; then
    echo "install-into-gate.sh: Makefile.rules already includes it"
else
    echo "install-into-gate.sh: appending the include to $vmm/Makefile.rules"
    printf '\n# vmm_gpt.o from the Rust vmm-gpt crate (vmm_gpt/illumos-build/README.md)\n%s\n' \
        "$line" >>"$vmm/Makefile.rules"
fi
echo "install-into-gate.sh: done; build the vmm module as usual (README.md, step 4)"
