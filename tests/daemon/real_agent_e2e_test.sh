#!/bin/bash
# End to end with the REAL quiesce-agent (not the qb-test-agent double), quiesced and quiescectl.
#   host side:  a loop-mounted XFS (reflink=1) in a temp dir holds the LUN file vm1.raw;
#   "guest":    vm1.raw is loop-attached, formatted ext4 and mounted; the agent (unix socket)
#               is given a mount table naming only that mount, and the daemon maps the loop disk
#               to the LUN with `disk` (the loop device has no WWN).
#   1. reflink snapshot: application-consistent; the snapshot file is a reflink copy (shared
#      extents) of the LUN that e2fsck finds clean; the agent froze exactly one file system.
#   2. exec backend whose snapshot sleeps: while the guest mount is frozen, writes to it block
#      and writes to the host XFS do not; kill -9 of quiesced -> the agent's lease thaws the
#      mount within the lease; the restarted daemon reconciles the job and labels nothing
#      application-consistent that was not.
# Root only (loop devices, mounts, FIFREEZE): exits 77 otherwise. The setup and its teardown
# on every path are shared with crash_points_test.sh (loop_guest_lib.sh).
# Usage: real_agent_e2e_test.sh QUIESCED QUIESCECTL QUIESCE_AGENT FAKE_ARRAY
set -u
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") AGENT=$(realpath "$3") ARRAY=$(realpath "$4")
. "$(dirname "$0")/loop_guest_lib.sh"
lg_require e2fsck filefrag
lg_setup qb-real
lg_exec_wrapper
export QB_FAKE_ARRAY_DIR=$T/array  # the slow exec array (fake_array.py) of part 2
echo "data before the snapshot" > "$T/guest/before.txt"
LEASE_MS=3000
lg_start_agent $LEASE_MS

# write_config BACKEND: the LUN is snapshotted by BACKEND (reflink or the slow exec array).
write_config() {
  cat > "$T/quiesced.toml" <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$T/catalog.db"
worker_threads = 2
[policy]
late_snapshot = "remove"
[backends.reflink]
snapshot_dir = "$T/xfs/snaps"
[backends.slow]
type = "exec"
script = "$ARRAY"
timeout_ms = 20000
[[guests]]
name = "vm1"
agent = "unix:$T/agent.sock"
luns = [ { backend = "$1", volume = "$LUN", disk = "$DISK" } ]
TOML
}
start_daemon() { lg_start_daemon; }

# 1. Reflink snapshot through the real agent.
write_config reflink
start_daemon
out=$("$CTL" --socket "$T/quiesced.sock" snapshot vm1 --json); rc=$?
[ $rc -eq 0 ] || fail "snapshot exit $rc: $out"
[ "$(echo "$out" | jq -r .consistency)" = application-consistent ] || fail "not app-consistent: $out"
echo "$out" | jq -e '.not_covered | length == 0' >/dev/null || fail "not covered: $out"
grep -Eq "frozen: 1 file system\(s\)" "$T/agent.log" || fail "agent did not freeze exactly one fs"
SNAP=$(ls "$T"/xfs/snaps/* 2>/dev/null | head -1)
[ -n "$SNAP" ] && [ "$(ls "$T"/xfs/snaps | wc -l)" -eq 1 ] || fail "snapshot files: $(ls -R "$T/xfs/snaps")"
filefrag -v "$SNAP" | grep -q shared || fail "snapshot is not a reflink copy: $(filefrag -v "$SNAP")"
e2fsck -fn "$SNAP" > "$T/fsck.log" 2>&1 || { cat "$T/fsck.log"; fail "e2fsck of the snapshot"; }
[ "$(debugfs -R 'cat /before.txt' "$SNAP" 2>/dev/null)" = "data before the snapshot" ] ||
  fail "snapshot lacks the data written before it"
kill -TERM $DAEMON; wait $DAEMON; rc=$?
[ $rc -eq 0 ] || fail "daemon exit $rc after SIGTERM"
echo "ok 1 reflink snapshot: application-consistent, shared extents, fsck clean, one fs frozen"

# 2. kill -9 of quiesced while the guest is frozen.
echo 6 > "$T/array/slow"
write_config slow
start_daemon
"$CTL" --socket "$T/quiesced.sock" snapshot vm1 --lease-ms $LEASE_MS --json > "$T/job2.json" 2>&1 &
CTLPID=$!
PIDS+=($CTLPID)
wait_for 15 test -e "$T/array/snapshot-started" || fail "slow snapshot never started"
# Frozen: a write to the guest mount blocks; the host XFS and the temp dir stay writable.
( echo probe > "$T/guest/probe"; sync -f "$T/guest/probe"; date +%s%N > "$T/probe.done" ) &
PROBE=$!
echo host > "$T/xfs/host-probe" && sync -f "$T/xfs/host-probe" || fail "host XFS not writable"
sleep 0.5
[ -e "$T/probe.done" ] && fail "guest mount not frozen during the snapshot"
kill -9 $DAEMON
KILLED=$(date +%s%N)
wait $DAEMON 2>/dev/null
# The agent's own lease (LEASE_MS) thaws the mount with no daemon at all.
wait_for 10 test -e "$T/probe.done" || fail "guest still frozen 10 s after the daemon died"
wait $PROBE; PROBE=
THAW_MS=$(( ($(cat "$T/probe.done") - KILLED) / 1000000 ))
[ $THAW_MS -le $((LEASE_MS + 1500)) ] || fail "thawed ${THAW_MS} ms after the kill (lease $LEASE_MS)"
wait $CTLPID
rm -f "$T/array/slow"
start_daemon
no_running_job() {
  "$CTL" --socket "$T/quiesced.sock" jobs --json | jq -e 'map(select(.state == "running")) | length == 0' >/dev/null
}
wait_for 40 no_running_job || fail "job still running after restart"
jobs=$("$CTL" --socket "$T/quiesced.sock" jobs --json)
echo "$jobs" | jq -e 'map(select(.state == "reconciled")) | length == 1' >/dev/null || fail "no reconciled job: $jobs"
echo "$jobs" | jq -e 'map(select(.consistency == "application-consistent")) | length == 1' >/dev/null ||
  fail "only job 1 may be application-consistent: $jobs"
snaps=$("$CTL" --socket "$T/quiesced.sock" snapshots vm1 --json)
echo "$snaps" | jq -e 'map(select(.consistency == "application-consistent" and .backend == "slow")) | length == 0' >/dev/null ||
  fail "a snapshot of the killed job is labelled application-consistent: $snaps"
kill -TERM $DAEMON; wait $DAEMON
echo "ok 2 kill -9 while frozen: agent lease thawed after ${THAW_MS} ms, reconciled, nothing mislabelled"
