#!/bin/bash
# A restarted quiesced thaws a guest its killed predecessor left frozen, and only one quiesced
# runs per state directory. The REAL quiesce-agent freezes a loop-mounted ext4 whose image is a
# LUN file on a loop-mounted reflink XFS (as in real_agent_e2e_test.sh):
#   1. a second quiesced on the same configuration refuses to start with a clear error; the
#      live one's control socket stays and answers;
#   2. with a 30 s lease, quiesced is killed (crash point freeze.after-frozen) while the guest
#      is frozen; the restarted daemon thaws it (Thaw, snapshot-OK false) well before the lease
#      ends, without waiting for reconcile; the time from restart to thawed is printed; the
#      agent never saw its lease expire; the job is not labelled application-consistent;
#   3. the same kill, but the restarted daemon's catalog does not know the job: it logs that and
#      leaves the guest to its lease (still frozen seconds after the reconnect).
# Root only (loop devices, mounts, FIFREEZE): exits 77 otherwise. The setup and its teardown
# on every path are shared with the other real-agent tests (loop_guest_lib.sh).
# Usage: restart_thaw_test.sh QUIESCED QUIESCECTL QUIESCE_AGENT
set -u
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") AGENT=$(realpath "$3")
. "$(dirname "$0")/loop_guest_lib.sh"
lg_require
lg_setup qb-restart
mkdir -p "$T/state"
fail() {
  echo "FAIL: $*"
  for f in daemon.log daemon2.log agent.log; do [ -f "$T/$f" ] && { echo "--- $f"; tail -25 "$T/$f"; }; done
  exit 1
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
LEASE_MS=30000
lg_start_agent $LEASE_MS

cat > "$T/quiesced.toml" <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$T/state/catalog.db"
worker_threads = 2
log_level = "info"
[backends.reflink]
snapshot_dir = "$T/xfs/snaps"
[[guests]]
name = "vm1"
agent = "unix:$T/agent.sock"
luns = [ { backend = "reflink", volume = "$LUN", disk = "$DISK" } ]
TOML
connected() {
  kill -0 $DAEMON 2>/dev/null || fail "daemon exited"
  "$CTL" --socket "$T/quiesced.sock" guests --json 2>/dev/null |
    jq -e '.[0].link_state == "connected"' >/dev/null 2>&1
}
start_daemon() {  # start_daemon [CRASH_POINT]
  QB_CRASH_POINT=${1:-} "$QUIESCED" --config "$T/quiesced.toml" --foreground >> "$T/daemon.log" 2>&1 &
  DAEMON=$!
  PIDS+=($DAEMON)
}

# 1. A second instance is refused; the live one keeps its socket.
start_daemon freeze.after-frozen
wait_for 30 connected || fail "daemon did not connect to the agent"
INODE=$(stat -c %i "$T/quiesced.sock")
timeout 20 "$QUIESCED" --config "$T/quiesced.toml" --foreground > "$T/daemon2.log" 2>&1; rc=$?
[ $rc -ne 0 ] || fail "a second quiesced started (exit 0)"
[ $rc -ne 124 ] || fail "a second quiesced kept running"
grep -q "another quiesced" "$T/daemon2.log" || fail "no clear error from the second quiesced"
[ -S "$T/quiesced.sock" ] && [ "$(stat -c %i "$T/quiesced.sock")" = "$INODE" ] ||
  fail "the live daemon's control socket was removed or replaced"
connected || fail "the live daemon no longer answers"
echo "ok 1 second instance refused (exit $rc: $(grep -o 'another quiesced.*' "$T/daemon2.log" | head -1))"

# 2. Killed while the guest is frozen (30 s lease): the restart thaws it.
"$CTL" --socket "$T/quiesced.sock" snapshot vm1 --lease-ms $LEASE_MS --json > "$T/job.json" 2>&1
wait $DAEMON 2>/dev/null
kill -0 $DAEMON 2>/dev/null && fail "the crash point did not kill the daemon"
grep -q "crash point freeze.after-frozen" "$T/daemon.log" || fail "daemon died elsewhere"
( echo probe > "$T/guest/probe"; sync -f "$T/guest/probe"; now_ms > "$T/probe.done" ) &
PROBE=$!
sleep 0.5
[ -e "$T/probe.done" ] && fail "guest mount not frozen after the kill"
RESTART=$(now_ms)
start_daemon
wait_for 40 test -e "$T/probe.done" || fail "guest still frozen 40 s after the restart"
wait $PROBE; PROBE=
THAW_MS=$(( $(cat "$T/probe.done") - RESTART ))
echo "restart to thawed: ${THAW_MS} ms (lease ${LEASE_MS} ms)"
[ $THAW_MS -lt 20000 ] || fail "thawed ${THAW_MS} ms after the restart: the lease did it"
grep -q "lease of $LEASE_MS ms expired" "$T/agent.log" && fail "the agent's lease thawed it"
wait_for 20 connected || fail "restarted daemon not connected"
no_running_job() {
  "$CTL" --socket "$T/quiesced.sock" jobs --json | jq -e 'map(select(.state == "running")) | length == 0' >/dev/null
}
wait_for 60 no_running_job || fail "job still running after restart"
jobs=$("$CTL" --socket "$T/quiesced.sock" jobs --json)
echo "$jobs" | jq -e 'length == 1 and .[0].state == "reconciled" and .[0].consistency != "application-consistent"' >/dev/null ||
  fail "the killed job: $jobs"
kill -TERM $DAEMON; wait $DAEMON; rc=$?
[ $rc -eq 0 ] || fail "daemon exit $rc after SIGTERM"
echo "ok 2 restart thawed the guest ${THAW_MS} ms after the restart (lease ${LEASE_MS} ms); job reconciled, not application-consistent"

# 3. A frozen job the catalog does not know (a fresh state dir): logged, left to the lease.
start_daemon freeze.after-frozen
wait_for 30 connected || fail "daemon did not connect to the agent (3)"
"$CTL" --socket "$T/quiesced.sock" snapshot vm1 --lease-ms $LEASE_MS --json > "$T/job3.json" 2>&1
wait $DAEMON 2>/dev/null
rm -rf "$T/state"
mkdir -p "$T/state"
( echo probe3 > "$T/guest/probe3"; sync -f "$T/guest/probe3"; now_ms > "$T/probe3.done" ) &
PROBE=$!
start_daemon
unknown_logged() { grep -q "which the catalog does not know" "$T/daemon.log"; }
wait_for 20 unknown_logged || fail "no log line for a job the catalog does not know"
sleep 2
[ -e "$T/probe3.done" ] && fail "a job the catalog does not know was thawed by the daemon"
kill -TERM $DAEMON; wait $DAEMON
fsfreeze -u "$T/guest" 2>/dev/null
wait $PROBE; PROBE=
echo "ok 3 a frozen job unknown to the catalog is logged and left to the lease"
