#!/bin/bash
# rbd-vm-e2e.sh QUIESCED QUIESCECTL AGENT RECORDWRITER VERIFY_RECORDS
#
# End to end on Ceph RBD (ctest rbd_vm_e2e, labels ceph;vm): the test VM's data LUN is an RBD
# image that QEMU attaches itself (librbd through qemu-block-extra's block-rbd module) as a
# virtio-scsi scsi-hd with a WWN and serial; the guest mounts it and runs qb-recordwriter;
# quiesced (a type = "rbd" backend, a static guest with the LUN's WWN) snapshots it under the
# workload; the RBD snapshot is exported (`rbd export`) and verified clean and complete with
# tests/vm/verify-snapshot.sh; `quiescectl snapshots --json` must label it
# application-consistent. Then a control: an RBD snapshot cut WITHOUT a freeze under the same
# workload must be found inconsistent at least once in QB_VM_CONTROL_TRIES (default 3), which
# proves the verification can fail on this storage.
#
#   1. cluster: $QB_CEPH_DIR (the ctest fixture's, DIR/ceph.conf + DIR/keyring) or, when unset,
#      a cluster of its own (tests/ceph/ceph-cluster.sh) in the temp dir
#   2. the LUN: a 512 MiB XFS made on the host and `rbd import`ed (sparse) as rbd/<image>;
#      guest-init mounts /dev/sda at boot and cannot format it
#   3. boot: kernel and initramfs from tests/vm (fetch-kernel.sh, build-initramfs.sh with the
#      agent and the workload); QEMU is started here because tests/vm/lab.sh only attaches a
#      LUN file; the same machine model, ports and kernel command line as lab.sh
#   4. quiesced + quiescectl snapshot; export; verify; catalogue label; the workload still
#      acknowledges after the job (the guest was thawed)
#   5. control snapshots (no freeze)
# Prints "RBD-VM-E2E: ..." figure lines (accelerator, boot, freeze window, phases, export).
#
# Env: QB_CEPH_DIR (see 1), QB_VM_CACHE (tests/vm kernel cache), QB_VM_ACCEL auto|kvm|tcg
# (auto: lab.sh's cached KVM probe verdict for this host and guest kernel, else tcg),
# QB_VM_BOOT_TIMEOUT (s, default 180), QB_VM_CONTROL_TRIES (default 3), QB_KEEP=1 keeps $T,
# QB_RBD_E2E_JOBS (default 1: more snapshot jobs at the end for a median freeze window).
# Exit 0 pass, 1 fail, 77 skip (not root, no QEMU, no QEMU rbd driver, no Ceph).
# Everything it starts (QEMU, quiesced, its own cluster) is stopped by PID from the EXIT trap;
# the image and its snapshots are removed from a shared cluster; the temp dir is removed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VMDIR=$(cd "$HERE/../vm" && pwd)
[ $# -eq 5 ] || { echo "usage: $0 QUIESCED QUIESCECTL AGENT RECORDWRITER VERIFY_RECORDS" >&2; exit 2; }
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") AGENT=$(realpath "$3")
WRITER=$(realpath "$4") VERIFY=$(realpath "$5")
for b in "$QUIESCED" "$CTL" "$AGENT" "$WRITER" "$VERIFY"; do
  [ -x "$b" ] || { echo "rbd-vm-e2e: not an executable: $b" >&2; exit 2; }
done
WWN=5000c500a0b1c2d3
SERIAL=QBRBD0001
CACHE=${QB_VM_CACHE:-/var/tmp/quiesce-bridge-vm}

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mounts)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
command -v rbd >/dev/null || skip "no rbd CLI (packaging/deps/ceph.txt)"
for t in jq socat mkfs.xfs; do command -v $t >/dev/null || skip "no $t"; done
qemu_rbd_module() {
  local d
  for d in /usr/lib/x86_64-linux-gnu/qemu /usr/lib/qemu /usr/lib64/qemu; do
    [ -e "$d/block-rbd.so" ] && return 0
  done
  return 1
}
qemu_rbd_module || skip "QEMU has no rbd block driver (install qemu-block-extra)"
if [ -z "${QB_CEPH_DIR:-}" ]; then
  command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null ||
    skip "no ceph-mon/ceph-osd (packaging/deps/ceph.txt) and no QB_CEPH_DIR"
