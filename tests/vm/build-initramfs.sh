#!/bin/bash
# build-initramfs.sh AGENT_BINARY OUT [RECORDWRITER]
#
# Builds the test guest's initramfs (gzip'd newc cpio) at OUT:
#   - busybox-static and one symlink per applet; tests/vm/guest-init as /init;
#     qb-responder and qb-workload in /bin
#   - the kernel modules the guest needs that the kernel does not have built in, resolved with
#     `modprobe --show-depends` against the kernel unpacked by fetch-kernel.sh, in load order,
#     in groups /etc/modules.{base,xfs,vsock}; OUT.modules.txt records module vs built-in
#   - AGENT_BINARY as /sbin/quiesce-agent (static; a dynamic developer build gets its ldd
#     libraries copied in, with a note). Optional: pass "" or a missing path
#     and the image is built without it (the guest then runs no agent)
#   - RECORDWRITER (default: $QB_RECORDWRITER) as /bin/qb-recordwriter (static)
# Options from the environment:
#   QB_VM_AGENT_ARGS    agent command line in the guest (default "--foreground")
#   QB_VM_AGENT_CONFIG  file installed as /etc/quiesce-agent/agent.toml
#   QB_VM_HOOKS         directory whose executables go to /etc/quiesce-agent/hooks.d
#   QB_VM_SQLITE        static qb-sqlite (the SQLite workload) installed as /bin/qb-sqlite
#   QB_VM_QGA=1         add Debian's qemu-ga and the libraries ldd lists (for the benchmark)
#   QB_VM_CACHE         cache dir of fetch-kernel.sh (default /var/tmp/quiesce-bridge-vm)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${QB_VM_CACHE:-/var/tmp/quiesce-bridge-vm}
[ $# -ge 2 ] || { echo "usage: $0 AGENT_BINARY OUT [RECORDWRITER]" >&2; exit 2; }
AGENT=$1
OUT=$2
WRITER=${3:-${QB_RECORDWRITER:-}}

[ -f "$CACHE/kernel.env" ] || "$HERE/fetch-kernel.sh"
# shellcheck source=/dev/null
. "$CACHE/kernel.env"

# copy_libs BINARY: the shared libraries ldd lists for BINARY, and ld.so, into the image.
copy_libs() {
    local lib
    for lib in $(ldd "$1" | grep -oE '/[^ ]+\.so[^ ]*'); do
        mkdir -p "$ST$(dirname "$lib")"
        cp -L "$lib" "$ST$lib"
    done
    [ -e "$ST/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$ST/lib64/"
    mkdir -p "$ST/usr/lib"
    [ -e "$ST/usr/lib/x86_64-linux-gnu" ] || ln -s /lib/x86_64-linux-gnu "$ST/usr/lib/x86_64-linux-gnu"
}
is_static() { file -L "$1" | grep -qE 'statically linked|static-pie linked'; }

ST=$(mktemp -d "${TMPDIR:-/tmp}/qb-initramfs.XXXXXX")
trap 'rm -rf "$ST"' EXIT
mkdir -p "$ST"/{bin,sbin,usr/bin,usr/sbin,etc/quiesce-agent/hooks.d,proc,sys,dev,run,tmp,mnt/data,mnt/blk,var,lib64}
ln -s ../run "$ST/var/run"

cp /bin/busybox "$ST/bin/busybox"
for a in $(/bin/busybox --list-full); do
    [ -e "$ST/$a" ] || ln -s /bin/busybox "$ST/$a"
done

# Modules. "builtin X" lines from modprobe need nothing; "insmod PATH" lines are copied in order.
mkdir -p "$(dirname "$OUT")"
MODLIST=$OUT.modules.txt
: > "$MODLIST.tmp"
declare -A GROUPS_=(
    [base]="virtio_pci virtio_console virtio_blk virtio_scsi sd_mod"
    [xfs]="xfs"
    [vsock]="vmw_vsock_virtio_transport"
)
for g in base xfs vsock; do
    : > "$ST/etc/modules.$g"
    for m in ${GROUPS_[$g]}; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | while read -r kind path _; do
            if [ "$kind" = builtin ]; then
                echo "$g builtin $path" >> "$MODLIST.tmp"
                continue
            fi
            [ "$kind" = insmod ] || continue
            rel=${path#"$KROOT"}; rel=/${rel#/}; rel=${rel//\/.\//\/}
            grep -qxF "$rel" "$ST/etc/modules.$g" && continue
            mkdir -p "$ST$(dirname "$rel")"
            cp "$path" "$ST$rel"
            echo "$rel" >> "$ST/etc/modules.$g"
            echo "$g module $(basename "$rel")" >> "$MODLIST.tmp"
        done
    done
done
for opt in EXT4_FS XFS_FS VIRTIO_PCI VIRTIO_CONSOLE VIRTIO_BLK SCSI_VIRTIO BLK_DEV_SD SCSI; do
    grep -E "^CONFIG_$opt=" "$KROOT/boot/config-$KVER" >> "$MODLIST.tmp" || true
done
echo "kernel $KVER" >> "$MODLIST.tmp"
mv "$MODLIST.tmp" "$MODLIST"
cp "$MODLIST" "$ST/etc/qb-modules.txt"

install -m 0755 "$HERE/guest-init" "$ST/init"
install -m 0755 "$HERE/qb-responder" "$ST/bin/qb-responder"
install -m 0755 "$HERE/qb-workload" "$ST/bin/qb-workload"

if [ -n "$WRITER" ] && [ -f "$WRITER" ]; then
    is_static "$WRITER" || { echo "build-initramfs: $WRITER is not static" >&2; exit 1; }
    install -m 0755 "$WRITER" "$ST/bin/qb-recordwriter"
    strip --strip-debug "$ST/bin/qb-recordwriter"
else
    echo "build-initramfs: no qb-recordwriter given (3rd argument or QB_RECORDWRITER)" >&2
    exit 1
fi

if [ -n "$AGENT" ] && [ -f "$AGENT" ]; then
    install -m 0755 "$AGENT" "$ST/sbin/quiesce-agent"
    strip --strip-debug "$ST/sbin/quiesce-agent"  # debug info would triple the image
    if ! is_static "$AGENT"; then
        # The product ships a static agent; a dynamic one (a developer build) gets its libraries.
        echo "build-initramfs: $AGENT is dynamically linked; copying its libraries"
        copy_libs "$AGENT"
    fi
    echo "build-initramfs: agent $AGENT"
else
    echo "build-initramfs: no agent binary ('$AGENT'): the guest will run none"
fi
echo "${QB_VM_AGENT_ARGS:---foreground}" > "$ST/etc/quiesce-agent/agent.args"
[ -n "${QB_VM_AGENT_CONFIG:-}" ] && install -m 0644 "$QB_VM_AGENT_CONFIG" "$ST/etc/quiesce-agent/agent.toml"
if [ -n "${QB_VM_HOOKS:-}" ]; then
    for h in "$QB_VM_HOOKS"/*; do
        [ -f "$h" ] && install -m 0755 "$h" "$ST/etc/quiesce-agent/hooks.d/"
    done
fi

if [ -n "${QB_VM_SQLITE:-}" ]; then
    is_static "$QB_VM_SQLITE" || { echo "build-initramfs: $QB_VM_SQLITE is not static" >&2; exit 1; }
    install -m 0755 "$QB_VM_SQLITE" "$ST/bin/qb-sqlite"
    strip --strip-debug "$ST/bin/qb-sqlite"
fi

if [ "${QB_VM_QGA:-0}" = 1 ]; then
    cp /usr/sbin/qemu-ga "$ST/usr/sbin/"
    copy_libs /usr/sbin/qemu-ga
    echo "build-initramfs: qemu-ga included"
fi

mkdir -p "$(dirname "$OUT")"
(cd "$ST" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -6 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "build-initramfs: $OUT ($(du -k "$OUT" | cut -f1) KiB), modules:"
grep -E ' (module|builtin) ' "$MODLIST" | sed 's/^/  /'
