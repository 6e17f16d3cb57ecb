#!/bin/bash
# Installs the VM rig's host tools (packaging/deps/vm.txt) and fetches the guest kernel.
#
# The kernel is the one Debian's `linux-image-cloud-amd64` metapackage currently depends on,
# resolved with apt-cache (the ABI number is never written down here). Its .deb is only
# downloaded (`apt-get download`) and unpacked into the cache, never installed, so the host's
# /boot and bootloader are not touched. depmod runs inside the unpacked tree.
#
# Writes $QB_VM_CACHE/kernel.env (KVER, KROOT, KERNEL) for the other scripts to source.
# Idempotent: with everything present it only runs apt-cache and returns.
#
# Usage: fetch-kernel.sh            (QB_VM_CACHE defaults to /var/tmp/quiesce-bridge-vm)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${QB_VM_CACHE:-/var/tmp/quiesce-bridge-vm}
DEPS=$HERE/../../packaging/deps/vm.txt
META=linux-image-cloud-amd64

missing=()
for p in $(sed 's/#.*//' "$DEPS"); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
updated=0
if [ ${#missing[@]} -gt 0 ]; then
    echo "fetch-kernel: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    updated=1
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

resolve() {
    apt-cache depends "$META" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(resolve)
if [ -z "$pkg" ] && [ $updated = 0 ]; then
    apt-get update -q
    pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve the dependency of $META" >&2; exit 1; }
kver=${pkg#linux-image-}
kroot=$CACHE/kernel/$kver
kernel=$kroot/boot/vmlinuz-$kver

if [ ! -f "$kroot/lib/modules/$kver/modules.dep" ] || [ ! -f "$kernel" ]; then
    echo "fetch-kernel: downloading $pkg (dependency of $META)"
    dl=$(mktemp -d "$CACHE/dl.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE"; mktemp -d "$CACHE/dl.XXXXXX"; })
    trap 'rm -rf "$dl"' EXIT
    # apt-get download writes into the current directory and needs it writable by _apt.
    chmod 0777 "$dl"
    (cd "$dl" && apt-get download -q "$pkg")
    rm -rf "$kroot.tmp.$$"
    mkdir -p "$kroot.tmp.$$"
    dpkg-deb -x "$dl"/"$pkg"_*.deb "$kroot.tmp.$$"
    # The .deb ships no modules.dep (its postinst runs depmod); build it inside the tree.
    depmod -b "$kroot.tmp.$$" "$kver"
    rm -rf "$kroot"
    mv "$kroot.tmp.$$" "$kroot"
fi

cat > "$CACHE/kernel.env.tmp.$$" <<EOF
# Written by tests/vm/fetch-kernel.sh; source it.
KVER=$kver
KROOT=$kroot
KERNEL=$kernel
EOF
mv "$CACHE/kernel.env.tmp.$$" "$CACHE/kernel.env"
echo "fetch-kernel: $kernel"