fi

T0=$(date +%s%N)
# A short path: QEMU's and quiesced's unix sockets live here (108-byte limit).
T=$(mktemp -d /tmp/qb-rbdvm.XXXXXX)
OWN_CLUSTER="" IMAGE="" QEMU_PID="" DAEMON_PID=""
CONF="" KEYRING=""
note() { echo "rbd-vm-e2e: [$(date +%T)] $*"; }
fail() {
  echo "rbd-vm-e2e: FAIL: $*"
  [ -f "$T/serial.log" ] && { echo "--- guest console (tail)"; tr -d '\r' <"$T/serial.log" | tail -15; }
  [ -f "$T/daemon.log" ] && { echo "--- quiesced log (tail)"; tail -15 "$T/daemon.log"; }
  exit 1
}
secs_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

qmp() {
  printf '{"execute":"qmp_capabilities"}\n%s\n' "$1" |
    timeout 5 socat -t 2 - "UNIX-CONNECT:$T/qmp.sock" >/dev/null 2>&1
}
stop_pid() { # stop_pid PID: TERM, up to 5 s, then KILL
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
cleanup() {
  local rc=$?
  [ -n "$DAEMON_PID" ] && stop_pid "$DAEMON_PID"
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    qmp '{"execute":"quit"}' || true
    for _ in $(seq 50); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$QEMU_PID"
  fi
  if [ -n "$IMAGE" ] && [ -z "$OWN_CLUSTER" ]; then
    # On the shared fixture cluster: leave nothing behind.
    # QEMU's watch on the image may outlive its process by a moment: retry.
    local removed=""
    for _ in $(seq 20); do
      timeout 60 rbd -c "$CONF" snap purge --no-progress "rbd/$IMAGE" >/dev/null 2>&1
      if timeout 60 rbd -c "$CONF" rm --no-progress "rbd/$IMAGE" >"$T/rbd-rm.err" 2>&1; then
        removed=1
        break
      fi
      sleep 0.5
    done
    [ -n "$removed" ] || echo "rbd-vm-e2e: could not remove rbd/$IMAGE: $(tail -1 "$T/rbd-rm.err")"
  fi
  [ -n "$OWN_CLUSTER" ] && "$HERE/ceph-cluster.sh" stop "$OWN_CLUSTER" >/dev/null 2>&1
  if [ "${QB_KEEP:-0}" = 1 ]; then echo "rbd-vm-e2e: kept $T"; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# 1. Cluster.
if [ -n "${QB_CEPH_DIR:-}" ]; then
  CONF=$QB_CEPH_DIR/ceph.conf KEYRING=$QB_CEPH_DIR/keyring
  [ -f "$CONF" ] && [ -f "$KEYRING" ] || fail "QB_CEPH_DIR=$QB_CEPH_DIR has no ceph.conf/keyring"
  note "cluster: fixture $QB_CEPH_DIR"
else
  OWN_CLUSTER=$T/ceph
  "$HERE/ceph-cluster.sh" start "$OWN_CLUSTER" | sed 's/^/  /' || fail "cluster start"
  CONF=$OWN_CLUSTER/ceph.conf KEYRING=$OWN_CLUSTER/keyring
  note "cluster: own, $OWN_CLUSTER"
fi
rbdc() { timeout 120 rbd -c "$CONF" --id admin --keyring "$KEYRING" "$@"; }

# 2. The LUN: an XFS made here, imported sparse into RBD.
IMAGE=qb-e2e-vm0-$$
truncate -s 512M "$T/lun.raw"
mkfs.xfs -q "$T/lun.raw" || fail "mkfs.xfs"
t=$(date +%s%N)
rbdc import --no-progress "$T/lun.raw" "rbd/$IMAGE" || fail "rbd import"
rm -f "$T/lun.raw"
note "LUN rbd/$IMAGE (512 MiB XFS) imported in $(secs_since "$t") s;" \
  "features: $(rbdc info --format json "rbd/$IMAGE" | jq -r '.features | join(",")')"

# 3. Kernel, initramfs, boot.
"$VMDIR/fetch-kernel.sh" >/dev/null || fail "fetch-kernel.sh"
# shellcheck source=/dev/null
. "$CACHE/kernel.env"
"$VMDIR/build-initramfs.sh" "$AGENT" "$T/initrd.gz" "$WRITER" | sed 's/^/  /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "build-initramfs.sh"
accel=${QB_VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
  accel=tcg
  probe=$CACHE/accel-probe.$(uname -r)-$(basename "$KERNEL")
  [ -w /dev/kvm ] && [ "$(cat "$probe" 2>/dev/null)" = kvm ] && accel=kvm
fi
cpu=max
[ "$accel" = kvm ] && cpu=host
drive="file=rbd:rbd/$IMAGE:id=admin:conf=$CONF:keyring=$KEYRING"
drive+=",format=raw,if=none,id=lun0,cache=none"
args=(
  -name qb-rbd-e2e -machine "q35,accel=$accel" -cpu "$cpu" -m 512 -smp 1
  -nodefaults -no-user-config -nographic -no-reboot -nic none
  -serial "file:$T/serial.log" -monitor none
  -qmp "unix:$T/qmp.sock,server=on,wait=off"
  -kernel "$KERNEL" -initrd "$T/initrd.gz"
  -append "console=ttyS0 quiet panic=-1 qb.fs=xfs qb.mods=xfs qb.work=1"
  -device virtio-serial-pci,id=vser0
  -chardev "socket,id=agent,path=$T/agent.sock,server=on,wait=off"
  -device "virtserialport,bus=vser0.0,chardev=agent,name=org.quiesce-bridge.agent.0"
  -chardev "socket,id=resp,path=$T/responder.sock,server=on,wait=off"
  -device "virtserialport,bus=vser0.0,chardev=resp,name=org.quiesce-bridge.responder.0"
  -drive "$drive"
  -device virtio-scsi-pci,id=scsi0
  -device "scsi-hd,bus=scsi0.0,drive=lun0,wwn=0x$WWN,serial=$SERIAL,vendor=QBRIDGE,product=RBDLUN"
)
note "boot under $accel"
t=$(date +%s%N)
qemu-system-x86_64 "${args[@]}" </dev/null >"$T/qemu.out" 2>&1 &
QEMU_PID=$!
console() { tr -d '\r' 2>/dev/null <"$T/serial.log"; }
deadline=$((SECONDS + ${QB_VM_BOOT_TIMEOUT:-180}))
until console | grep -q '^QB-VM: READY'; do
  kill -0 "$QEMU_PID" 2>/dev/null || { cat "$T/qemu.out"; fail "qemu exited during boot"; }
  [ $SECONDS -lt $deadline ] || fail "no READY within ${QB_VM_BOOT_TIMEOUT:-180} s"
  sleep 0.05
done
boot_s=$(secs_since "$t")
console | grep -q 'MOUNT FAILED' && fail "the guest could not mount the RBD LUN"
console | grep -q 'mounted /dev/sda on /mnt/data (xfs)' || fail "the RBD LUN is not /mnt/data"
note "booted in $boot_s s; /dev/sda (rbd/$IMAGE) mounted on /mnt/data"

# One request line to the guest's qb-responder (the no-bridge side channel); reply on stdout.
send() {
  local reply=""
  coproc RESP { exec socat - "UNIX-CONNECT:$T/responder.sock" 2>/dev/null; }
  local to=${RESP[1]} from=${RESP[0]} pid=$RESP_PID
  echo "$1" >&"$to"
  IFS= read -r -t 60 reply <&"$from" || true
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ -n "$reply" ] || fail "no reply to '$1' from the guest"
  echo "$reply"
}
acked() { send ACKED | grep -oE '[0-9]+$'; }
wait_acked_above() { # wait_acked_above N: up to 60 s for the workload to acknowledge more than N
  local a
  for _ in $(seq 600); do
    a=$(acked)
    [ "$a" -gt "$1" ] && { echo "$a"; return 0; }
    sleep 0.1
  done
  return 1
}
a0=$(acked)
a1=$(wait_acked_above "$a0") || fail "the workload does not acknowledge records on the RBD LUN"
note "workload acknowledging ($a0 -> $a1)"
for _ in $(seq 600); do
  console | grep -q 'quiesce-agent.*serving virtio-serial port' && break
  sleep 0.1
done
console | grep -q 'quiesce-agent.*serving virtio-serial port' || fail "the agent does not serve its port"

# 4. quiesced with the rbd backend; one snapshot job under the workload.
cat >"$T/quiesced.toml" <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$T/catalog.db"
worker_threads = 2
log_level = "info"
[policy]
late_snapshot = "remove"
[backends.ceph]
type = "rbd"
conf = "$CONF"
client_id = "admin"
keyring = "$KEYRING"
[[guests]]
name = "vm0"
agent = "unix:$T/agent.sock"
luns = [ { backend = "ceph", volume = "rbd/$IMAGE", wwn = "$WWN" } ]
TOML
"$QUIESCED" --config "$T/quiesced.toml" --foreground >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
ctl() { "$CTL" --socket "$T/quiesced.sock" "$@"; }
connected=""
for _ in $(seq 600); do
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "quiesced exited"
  if ctl guests --json 2>/dev/null | jq -e '.[0].link_state == "connected"' >/dev/null 2>&1; then
    connected=1
    break
  fi
  sleep 0.1
done
[ -n "$connected" ] || fail "quiesced did not connect to the guest's agent"

before=$(acked)
t=$(date +%s%N)
job=$(ctl snapshot vm0 --json)
rc=$?
job_s=$(secs_since "$t")
echo "$job" >"$T/job.json"
[ $rc -eq 0 ] || fail "quiescectl snapshot exit $rc: $job"
[ "$(jq -r .consistency <<<"$job")" = application-consistent ] || fail "job not app-consistent: $job"
freeze_us=$(jq -r .freeze_window_us <<<"$job")
[ "$freeze_us" -gt 0 ] 2>/dev/null || fail "no freeze window in the job report: $job"
phases=$(jq -r '[.phases[] | "\(.phase)=\(.duration_us / 1000 | floor)ms"] | join(" ")' <<<"$job")
note "job $(jq -r .job_id <<<"$job"): application-consistent in $job_s s; freeze window" \
  "$((freeze_us / 1000)) ms"

snaps=$(ctl snapshots vm0 --json) || fail "quiescectl snapshots: $snaps"
jq -e 'length == 1 and .[0].consistency == "application-consistent"' <<<"$snaps" >/dev/null ||
  fail "catalogue: $snaps"
array_name=$(jq -r '.[0].array_name' <<<"$snaps")
case "$array_name" in "rbd/$IMAGE@"*) ;; *) fail "array_name '$array_name' is not rbd/$IMAGE@..." ;; esac
rbdc snap ls --format json "rbd/$IMAGE" | jq -e --arg s "${array_name#*@}" \
  'map(select(.name == $s)) | length == 1' >/dev/null || fail "snapshot ${array_name#*@} not on the cluster"

