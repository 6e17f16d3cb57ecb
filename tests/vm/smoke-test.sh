#!/bin/bash
# smoke-test.sh BIN_DIR [CAPTURE_OUT_DIR]: the VM rig end to end, without the agent or daemon.
#   1. fetch the kernel (cached), build the initramfs (with quiesce-agent if $QB_AGENT_BINARY
#      names a static binary), boot the VM with the record workload
#   2. the workload acknowledges records, and keeps doing so; with an agent, it serves its port
#      and guest-init restarts it after kill -9
#   3. the guest's sysfs for /dev/sda (virtio-scsi) and /dev/vda (virtio-blk) is captured; the
#      VPD pages must carry the WWN and serial given to QEMU (written to CAPTURE_OUT_DIR if set)
#   4. a snapshot taken with the guest frozen (qb-responder: busybox fsfreeze) verifies
#      consistent, holding every record acknowledged before the freeze
#   5. control: snapshots taken WITHOUT freezing while the workload runs; at least one of up to
#      QB_VM_CONTROL_TRIES (default 3) must be found inconsistent, proving the check can fail
# BIN_DIR holds qb-recordwriter and qb-verify-records. Exit 0 pass, 1 fail, 77 skip (not root,
# no QEMU). Everything is torn down on exit (lab.sh stop from a trap).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:?usage: smoke-test.sh BIN_DIR [CAPTURE_OUT_DIR]}
CAPTURE_OUT=${2:-}
WWN=0x5000c500a0b1c2d3
SERIAL=QBLUN0001

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (loop devices, mounts)"; exit 77; }
step() { echo "smoke: [$(date +%T)] $*"; }
fail() { echo "smoke: FAIL: $*"; exit 1; }

t_start=$(date +%s%N)
"$HERE/fetch-kernel.sh" >/dev/null
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu-system-x86_64"; exit 77; }

export QB_VM_RUN
QB_VM_RUN=$(mktemp -d "${TMPDIR:-/tmp}/qb-vm-smoke.XXXXXX")
trap '"$HERE/lab.sh" stop; rm -rf "$QB_VM_RUN"' EXIT
trap 'exit 130' INT TERM HUP  # so the EXIT trap tears down on a signal too
export QB_VM_INITRD=$QB_VM_RUN/initramfs.cpio.gz
"$HERE/build-initramfs.sh" "${QB_AGENT_BINARY:-}" "$QB_VM_INITRD" "$BIN/qb-recordwriter" |
    sed 's/^/  /'
export QB_VERIFY_RECORDS=$BIN/qb-verify-records
export QB_VM_BLK=1 QB_VM_LUN_WWN=$WWN QB_VM_LUN_SERIAL=$SERIAL
export QB_VM_APPEND="qb.work=1 qb.capture=1 ${QB_VM_APPEND:-}"

step "boot"
"$HERE/lab.sh" start
lab() { "$HERE/lab.sh" "$@"; }
serial=$QB_VM_RUN/serial.log

step "workload"
acked_of() { echo "$1" | grep -oE '[0-9]+$'; }
a1=$(acked_of "$(lab send ACKED)")
for _ in $(seq 100); do
    a2=$(acked_of "$(lab send ACKED)")
    [ "$a2" -gt "$a1" ] && break
    sleep 0.1
done
[ "$a2" -gt "$a1" ] || fail "workload is not acknowledging records ($a1 -> $a2)"
echo "  acknowledged $a1 -> $a2"

