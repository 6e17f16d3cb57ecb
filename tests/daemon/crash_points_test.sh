#!/bin/bash
# Crash points (common/crash_point.h) of quiesced, each armed in turn against the REAL
# quiesce-agent freezing a loop-mounted guest file system, with the reflink backend on a
# loop-mounted XFS (setup shared with real_agent_e2e_test.sh: loop_guest_lib.sh). For every
# case: start quiesced with QB_CRASH_POINT=<point>, run the action until the daemon dies there,
# restart it without the point, wait for its reconcile to finish, then check the invariants:
#   - the guest is thawed (a write to its mount completes; generous bound, no timing asserted);
#   - no job is left running;
#   - no contradiction (host-daemon/catalog/catalog.h): every row carries its job's label, and
#     a job without a label has no rows;
#   - every row's snapshot file exists and is a whole clone (the LUN's size), and every file in
#     the snapshot directory has a row (nothing orphaned, no partial or temporary file left);
#   - nothing is being deleted any more (no row in state `deleting`);
#   - the case's own expectation (e.g. a recorded job keeps its snapshot).
# Crash points of quiesced, by stage:
#   job.after-plan job.after-begin job.after-prepare freeze.before-send freeze.after-frozen
#   snapshot.before-array snapshot.after-array thaw.before thaw.after
#   record.before-group-remove record.before-rows record.after-rows record.after-label
#   reflink.after-create reflink.after-clone reflink.after-link
#   expose.after-create expose.after-clone expose.after-link
#   delete.after-mark delete.after-array prune.before-delete
# (record.after-rows fires inside the catalog's RecordJob transaction.)
# Root only: exits 77 otherwise. Usage: crash_points_test.sh QUIESCED QUIESCECTL QUIESCE_AGENT
# FAKE_ARRAY [CASE...] (default: every case).
set -u
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") AGENT=$(realpath "$3") ARRAY=$(realpath "$4")
shift 4
ONLY=("$@")
. "$(dirname "$0")/loop_guest_lib.sh"
lg_require sqlite3
lg_setup qb-crash
lg_exec_wrapper
# Generous: the exec array (a python script) can be slow on a loaded machine, and the array
# call must land inside the lease. Only the freeze-stage kills wait for it.
LEASE_MS=10000
lg_start_agent $LEASE_MS
LUN_SIZE=$(stat -c %s "$LUN")
SNAPS=$T/xfs/snaps
DB=$T/catalog.db

# write_config POLICY [GUEST_NAME] [RETENTION_KEEP_LAST]
write_config() {
  local name=${2:-vm1}
  cat > "$T/quiesced.toml" <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$DB"
worker_threads = 2
[policy]
late_snapshot = "$1"
[backends.reflink]
snapshot_dir = "$SNAPS"
[[guests]]
name = "$name"
agent = "unix:$T/agent.sock"
luns = [ { backend = "reflink", volume = "$LUN", disk = "$DISK" } ]
TOML
  if [ -n "${3:-}" ]; then
    printf '[retention]\n"*" = { keep_last = %s }\n' "$3" >> "$T/quiesced.toml"
  fi
}

ctl() { "$CTL" --socket "$T/quiesced.sock" "$@"; }
sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }

# Starts the daemon with POINT armed.
start_armed() { QB_CRASH_POINT=$1 lg_start_daemon; }
# Waits for the daemon to die at POINT.
expect_crash() {
  local point=$1
  dead() { ! kill -0 $DAEMON 2>/dev/null; }
  wait_for 60 dead || fail "daemon did not die at $point: $(cat "$T/ctl.out" 2>/dev/null)"
  wait $DAEMON 2>/dev/null
  grep -q "crash point $point" "$T/daemon.log" || fail "daemon died, but not at $point"
}
# Restarts the daemon (no point armed) and waits until its reconcile is done.
restart() {
  local before
  before=$(grep -c "reconcile done" "$T/daemon.log")
  QB_CRASH_POINT= lg_start_daemon
  reconciled() { [ "$(grep -c "reconcile done" "$T/daemon.log")" -gt "$before" ]; }
  wait_for 60 reconciled || fail "reconcile did not finish"
}
stop_daemon() { kill -TERM $DAEMON; wait $DAEMON; }

guest_thawed() {
  rm -f "$T/probe.done"
  ( echo probe > "$T/guest/probe"; sync -f "$T/guest/probe"; touch "$T/probe.done" ) &
  PROBE=$!
  wait_for 30 test -e "$T/probe.done" || fail "guest still frozen"
  wait $PROBE; PROBE=
}