t=$(date +%s%N)
rbdc export --no-progress "$array_name" "$T/snap.raw" || fail "rbd export $array_name"
export_s=$(secs_since "$t")
note "exported $array_name in $export_s s"
export QB_VERIFY_RECORDS=$VERIFY
verify() { # verify FILE MIN_SEQ: report indented; verify-snapshot.sh's status
  local out rc=0
  out=$("$VMDIR/verify-snapshot.sh" "$1" --min-sequence "$2") || rc=$?
  echo "$out" | sed 's/^/  /'
  [ $rc -le 1 ] || fail "verify-snapshot.sh error ($rc)"
  return $rc
}
verify "$T/snap.raw" "$before" || fail "the quiesced RBD snapshot is not consistent/complete"
rm -f "$T/snap.raw"
after=$(wait_acked_above "$(acked)") || fail "the workload stalled after the job (guest not thawed?)"
[ "$(ctl status vm0 --json | jq -r .frozen)" = false ] || fail "the guest is still frozen"
note "snapshot verified (every record acknowledged before the job, >= $before); workload goes on ($after)"

# 5. Control: RBD snapshots without a freeze must be caught at least once.
detected=0
for i in $(seq "${QB_VM_CONTROL_TRIES:-3}"); do
  b=$(acked)
  rbdc snap create "rbd/$IMAGE@control$i" || fail "control snap create"
  rbdc export --no-progress "rbd/$IMAGE@control$i" "$T/control.raw" || fail "control export"
  if verify "$T/control.raw" "$b"; then
    note "control $i happened to be consistent"
  else
    detected=$((detected + 1))
    rm -f "$T/control.raw"
    break
  fi
  rm -f "$T/control.raw"
