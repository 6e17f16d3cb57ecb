#!/bin/bash
# lab.sh: one test VM (QEMU) with a data LUN on a reflink-capable host XFS.
#
#   lab.sh start              create the host XFS + LUN(s) in $QB_VM_RUN, boot, wait for READY
#   lab.sh stop               QMP quit (then kill by PID), umount, losetup -d, rm $QB_VM_RUN
#   lab.sh send LINE          one request to the guest's qb-responder; prints the reply line
#   lab.sh snapshot NAME      reflink copy of the LUN (FICLONE via cp); prints its path
#   lab.sh env                prints the instance's paths as shell assignments
#
# Environment:
#   QB_VM_RUN       run dir of this instance (required; e.g. $(mktemp -d)); `stop` removes it
#   QB_VM_INITRD    initramfs built by build-initramfs.sh (required for start)
#   QB_VM_CACHE     kernel cache of fetch-kernel.sh (default /var/tmp/quiesce-bridge-vm)
#   QB_VM_ACCEL     auto (default: KVM only if a probe boot proves it works, else TCG), tcg, kvm
#   QB_VM_FS        xfs (default) or ext4: the guest file system on the LUN
#   QB_VM_LUN_SIZE  LUN size (default 512M, sparse); QB_VM_LUN_WWN / QB_VM_LUN_SERIAL: what the
#                   guest sees in VPD 0x83 / 0x80 (defaults 0x5000c500a0b1c2d3 / QBLUN0001)
#   QB_VM_BLK=1     also attach a 64 MB ext4 virtio-blk disk (serial QBBLK0001, guest /mnt/blk)
#   QB_VM_APPEND    more kernel command line words (qb.work=1, qb.capture=1, qb.qga=1, ...)
#   QB_VM_MEM       guest MiB (default 512); QB_VM_BOOT_TIMEOUT seconds (default 120)
#
# Files in $QB_VM_RUN: serial.log (console), qemu.pid, qmp.sock, agent.sock (virtio-serial port
# org.quiesce-bridge.agent.0: the daemon connects here), responder.sock
# (org.quiesce-bridge.responder.0), qga.sock (org.qemu.guest_agent.0), hostfs/ (the host XFS,
# loop-mounted) with lun0.raw and snaps/, accel (which accelerator ran), boot-seconds.
# Only processes this script started are killed, by PID.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${QB_VM_CACHE:-/var/tmp/quiesce-bridge-vm}
: "${QB_VM_RUN:?set QB_VM_RUN to this instance\'s run dir (e.g. \$(mktemp -d))}"
RUN=$QB_VM_RUN
HOSTFS=$RUN/hostfs
LUN=$HOSTFS/lun0.raw
BLK=$HOSTFS/blk0.raw

die() { echo "lab: $*" >&2; exit 1; }
note() { echo "lab: $*" >&2; }

qmp() { # qmp COMMAND-JSON: send one QMP command after the capabilities handshake
    printf '{"execute":"qmp_capabilities"}\n%s\n' "$1" |
        timeout 5 socat -t 2 - "UNIX-CONNECT:$RUN/qmp.sock" >/dev/null 2>&1
}

