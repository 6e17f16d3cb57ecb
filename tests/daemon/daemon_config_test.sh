#!/bin/bash
# quiesced starts with every backend type configured (reflink, exec, purity and, when built with
# librbd, rbd; none of them is contacted at start), and a typo, a missing key or a bad secret
# source in a backend table stops it with "quiesced.toml:LINE: key: problem" and exit code 2.
# Usage: daemon_config_test.sh QUIESCED QUIESCECTL HAVE_RBD(0|1)
set -u
QUIESCED=$(realpath "$1") CTL=$(realpath "$2") HAVE_RBD=$3
T=$(mktemp -d /tmp/qb-cfg-XXXXXX)
DAEMON=
cleanup() {
  [ -n "$DAEMON" ] && kill -9 "$DAEMON" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$T" "${S:-}"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The exec script must sit where only root can write: not under a world-writable /tmp.
S=$(mktemp -d "$PWD/qb-exec-XXXXXX")
printf '#!/bin/sh\ncat >/dev/null\necho %s\n' "'{\"ok\":true,\"capabilities\":{}}'" > "$S/array.sh"
chmod 0755 "$S/array.sh"
printf 'T-0000-secret-token\n' > "$T/fa.token"
chmod 0400 "$T/fa.token"
printf 'T-0000-secret-token\n' > "$T/open.token"
chmod 0644 "$T/open.token"

# write_config FILE EXTRA_BACKEND_TOML: a config with every backend, then EXTRA appended.
write_config() {
  {
    cat <<TOML
[daemon]
control_socket = "$T/quiesced.sock"
catalog = "$T/catalog.db"
worker_threads = 1
[backends.reflink]
snapshot_dir = "$T/snaps"
[backends.exec]
script = "$S/array.sh"
[backends.fa1]
type = "purity"
host = "127.0.0.1"
port = 9
api_token_file = "$T/fa.token"
dry_run = false
TOML
    if [ "$HAVE_RBD" = 1 ]; then
      cat <<TOML
[backends.ceph]
type = "rbd"
conf = "$T/nonexistent-ceph.conf"
client_id = "quiesce"
keyring = "$T/nonexistent.keyring"
op_timeout_ms = 2000
TOML
    fi
    printf '%s\n' "$2"
  } > "$1"
}

# 1. Starts with every type; the guest's LUNs name them; stops cleanly on SIGTERM.
write_config "$T/quiesced.toml" "[[guests]]
name = \"vm1\"
agent = \"unix:$T/vm1.sock\"
luns = [ { backend = \"reflink\", volume = \"$T/lun0.raw\", disk = \"loop9\" },
         { backend = \"fa1\", volume = \"vm1-data\" } ]"
"$QUIESCED" --config "$T/quiesced.toml" --foreground > "$T/daemon.log" 2>&1 &
DAEMON=$!
up=0
for _ in $(seq 1 500); do
  kill -0 $DAEMON 2>/dev/null || { cat "$T/daemon.log"; fail "daemon exited"; }
  if out=$("$CTL" --socket "$T/quiesced.sock" guests --json 2>/dev/null); then up=1; break; fi
  sleep 0.02
done
[ $up = 1 ] || { cat "$T/daemon.log"; fail "daemon did not come up"; }
echo "$out" | jq -e '.[0].name == "vm1" and (.[0].luns | index("fa1:vm1-data")) != null' >/dev/null ||
  fail "guests: $out"
grep -q "T-0000-secret-token" "$T/daemon.log" && fail "the API token was logged"
kill -TERM $DAEMON
wait $DAEMON; rc=$?
DAEMON=
[ $rc -eq 0 ] || { cat "$T/daemon.log"; fail "daemon exit $rc after SIGTERM"; }
echo "ok 1 starts with reflink, exec, purity$([ "$HAVE_RBD" = 1 ] && echo ", rbd")"

# expect_config_error NAME EXTRA_TOML PATTERN: quiesced exits 2 with PATTERN on stderr/log.
expect_config_error() {
  write_config "$T/bad.toml" "$2"
  timeout 20 "$QUIESCED" --config "$T/bad.toml" --foreground > "$T/bad.log" 2>&1; rc=$?
  [ $rc -eq 2 ] || { cat "$T/bad.log"; fail "$1: exit $rc (want 2)"; }
  grep -Eq "$3" "$T/bad.log" || { cat "$T/bad.log"; fail "$1: no '$3' in the output"; }
  grep -q "T-0000-secret-token" "$T/bad.log" && fail "$1: the API token was printed"
  echo "ok $1"
}
# Line numbers: the fixed part above is 14 lines, + 6 with rbd.
base=14; [ "$HAVE_RBD" = 1 ] && base=20
expect_config_error "purity typo" "[backends.fa2]
type = \"purity\"
host = \"127.0.0.1\"
api_tokn_file = \"$T/fa.token\"" "bad.toml:$((base + 4)): backends.fa2.api_tokn_file: unknown key"
expect_config_error "purity missing host" "[backends.fa2]
type = \"purity\"
api_token_file = \"$T/fa.token\"" "bad.toml:$((base + 1)): backends.fa2.host: is required"
expect_config_error "purity token readable by others" "[backends.fa2]
type = \"purity\"
host = \"127.0.0.1\"
api_token_file = \"$T/open.token\"" "bad.toml:$((base + 4)): backends.fa2: .*accessible by group or others"
expect_config_error "rbd typo" "[backends.ceph2]
type = \"rbd\"
keyrng = \"/etc/ceph/k\"" "bad.toml:$((base + 3)): backends.ceph2.keyrng: unknown key"
expect_config_error "rbd bad timeout" "[backends.ceph2]
type = \"rbd\"
op_timeout_ms = 5" "bad.toml:$((base + 3)): backends.ceph2.op_timeout_ms: must be between"
expect_config_error "lun disk typo" "[[guests]]
name = \"vm1\"
agent = \"unix:$T/vm1.sock\"
luns = [ { backend = \"reflink\", volume = \"/l.raw\", dsk = \"loop9\" } ]" \
  "bad.toml:$((base + 4)): guests\\[0\\].luns\\[0\\].dsk: unknown key"
if [ "$HAVE_RBD" = 0 ]; then
  expect_config_error "rbd not built" "[backends.ceph2]
type = \"rbd\"" "bad.toml:$((base + 1)): backends.ceph2: type \"rbd\" is not built"
fi