done
[ $detected -gt 0 ] || fail "no unfrozen control snapshot was found inconsistent: the check cannot fail"
note "control snapshot without freeze detected inconsistent"

# Optional, for figures: QB_RBD_E2E_JOBS=N runs N-1 more jobs under the workload (each must be
# application-consistent) and prints the median freeze window of all N.
jobs_total=${QB_RBD_E2E_JOBS:-1}
windows=("$freeze_us")
cuts=("$(jq -r '.phases[] | select(.phase == "snapshot") | .duration_us' <<<"$job")")
for _ in $(seq 2 "$jobs_total"); do
  j=$(ctl snapshot vm0 --json) || fail "extra job: $j"
  [ "$(jq -r .consistency <<<"$j")" = application-consistent ] || fail "extra job not app-consistent: $j"
  windows+=("$(jq -r .freeze_window_us <<<"$j")")
  cuts+=("$(jq -r '.phases[] | select(.phase == "snapshot") | .duration_us' <<<"$j")")
done
median_ms() { # microsecond values on stdin -> "median [min .. max]" in ms
  sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                                     printf "%.1f [min %.1f max %.1f]", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}
echo "RBD-VM-E2E: median of $jobs_total job(s): freeze window" \
  "$(printf '%s\n' "${windows[@]}" | median_ms) ms; snapshot phase (the rbd cut)" \
  "$(printf '%s\n' "${cuts[@]}" | median_ms) ms"

# quiesced must stop cleanly after using the backend (librbd and the daemon once clashed over
# Boost.Asio's symbols and it aborted here: host-daemon/arrays/rbd/hide_boost_symbols.map).
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=""
[ $rc -eq 0 ] || fail "quiesced exited with status $rc on SIGTERM"
note "quiesced stopped cleanly (SIGTERM, exit 0)"

echo "RBD-VM-E2E: accel=$accel boot_s=$boot_s job_s=$job_s freeze_window_ms=$(awk -v u="$freeze_us" 'BEGIN { printf "%.1f", u / 1000 }') export_s=$export_s"
echo "RBD-VM-E2E: phases $phases"
echo "rbd-vm-e2e: PASS in $(secs_since "$T0") s"
