#!/bin/bash
# libvirt-vm.sh: the test guest as a domain of a private libvirtd (libvirtd-session.sh), with its
# data LUN on a loop-mounted reflink XFS, for the benchmark and the libvirt VM test.
#
#   libvirt-vm.sh start    host XFS + LUN in $QB_LVM_RUN, libvirtd, domain from domain.xml.in,
#                          wait for the guest's READY line
#   libvirt-vm.sh stop     destroy the domain, stop libvirtd, umount, losetup -d, rm $QB_LVM_RUN
#   libvirt-vm.sh env      the instance's paths as shell assignments
#
# Environment: QB_LVM_RUN (run dir, required; removed by stop), QB_LVM_INITRD (initramfs, for
# start), QB_LVM_APPEND (more kernel command line words), QB_LVM_NAME (domain name, default
# qb-bench), QB_LV_USER (default nobody), QB_VM_CACHE (tests/vm/fetch-kernel.sh's cache),
# QB_LVM_BOOT_TIMEOUT (s, default 180). The LUN: 512 MiB sparse XFS, wwn 5000c500a0b1c2d3,
# serial QBLUN0001. Files in $QB_LVM_RUN: hostfs/ (lun0.raw, snaps/), sock/ (agent.sock,
# responder.sock, floor.sock, bench.sock, qga-direct.sock, qga.sock, serial.log), lv/
# (libvirtd), domain.xml.
# Accelerator: always TCG (<domain type='qemu'>).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${QB_VM_CACHE:-/var/tmp/quiesce-bridge-vm}
: "${QB_LVM_RUN:?set QB_LVM_RUN to the instance run dir}"
RUN=$QB_LVM_RUN
HOSTFS=$RUN/hostfs
LUN=$HOSTFS/lun0.raw
SOCKS=$RUN/sock
NAME=${QB_LVM_NAME:-qb-bench}
WWN=5000c500a0b1c2d3
SERIAL=QBLUN0001
export QB_LV_DIR=$RUN/lv
LVS=$HERE/libvirtd-session.sh
LV_USER=${QB_LV_USER:-nobody}

die() { echo "libvirt-vm: $*" >&2; exit 1; }

stop() {
    [ -d "$RUN" ] || return 0
    if [ -d "$QB_LV_DIR" ]; then
        "$LVS" virsh -q destroy "$NAME" >/dev/null 2>&1 || true
        "$LVS" stop || true
    fi
    if mountpoint -q "$HOSTFS" 2>/dev/null; then
        umount "$HOSTFS" || umount -l "$HOSTFS" || echo "libvirt-vm: cannot unmount $HOSTFS" >&2
    fi
    if [ -f "$RUN/loopdev" ]; then
        losetup -d "$(cat "$RUN/loopdev")" 2>/dev/null || true
        rm -f "$RUN/loopdev"
    fi
    [ -f "$RUN/.qb-lvm" ] && rm -rf "$RUN"
    return 0
}

start() {
    : "${QB_LVM_INITRD:?set QB_LVM_INITRD (build-bench-initramfs.sh output)}"
    [ "$(id -u)" = 0 ] || die "needs root (loop devices, mounts)"
    [ -f "$CACHE/kernel.env" ] || die "no kernel: run tests/vm/fetch-kernel.sh"
    # shellcheck source=/dev/null
    . "$CACHE/kernel.env"
    mkdir -p "$RUN"
    touch "$RUN/.qb-lvm"
    # shellcheck disable=SC2154
    trap 'rc=$?; [ $rc -eq 0 ] || { echo "libvirt-vm: start failed; tearing down" >&2; stop; }' EXIT
    trap 'exit 130' INT TERM HUP
    local gid; gid=$(id -g "$LV_USER")

    truncate -s 2G "$RUN/hostfs.img"
    mkfs.xfs -q -m reflink=1 "$RUN/hostfs.img"
    local loop; loop=$(losetup -f --show "$RUN/hostfs.img")
    echo "$loop" > "$RUN/loopdev"
    mkdir -p "$HOSTFS"
    mount "$loop" "$HOSTFS"
    mkdir -p "$HOSTFS/snaps"
    truncate -s 512M "$LUN"
    mkfs.xfs -q "$LUN"
    chown "$LV_USER:$gid" "$LUN"

    mkdir -p "$RUN/boot" "$SOCKS"
    cp "$KERNEL" "$RUN/boot/vmlinuz"
    cp "$QB_LVM_INITRD" "$RUN/boot/initrd"
    chmod 0755 "$RUN" "$RUN/boot"; chmod 0644 "$RUN/boot/"*
    chown "$LV_USER:$gid" "$SOCKS"
    setpriv --reuid="$LV_USER" --regid="$gid" --clear-groups test -r "$RUN/boot/initrd" ||
        die "$LV_USER cannot reach $RUN (a parent directory is not searchable by others)"

    "$LVS" start
    sed -e "s|@NAME@|$NAME|" -e "s|@KERNEL@|$RUN/boot/vmlinuz|" -e "s|@INITRD@|$RUN/boot/initrd|" \
        -e "s|@CMDLINE@|console=ttyS0 quiet panic=-1 qb.fs=xfs qb.mods=xfs qb.qga=1 ${QB_LVM_APPEND:-}|" \
        -e "s|@LUN@|$LUN|" -e "s|@WWN@|$WWN|" -e "s|@SERIAL@|$SERIAL|" -e "s|@DIR@|$SOCKS|g" \
        "$HERE/domain.xml.in" > "$RUN/domain.xml"
    chmod 0644 "$RUN/domain.xml"
    local t0; t0=$(date +%s%N)
    "$LVS" virsh -q create "$RUN/domain.xml" >/dev/null
    local deadline=$(( $(date +%s) + ${QB_LVM_BOOT_TIMEOUT:-180} ))
    until grep -q '^QB-VM: READY' "$SOCKS/serial.log" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { tail -20 "$SOCKS/serial.log" >&2 2>/dev/null; die "no READY line"; }
        "$LVS" virsh -q domstate "$NAME" 2>/dev/null | grep -q running ||
            { tail -20 "$SOCKS/serial.log" >&2 2>/dev/null; die "domain $NAME is not running"; }
        sleep 0.05
    done
    local t1; t1=$(date +%s%N)
    grep -q 'MOUNT FAILED' "$SOCKS/serial.log" && die "guest could not mount the LUN"
    trap - EXIT INT TERM HUP
    echo "libvirt-vm: domain $NAME READY after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s under TCG (run dir $RUN)" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) echo "QB_LVM_RUN=$RUN LUN=$LUN SNAPS=$HOSTFS/snaps AGENT_SOCK=$SOCKS/agent.sock" \
              "RESPONDER_SOCK=$SOCKS/responder.sock BENCH_SOCK=$SOCKS/bench.sock" \
              "FLOOR_SOCK=$SOCKS/floor.sock" \
              "QGA_SOCK=$SOCKS/qga-direct.sock SERIAL_LOG=$SOCKS/serial.log DOMAIN=$NAME" \
              "LV_URI='$("$LVS" uri)' WWN=$WWN SERIAL=$SERIAL" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
