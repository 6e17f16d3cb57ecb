#!/bin/bash
# SIGTERM to the real quiesced while a snapshot job is in its prepare step (the exec array's
# resolve call stalls, tests/daemon/fake_array.py), with the qb-test-agent double as the guest:
#   - quiescectl gets the job's reply (not end of stream): error "cancelled: daemon stopping",
#     error_code 11 (cancelled), exit status 3 (no application-consistent snapshot: shutdown);
#   - no step runs after the signal: no prepare call, no Freeze sent to the guest;
#   - the daemon exits 0.
# Usage: shutdown_cancel_test.sh QUIESCED QUIESCECTL TEST_AGENT FAKE_ARRAY
set -u
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") AGENT=$(realpath "$3") ARRAY=$(realpath "$4")
T=$(mktemp -d /tmp/qb-cancel-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T" "${S:-}"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$T/daemon.log" ] && { echo "--- daemon.log"; tail -30 "$T/daemon.log"; }
  exit 1
}
wait_for() {  # wait_for SECONDS CONDITION...
  local until=$((SECONDS + $1)); shift
  while ! "$@"; do [ $SECONDS -ge $until ] && return 1; sleep 0.02; done
}
# The exec script must sit where only root can write (not under /tmp) and gets none of the
# daemon's variables: a 0700 wrapper under the build tree hands it the array directory.
S=$(mktemp -d "$PWD/qb-exec-XXXXXX")
printf '#!/bin/sh\nQB_FAKE_ARRAY_DIR=%s exec %s\n' "$T/array" "$ARRAY" > "$S/array.sh"
chmod 0700 "$S/array.sh"
ARRAY=$S/array.sh
export QB_FAKE_ARRAY_DIR=$T/array
mkdir -p "$T/array"

cat > "$T/quiesced.toml" <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$T/catalog.db"
worker_threads = 2
log_level = "info"
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
"$QUIESCED" --config "$T/quiesced.toml" --foreground >> "$T/daemon.log" 2>&1 &
DAEMON=$!
PIDS+=($DAEMON)
connected() {
  kill -0 $DAEMON 2>/dev/null || fail "daemon exited"
  "$CTL" --socket "$T/quiesced.sock" guests --json 2>/dev/null |
    jq -e 'type == "array" and .[0].link_state == "connected"' >/dev/null 2>&1
}
wait_for 30 connected || fail "daemon did not come up with a connected guest"

echo 3 > "$T/array/stall-resolve"
"$CTL" --socket "$T/quiesced.sock" snapshot vm1 --json > "$T/job.json" 2>"$T/job.err" &
CTLPID=$!
PIDS+=($CTLPID)
wait_for 20 test -e "$T/array/resolve-started" || fail "the job never reached prepare"
kill -TERM $DAEMON
wait $CTLPID; rc=$?
wait $DAEMON; drc=$?
out=$(cat "$T/job.json")
echo "quiescectl exit $rc: $out $(cat "$T/job.err")"
[ "$(echo "$out" | jq -r .error 2>/dev/null)" = "cancelled: daemon stopping" ] ||
  fail "want the error 'cancelled: daemon stopping'"
[ "$(echo "$out" | jq -r .error_code)" = 11 ] || fail "want error_code 11 (cancelled)"
[ $rc -eq 3 ] || fail "quiescectl exit $rc (want 3: no application-consistent snapshot, shutdown)"
grep -qx prepare "$T/array/calls" && fail "prepare ran after SIGTERM: $(tr '\n' ' ' < "$T/array/calls")"
grep -qx snapshot "$T/array/calls" && fail "the array snapshot ran after SIGTERM"
grep -q "^frozen\|^thawed [1-9]" "$T/agent.state" 2>/dev/null && fail "the guest was frozen after SIGTERM"
[ $drc -eq 0 ] || fail "daemon exit $drc after SIGTERM"
echo "ok SIGTERM during prepare: cancelled reply, nothing ran after the signal"