alive() { [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; }

stop() {
    [ -d "$RUN" ] || return 0
    if alive; then
        local pid; pid=$(cat "$RUN/qemu.pid")
        qmp '{"execute":"quit"}' || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            note "qemu $pid ignored QMP quit; killing it"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$RUN/qemu.pid"
    if mountpoint -q "$HOSTFS" 2>/dev/null; then
        umount "$HOSTFS" || umount -l "$HOSTFS" || note "cannot unmount $HOSTFS"
    fi
    if [ -f "$RUN/loopdev" ]; then
        losetup -d "$(cat "$RUN/loopdev")" 2>/dev/null || true
        rm -f "$RUN/loopdev"
    fi
    if [ -f "$RUN/.qb-lab" ]; then
        rm -rf "$RUN"
    fi
}

# Prints kvm if a short probe boot under KVM reaches our /init, else tcg. The answer is cached
# per host kernel and guest kernel (the probe costs up to its timeout once).
probe_accel() {
    if [ ! -w /dev/kvm ]; then echo tcg; return; fi
    local key; key=$(uname -r)-$(basename "$KERNEL")
    local cached=$CACHE/accel-probe.$key
    if [ -f "$cached" ]; then cat "$cached"; return; fi
    local log; log=$(mktemp)
    timeout 15 qemu-system-x86_64 -machine q35,accel=kvm -cpu host -m 256 -nodefaults \
        -no-user-config -nographic -no-reboot -serial "file:$log" -monitor none \
        -kernel "$KERNEL" -initrd "$QB_VM_INITRD" \
        -append "console=ttyS0 quiet panic=-1 qb.probe=1" </dev/null >/dev/null 2>&1 || true
    local result=tcg
    grep -q 'QB-PROBE-OK' "$log" && result=kvm
    rm -f "$log"
    echo "$result" > "$cached"
    echo "$result"
}

start() {
    : "${QB_VM_INITRD:?set QB_VM_INITRD (build-initramfs.sh output)}"
    [ -f "$CACHE/kernel.env" ] || die "no kernel: run tests/vm/fetch-kernel.sh"
    # shellcheck source=/dev/null
    . "$CACHE/kernel.env"
    mkdir -p "$RUN"
    touch "$RUN/.qb-lab"
    alive && die "already running (pid $(cat "$RUN/qemu.pid"))"
    # Any failure from here on tears down what was built.
    trap 'rc=$?; [ $rc -eq 0 ] || { note "start failed; tearing down"; stop; }' EXIT
    trap 'exit 130' INT TERM HUP

    local fs=${QB_VM_FS:-xfs}
    local accel=${QB_VM_ACCEL:-auto}
    [ "$accel" = auto ] && accel=$(probe_accel)

    # The host side of the "array": a sparse image holding an XFS with reflink, loop-mounted.
    truncate -s 2G "$RUN/hostfs.img"
    mkfs.xfs -q -m reflink=1 "$RUN/hostfs.img"
    local loop; loop=$(losetup -f --show "$RUN/hostfs.img")
    echo "$loop" > "$RUN/loopdev"
    mkdir -p "$HOSTFS"
    mount "$loop" "$HOSTFS"
    mkdir -p "$HOSTFS/snaps"

    truncate -s "${QB_VM_LUN_SIZE:-512M}" "$LUN"
    case "$fs" in
        xfs) mkfs.xfs -q "$LUN" ;;
        ext4) mkfs.ext4 -q -F "$LUN" ;;
        *) die "QB_VM_FS must be xfs or ext4" ;;
    esac
    local mods=xfs
    [ "$fs" = ext4 ] && mods=none

    local cpu=max
    [ "$accel" = kvm ] && cpu=host
    local args=(
        -name qb-lab -machine "q35,accel=$accel" -cpu "$cpu" -m "${QB_VM_MEM:-512}" -smp 1
        -nodefaults -no-user-config -nographic -no-reboot -nic none
        -serial "file:$RUN/serial.log" -monitor none
        -qmp "unix:$RUN/qmp.sock,server=on,wait=off"
        -kernel "$KERNEL" -initrd "$QB_VM_INITRD"
        -append "console=ttyS0 quiet panic=-1 qb.fs=$fs qb.mods=$mods ${QB_VM_APPEND:-}"
        -device virtio-serial-pci,id=vser0
        -chardev "socket,id=agent,path=$RUN/agent.sock,server=on,wait=off"
        -device "virtserialport,bus=vser0.0,chardev=agent,name=org.quiesce-bridge.agent.0"
        -chardev "socket,id=resp,path=$RUN/responder.sock,server=on,wait=off"
        -device "virtserialport,bus=vser0.0,chardev=resp,name=org.quiesce-bridge.responder.0"
        -chardev "socket,id=qga,path=$RUN/qga.sock,server=on,wait=off"
        -device "virtserialport,bus=vser0.0,chardev=qga,name=org.qemu.guest_agent.0"
        -drive "file=$LUN,format=raw,if=none,id=lun0,cache=none"
        -device virtio-scsi-pci,id=scsi0
        -device "scsi-hd,bus=scsi0.0,drive=lun0,wwn=${QB_VM_LUN_WWN:-0x5000c500a0b1c2d3},serial=${QB_VM_LUN_SERIAL:-QBLUN0001},vendor=QBRIDGE,product=TESTLUN"
    )
    if [ "${QB_VM_BLK:-0}" = 1 ]; then
        truncate -s 64M "$BLK"
        mkfs.ext4 -q -F "$BLK"
        args+=(-drive "file=$BLK,format=raw,if=none,id=blk0,cache=none"
               -device "virtio-blk-pci,drive=blk0,serial=QBBLK0001")
    fi
    echo "$accel" > "$RUN/accel"
    local t0; t0=$(date +%s%N)
    qemu-system-x86_64 "${args[@]}" </dev/null >"$RUN/qemu.out" 2>&1 &
    echo $! > "$RUN/qemu.pid"
    local deadline=$(( $(date +%s) + ${QB_VM_BOOT_TIMEOUT:-120} ))
    until grep -q '^QB-VM: READY' "$RUN/serial.log" 2>/dev/null; do
        if ! alive; then
            cat "$RUN/qemu.out" >&2; tail -20 "$RUN/serial.log" >&2 2>/dev/null
            die "qemu exited during boot"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -20 "$RUN/serial.log" >&2 2>/dev/null
            die "no READY line within ${QB_VM_BOOT_TIMEOUT:-120} s"
        fi
        sleep 0.02
    done
    local t1; t1=$(date +%s%N)
    local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    echo "$secs" > "$RUN/boot-seconds"
    grep -q 'MOUNT FAILED' "$RUN/serial.log" && die "guest could not mount the LUN"
    trap - EXIT INT TERM HUP
    local guest_up
    guest_up=$(tr -d '\r' < "$RUN/serial.log" | sed -n 's/^QB-VM: READY \[uptime \([0-9.]*\)\]/\1/p')
    echo "lab: booted in $secs s (guest uptime at READY ${guest_up:-?} s) under $accel (pid $(cat "$RUN/qemu.pid"), run dir $RUN)"
}