if [ -n "${QB_AGENT_BINARY:-}" ] && [ -f "$QB_AGENT_BINARY" ]; then
    step "agent"
    for _ in $(seq 300); do
        tr -d '\r' < "$serial" | grep -q 'quiesce-agent.*serving virtio-serial port' && break
        sleep 0.1
    done
    tr -d '\r' < "$serial" | grep -q 'quiesce-agent.*serving virtio-serial port' ||
        fail "the agent does not serve its virtio-serial port"
    pid1=$(acked_of "$(lab send AGENT-PID)")
    [ "$pid1" -gt 0 ] || fail "no agent process"
    lab send "AGENT-SIGNAL KILL" >/dev/null
    pid2=0
    for _ in $(seq 300); do
        pid2=$(acked_of "$(lab send AGENT-PID)")
        [ "$pid2" -gt 0 ] && [ "$pid2" != "$pid1" ] && break
        sleep 0.1
    done
    [ "$pid2" -gt 0 ] && [ "$pid2" != "$pid1" ] || fail "the agent was not restarted after kill -9"
    echo "  agent serves its port; killed pid $pid1, restarted as pid $pid2"
fi

step "sysfs capture"
cap=$QB_VM_RUN/capture
mkdir -p "$cap"
sed -n '/^QB-CAPTURE-BEGIN/,/^QB-CAPTURE-END/p' "$serial" | tr -d '\r' | sed '1d;$d' |
    base64 -d | tar -C "$cap" -xzf - || fail "no sysfs capture on the console"
for f in sys/block/sda/device/vpd_pg83 sys/block/sda/device/vpd_pg80 sys/block/sda/size \
         sys/block/sda/device/vendor sys/block/sda/device/model sys/block/vda/serial \
         sys/block/vda/size; do
    [ -s "$cap/$f" ] || fail "capture lacks $f"
done
# VPD 0x83 must carry the NAA designator built from the WWN given to QEMU (8 binary bytes).
naa_hex=${WWN#0x}
od -An -tx1 -v "$cap/sys/block/sda/device/vpd_pg83" | tr -d ' \n' | grep -q "$naa_hex" ||
    fail "vpd_pg83 does not hold NAA $naa_hex"
grep -q "$SERIAL" "$cap/sys/block/sda/device/vpd_pg80" || fail "vpd_pg80 does not hold $SERIAL"
grep -q QBBLK0001 "$cap/sys/block/vda/serial" || fail "virtio-blk serial missing"
echo "  sda NAA $naa_hex and serial $SERIAL seen by the guest; vda serial QBBLK0001"
if [ -n "$CAPTURE_OUT" ]; then
    mkdir -p "$CAPTURE_OUT"
    cp -r "$cap"/. "$CAPTURE_OUT"/
    echo "  capture written to $CAPTURE_OUT"
fi

step "frozen snapshot"
reply=$(lab send FREEZE)
case "$reply" in FROZEN*) ;; *) lab send THAW >/dev/null || true; fail "freeze: $reply" ;; esac
frozen_acked=$(acked_of "$reply")
snap=$(lab snapshot frozen)
reply=$(lab send THAW)
[ "$reply" = THAWED ] || fail "thaw: $reply"
verify() { # verify SNAPSHOT MIN_SEQUENCE: prints the report indented; status of verify-snapshot.sh
    local out rc=0
    out=$("$HERE/verify-snapshot.sh" "$1" --min-sequence "$2") || rc=$?
    echo "$out" | sed 's/^/  /'
    [ $rc -le 1 ] || fail "verify-snapshot.sh error ($rc)"
    return $rc
}
verify "$snap" "$frozen_acked" || fail "the frozen snapshot is not consistent"

step "control snapshots (no freeze)"
detected=0
for i in $(seq "${QB_VM_CONTROL_TRIES:-3}"); do
    before=$(acked_of "$(lab send ACKED)")
    snap=$(lab snapshot "control$i")
    if verify "$snap" "$before"; then
        echo "  control $i happened to be consistent"
    else
        detected=$((detected + 1))
        break
    fi
done
[ $detected -gt 0 ] || fail "no control snapshot was detected as inconsistent: the check cannot fail"

reply=$(lab send WORK-STOP)
echo "  workload stopped: $reply"
grep -q '^QB-RECORDS: stopped' <(tr -d '\r' < "$serial") || fail "workload did not report its stop"
t_end=$(date +%s%N)
echo "smoke: PASS: boot $(cat "$QB_VM_RUN/boot-seconds") s under $(cat "$QB_VM_RUN/accel")," \
     "total $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"