check_invariants() {
  guest_thawed
  local n
  n=$(sql "SELECT COUNT(*) FROM jobs WHERE state = 'running'")
  [ "$n" -eq 0 ] || fail "$n job(s) still running: $(sql 'SELECT * FROM jobs')"
  n=$(sql "SELECT COUNT(*) FROM snapshots s JOIN jobs j ON s.job_id = j.id
           WHERE j.consistency IS NULL OR s.consistency != j.consistency")
  [ "$n" -eq 0 ] || fail "contradictory labels: $(sql "SELECT j.job_key, j.state, j.consistency,
    s.id, s.consistency FROM snapshots s JOIN jobs j ON s.job_id = j.id")"
  if sql "SELECT 1 FROM pragma_table_info('snapshots') WHERE name = 'state'" | grep -q 1; then
    n=$(sql "SELECT COUNT(*) FROM snapshots WHERE state != 'present'")
    [ "$n" -eq 0 ] || fail "$n deletion(s) left pending"
  fi
  local file
  while read -r file; do
    [ -z "$file" ] && continue
    [ -f "$file" ] || fail "row without its snapshot file: $file"
    [ "$(stat -c %s "$file")" -eq "$LUN_SIZE" ] ||
      fail "row for a partial snapshot file: $file ($(stat -c %s "$file") of $LUN_SIZE bytes)"
  done < <(sql "SELECT array_name FROM snapshots")
  for file in "$SNAPS"/* "$SNAPS"/.[!.]*; do
    [ -e "$file" ] || continue
    [ "$(sql "SELECT COUNT(*) FROM snapshots WHERE array_name = '$file'")" -eq 1 ] ||
      fail "snapshot file without a row: $file ($(stat -c %s "$file") bytes)"
  done
}

# Fresh catalog and snapshot directory for a case.
reset() {
  rm -f "$DB" "$DB-wal" "$DB-shm"
  rm -rf "$SNAPS" "$T/xfs/luns/exposed.raw"
  mkdir -p "$SNAPS"
}

wanted() {
  [ ${#ONLY[@]} -eq 0 ] && return 0
  local c; for c in "${ONLY[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1
}

# A snapshot job killed at POINT, with POLICY for what reconcile finds without a row.
job_case() {  # job_case POINT POLICY
  reset
  write_config "$2"
  start_armed "$1"
  ctl snapshot vm1 --lease-ms $LEASE_MS --json > "$T/ctl.out" 2>&1
  expect_crash "$1"
  restart
  check_invariants
}

CASES=0
run() {  # run NAME FUNCTION ARGS...
  local name=$1; shift
  wanted "$name" || return 0
  echo "--- $name" >> "$T/daemon.log"
  "$@"
  stop_daemon
  CASES=$((CASES + 1))
  echo "ok $CASES $name"
}

# Every stage of a job: whatever the point, the invariants hold after the restart.
for point in job.after-plan job.after-begin job.after-prepare freeze.before-send \
             freeze.after-frozen snapshot.before-array snapshot.after-array thaw.before \
             thaw.after record.before-rows record.after-rows; do
  run "$point" job_case "$point" remove
done
run "snapshot.after-array/crash-consistent" job_case snapshot.after-array crash-consistent
run "record.after-rows/crash-consistent" job_case record.after-rows crash-consistent

# Defect 1: once the job is recorded, the snapshot is the job's and keeps its label; reconcile
# never removes a snapshot that has a row (the late policy is for rows that do not exist).
recorded_case() {  # recorded_case POLICY
  job_case record.after-label "$1"
  [ "$(sql "SELECT state || ' ' || consistency FROM jobs")" = "succeeded application-consistent" ] ||
    fail "the recorded job changed: $(sql 'SELECT job_key, state, consistency, error FROM jobs')"
  [ "$(sql "SELECT COUNT(*) FROM snapshots WHERE consistency = 'application-consistent'")" -eq 1 ] ||
    fail "the recorded snapshot is gone or relabelled: $(sql 'SELECT * FROM snapshots')"
}
run "record.after-label/remove" recorded_case remove
run "record.after-label/crash-consistent" recorded_case crash-consistent

# Defect 2: a kill between creating the snapshot file and filling it leaves no partial file.
run "reflink.after-create" job_case reflink.after-create crash-consistent
run "reflink.after-clone" job_case reflink.after-clone crash-consistent
run "reflink.after-link" job_case reflink.after-link crash-consistent

# Defect 2 (expose): a kill mid-expose leaves no partial volume under the requested name:
# either none (before the link) or the whole clone (after it).
expose_case() {  # expose_case POINT absent|whole
  reset
  write_config remove
  start_armed "$1"
  ctl snapshot vm1 --lease-ms $LEASE_MS --json > "$T/ctl.out" || fail "snapshot: $(cat "$T/ctl.out")"
  local id
  id=$(jq -r '.snapshots[0].snapshot_id' "$T/ctl.out")
  ctl expose "$id" --as exposed.raw > /dev/null 2>&1
  expect_crash "$1"
  restart
  check_invariants
  local exposed=$T/xfs/luns/exposed.raw
  if [ "$2" = absent ]; then
    [ ! -e "$exposed" ] || fail "partial exposed volume left: $(stat -c %s "$exposed") bytes"
  else
    [ "$(stat -c %s "$exposed")" -eq "$LUN_SIZE" ] || fail "exposed volume is not whole"
  fi
}
run "expose.after-create" expose_case expose.after-create absent
run "expose.after-clone" expose_case expose.after-clone absent
run "expose.after-link" expose_case expose.after-link whole

# Defect 3: delete killed between its steps: the deletion is finished at restart.
delete_case() {
  reset
  write_config remove
  start_armed "$1"
  ctl snapshot vm1 --lease-ms $LEASE_MS --json > "$T/ctl.out" || fail "snapshot: $(cat "$T/ctl.out")"
  local id
  id=$(jq -r '.snapshots[0].snapshot_id' "$T/ctl.out")
  ctl delete "$id" > /dev/null 2>&1
  expect_crash "$1"
  restart
  check_invariants
  [ "$(sql "SELECT COUNT(*) FROM snapshots")" -eq 0 ] || fail "deleted snapshot still listed"
}
run "delete.after-mark" delete_case delete.after-mark
run "delete.after-array" delete_case delete.after-array

# Defect 3 (retention after a job): keep_last = 1, the second job prunes the first.
prune_case() {  # prune_case POINT ROWS_LEFT
  reset
  write_config remove vm1 1
  start_armed "$1"
  ctl snapshot vm1 --lease-ms $LEASE_MS --json > "$T/ctl.out" || fail "snapshot 1: $(cat "$T/ctl.out")"
  ctl snapshot vm1 --lease-ms $LEASE_MS --json > "$T/ctl2.out" 2>&1
  expect_crash "$1"
  restart
  check_invariants
  [ "$(sql "SELECT COUNT(*) FROM snapshots")" -eq "$2" ] ||
    fail "retention left: $(sql 'SELECT id FROM snapshots')"
}
run "prune/delete.after-array" prune_case delete.after-array 1
# Killed before the removal was journaled: both generations stay (retention runs again after
# the next job); nothing is half removed.
run "prune.before-delete" prune_case prune.before-delete 2

# Defect 4: the daemon restarts with the guest renamed in its config (no LUN list for the
# job's VM today): reconcile uses the LUNs the job journaled, so nothing is orphaned.
renamed_case() {
  reset
  write_config remove
  start_armed snapshot.after-array
  ctl snapshot vm1 --lease-ms $LEASE_MS --json > "$T/ctl.out" 2>&1
  expect_crash snapshot.after-array
  write_config remove vm-renamed
  restart
  check_invariants
}
run "snapshot.after-array/config-changed" renamed_case

# Defect 3 (a failed group's members): vm1 has a second LUN on an exec array that refuses the
# snapshot, so the reflink snapshot of the first LUN must go (all-or-nothing). Killed before
# that removal, it is finished at restart, not kept crash-consistent.
group_case() {
  reset
  kill -9 $AGENT_PID; wait $AGENT_PID 2>/dev/null; rm -f "$T/agent.sock"
  lg_add_second_lun
  lg_start_agent $LEASE_MS
  export QB_FAKE_ARRAY_DIR=$T/array
  touch "$T/array/fail"
  write_config crash-consistent
  cat >> "$T/quiesced.toml" <<TOML
[backends.exec]
type = "exec"
script = "$ARRAY"
TOML
  sed -i "s|^luns = .*|luns = [ { backend = \"reflink\", volume = \"$LUN\", disk = \"$DISK\" }, { backend = \"exec\", volume = \"$LUN2\", disk = \"$DISK2\" } ]|" "$T/quiesced.toml"
  start_armed record.before-group-remove
  ctl snapshot vm1 --lease-ms $LEASE_MS --json > "$T/ctl.out" 2>&1
  expect_crash record.before-group-remove
  restart
  check_invariants
  [ "$(sql "SELECT COUNT(*) FROM snapshots")" -eq 0 ] ||
    fail "a failed group's member was kept: $(sql 'SELECT id, consistency FROM snapshots')"
}
run "record.before-group-remove" group_case

[ $CASES -gt 0 ] || fail "no case ran"
echo "PASS: $CASES crash-point cases"