# One request line to qb-responder over its unix chardev; the reply line on stdout. The
# connection stays open until the reply is read (a half-close would count as a disconnect).
send() {
    local line=$1 timeout=${2:-60}
    [ -S "$RUN/responder.sock" ] || die "no responder socket"
    coproc RESP { exec socat - "UNIX-CONNECT:$RUN/responder.sock" 2>/dev/null; }
    local to=${RESP[1]} from=${RESP[0]} pid=$RESP_PID
    echo "$line" >&"$to"
    local reply=""
    IFS= read -r -t "$timeout" reply <&"$from" || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [ -n "$reply" ] || die "no reply to '$line' within $timeout s"
    echo "$reply"
}

snapshot() {
    local name=${1:?snapshot NAME}
    local dest=$HOSTFS/snaps/$name.raw
    cp --reflink=always "$LUN" "$dest"
    echo "$dest"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    send) send "${2:?send LINE}" "${3:-60}" ;;
    snapshot) snapshot "${2:-}" ;;
    env) echo "QB_VM_RUN=$RUN LUN=$LUN SNAPS=$HOSTFS/snaps AGENT_SOCK=$RUN/agent.sock" \
              "RESPONDER_SOCK=$RUN/responder.sock QGA_SOCK=$RUN/qga.sock QMP_SOCK=$RUN/qmp.sock" \
              "SERIAL_LOG=$RUN/serial.log" ;;
    *) echo "usage: $0 start|stop|send LINE|snapshot NAME|env" >&2; exit 2 ;;
esac
