#!/bin/bash
# libvirt discovery through quiesced: libvirt's test driver is fed libvirt_node.xml; the running
# domains with an agent channel become guests (LUNs mapped by [libvirt] lun_rules, source = the
# URI), a static guest of the same name wins, a domain without an agent is not served, and a
# snapshot of a discovered guest (qb-test-agent on its channel socket, fake exec array) is
# application-consistent. (Lifecycle events are covered by guest_sync_test: a test:///FILE
# driver lives inside the daemon's process, so nothing outside can start or stop its domains.)
# Usage: daemon_libvirt_test.sh QUIESCED QUIESCECTL TEST_AGENT FAKE_ARRAY NODE_XML
set -u
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") AGENT=$(realpath "$3") ARRAY=$(realpath "$4")
NODE=$(realpath "$5")
T=$(mktemp -d /tmp/qb-lv-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T" "${S:-}"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$T/daemon.log" ] && tail -30 "$T/daemon.log"; exit 1; }
export QB_FAKE_ARRAY_DIR=$T/array
# The exec script must sit where only root can write (a world-writable /tmp on its path is
# refused) and gets none of the daemon's variables: a 0700 wrapper under the build tree hands
# the array directory to fake_array.py.
S=$(mktemp -d "$PWD/qb-exec-XXXXXX")
printf '#!/bin/sh\nQB_FAKE_ARRAY_DIR=%s exec %s\n' "$T/array" "$ARRAY" > "$S/array.sh"
chmod 0700 "$S/array.sh"
ARRAY=$S/array.sh
mkdir -p "$T/array" "$T/luns"
sed "s|@DIR@|$T|g" "$NODE" > "$T/node.xml"
URI="test://$T/node.xml"

cat > "$T/quiesced.toml" <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$T/catalog.db"
worker_threads = 2
[backends.exec]
script = "$ARRAY"
[[guests]]
name = "static1"
agent = "unix:$T/static1.sock"
[libvirt]
uri = "$URI"
lun_rules = [ { disk = "file", source_prefix = "$T/luns/", backend = "exec" },
              { disk = "block", source_prefix = "/dev/disk/by-id/", backend = "exec" } ]
TOML

"$AGENT" --socket "$T/disc1.sock" --wwn 600a0b8001000001 > "$T/agent.log" 2>&1 &
PIDS+=($!)
"$QUIESCED" --config "$T/quiesced.toml" --foreground > "$T/daemon.log" 2>&1 &
DAEMON=$!
PIDS+=($DAEMON)

disc1_connected() {
  out=$("$CTL" --socket "$T/quiesced.sock" guests --json 2>/dev/null) &&
    echo "$out" | jq -e '.[] | select(.name == "disc1") | .link_state == "connected"' >/dev/null
}
for _ in $(seq 1 750); do
  kill -0 $DAEMON 2>/dev/null || fail "daemon exited"
  disc1_connected && break
  sleep 0.02
done
disc1_connected || fail "discovered guest disc1 never connected: $out"
echo "$out" > "$T/guests.json"

jq -e --arg uri "$URI" --arg lun "exec:$T/luns/disc1-data.raw" \
  '.[] | select(.name == "disc1") | .source == $uri and .luns == [$lun] and
   .endpoint == "unix:'"$T"'/disc1.sock"' "$T/guests.json" >/dev/null || fail "disc1: $out"
jq -e --arg uri "$URI" \
  '.[] | select(.name == "disc2") | .source == $uri and .endpoint == "vsock:3999999:4470" and
   .luns == ["exec:/dev/disk/by-id/wwn-0x600a0b8001000002"]' "$T/guests.json" >/dev/null ||
  fail "disc2: $out"
jq -e '.[] | select(.name == "static1") | .source == "config" and
   .endpoint == "unix:'"$T"'/static1.sock"' "$T/guests.json" >/dev/null || fail "static1: $out"
jq -e 'map(select(.name == "legacy")) | length == 0' "$T/guests.json" >/dev/null ||
  fail "legacy (no agent channel) is served: $out"
[ "$(jq length "$T/guests.json")" -eq 3 ] || fail "want 3 guests: $out"
grep -q "not wired" "$T/daemon.log" && fail "the 'not wired yet' warning is still there"
echo "ok 1 discovered guests listed with their LUNs and source $URI"

snap=$("$CTL" --socket "$T/quiesced.sock" snapshot disc1 --json); rc=$?
[ $rc -eq 0 ] || fail "snapshot of disc1 exit $rc: $snap"
[ "$(echo "$snap" | jq -r .consistency)" = application-consistent ] || fail "not app-consistent: $snap"
ls "$T"/array/qb-* >/dev/null 2>&1 || fail "no snapshot on the fake array"
echo "ok 2 snapshot of a discovered guest is application-consistent"

kill -TERM $DAEMON
wait $DAEMON; rc=$?
[ $rc -eq 0 ] || fail "daemon exit $rc after SIGTERM"
echo "ok 3 clean stop"
