#!/bin/bash
# End-to-end tests of the real quiesced and quiescectl binaries with the qb-test-agent double
# (a process) and a fake exec-backend array (fake_array.py):
#   1. a snapshot job is application-consistent; quiescectl --json and exit codes;
#   2. busy: a second job on the same VM exits 6;
#   3. SIGTERM mid-snapshot: the daemon thaws the guest before it exits (invariant 1);
#   4. kill -9 mid-snapshot: the guest's own lease thaws it (no frozen guest beyond the
#      timeout), the late snapshot lands, a restarted daemon reconciles the job: nothing is
#      application-consistent that was not (invariant 5).
# Usage: daemon_e2e_test.sh QUIESCED QUIESCECTL TEST_AGENT FAKE_ARRAY
set -u
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") AGENT=$(realpath "$3") ARRAY=$(realpath "$4")
T=$(mktemp -d /tmp/qb-e2e-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T" "${S:-}"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
export QB_FAKE_ARRAY_DIR=$T/array
# The exec script must sit where only root can write (a world-writable /tmp on its path is
# refused) and gets none of the daemon's variables: a 0700 wrapper under the build tree hands
# the array directory to fake_array.py.
S=$(mktemp -d "$PWD/qb-exec-XXXXXX")
printf '#!/bin/sh\nQB_FAKE_ARRAY_DIR=%s exec %s\n' "$T/array" "$ARRAY" > "$S/array.sh"
chmod 0700 "$S/array.sh"
ARRAY=$S/array.sh
mkdir -p "$T/array"

cat > "$T/quiesced.toml" <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$T/catalog.db"
worker_threads = 2
log_level = "info"
[policy]
late_snapshot = "remove"
[backends.exec]
script = "$ARRAY"
timeout_ms = 20000
[[guests]]
name = "vm1"
agent = "unix:$T/vm1.sock"
luns = [ { backend = "exec", volume = "vol1", wwn = "600a0b8001" } ]
TOML

"$AGENT" --socket "$T/vm1.sock" --state-file "$T/agent.state" --max-lease-ms 3000 > "$T/agent.log" 2>&1 &
PIDS+=($!)

start_daemon() {
  "$QUIESCED" --config "$T/quiesced.toml" --foreground >> "$T/daemon.log" 2>&1 &
  DAEMON=$!
  PIDS+=($DAEMON)
  for _ in $(seq 1 500); do
    kill -0 $DAEMON 2>/dev/null || { cat "$T/daemon.log"; fail "daemon exited"; }
    if "$CTL" --socket "$T/quiesced.sock" guests --json 2>/dev/null | jq -e 'type == "array" and .[0].link_state == "connected"' >/dev/null; then
      return 0
    fi
    sleep 0.02
  done
  cat "$T/daemon.log"; fail "daemon did not come up with a connected guest"
}
wait_for() {  # wait_for SECONDS CONDITION...
  local until=$((SECONDS + $1)); shift
  while ! "$@"; do [ $SECONDS -ge $until ] && return 1; sleep 0.02; done
}
agent_thawed() { grep -q thawed "$T/agent.state" 2>/dev/null; }
agent_frozen() { grep -q frozen "$T/agent.state" 2>/dev/null; }

# 1. Happy path.
start_daemon
out=$("$CTL" --socket "$T/quiesced.sock" snapshot vm1 --json); rc=$?
[ $rc -eq 0 ] || fail "snapshot exit $rc: $out"
[ "$(echo "$out" | jq -r .consistency)" = application-consistent ] || fail "not app-consistent: $out"
[ "$(echo "$out" | jq '.phases | length')" -ge 7 ] || fail "phases missing: $out"
"$CTL" --socket "$T/quiesced.sock" status nope >/dev/null 2>&1; rc=$?
[ $rc -eq 7 ] || fail "status of unknown VM exit $rc (want 7)"
"$CTL" --socket "$T/quiesced.sock" bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "usage error exit $rc (want 2)"
echo "ok 1 happy path"

# 2 + 3. Busy, then SIGTERM while the array call is in flight: the guest is thawed first.
echo 5 > "$T/array/slow"
"$CTL" --socket "$T/quiesced.sock" snapshot vm1 --lease-ms 3000 --json > "$T/job2.json" 2>&1 &
CTLPID=$!
wait_for 10 test -e "$T/array/snapshot-started" || fail "slow snapshot never started"
agent_frozen || fail "agent not frozen during the snapshot"
"$CTL" --socket "$T/quiesced.sock" snapshot vm1 --json >/dev/null 2>&1; rc=$?
[ $rc -eq 6 ] || fail "second job exit $rc (want 6 busy)"
rm -f "$T/array/snapshot-started"
kill -TERM $DAEMON
wait_for 5 agent_thawed || fail "SIGTERM did not thaw the guest"
wait $DAEMON; rc=$?
[ $rc -eq 0 ] || fail "daemon exit $rc after SIGTERM"
wait $CTLPID
echo "ok 2 busy; ok 3 SIGTERM thaws"

# 4. kill -9 mid-snapshot.
start_daemon
wait_for 10 agent_thawed || fail "agent frozen at restart"
"$CTL" --socket "$T/quiesced.sock" snapshot vm1 --lease-ms 3000 --json > "$T/job4.json" 2>&1 &
CTLPID=$!
wait_for 10 test -e "$T/array/snapshot-started" || fail "slow snapshot never started (4)"
agent_frozen || fail "agent not frozen during the snapshot (4)"
kill -9 $DAEMON
wait $DAEMON 2>/dev/null
# The guest's lease (3 s) thaws it with no daemon at all.
wait_for 8 agent_thawed || fail "guest still frozen after the lease with the daemon dead"
wait $CTLPID
# The array call lands after the daemon died (detached, 5 s).
wait_for 10 bash -c "ls $T/array/qb-* >/dev/null 2>&1" || fail "late snapshot never landed"
rm -f "$T/array/slow"
start_daemon
no_running_job() { "$CTL" --socket "$T/quiesced.sock" jobs --json | jq -e 'map(select(.state == "running")) | length == 0' >/dev/null; }
wait_for 30 no_running_job || fail "job still running after restart"
jobs=$("$CTL" --socket "$T/quiesced.sock" jobs --json)
echo "$jobs" | jq -e 'map(select(.state == "reconciled")) | length >= 1' >/dev/null || fail "no reconciled job: $jobs"
echo "$jobs" | jq -e 'map(select(.consistency == "application-consistent")) | length == 1' >/dev/null || fail "wrong app-consistent count: $jobs"
snaps=$("$CTL" --socket "$T/quiesced.sock" snapshots vm1 --json)
echo "$snaps" | jq -e 'length == 1 and .[0].consistency == "application-consistent"' >/dev/null || fail "snapshots: $snaps"
# Snapshots that landed after the restart are removed by reconcile's second pass.
one_snapshot_left() { [ "$(ls "$T"/array/qb-* 2>/dev/null | wc -l)" -eq 1 ]; }
wait_for 30 one_snapshot_left || fail "late snapshots not removed: $(ls $T/array)"
echo "ok 4 kill -9, lease thaw, reconcile"
kill -TERM $DAEMON; wait $DAEMON
echo PASS
