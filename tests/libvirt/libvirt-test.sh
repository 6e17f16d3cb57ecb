#!/bin/bash
# libvirt-test.sh QUIESCED QUIESCECTL AGENT RECORDWRITER VERIFY_RECORDS
#
# Issue 5, test 6: a real libvirtd (private, session mode: bench/vm/libvirtd-session.sh) runs the
# test guest (bench/vm/libvirt-vm.sh: <domain type='qemu'>, the LUN a scsi-hd with wwn + serial on
# a loop-mounted reflink XFS, the agent's <channel type='unix'> with target name
# org.quiesce-bridge.agent.0). quiesced has NO [[guests]]: only [libvirt] uri = that libvirtd.
#   1. quiesced discovers the domain, connects to its agent channel and maps the LUN (from the
#      domain XML, by lun_rules) to the reflink backend;
#   2. `quiescectl snapshot DOMAIN` is application-consistent and the copy verifies consistent
#      (tests/vm/verify-snapshot.sh) with every record acknowledged before the request;
#   3. control: with lun_rules that match no disk, the same request is NOT application-
#      consistent (the guest volume is not covered), so the mapping in 1 is what made 2 pass.
# Exit 0 pass, 1 fail, 77 skip (not root; no QEMU, libvirtd or virsh). Everything is torn down
# on exit (trap): quiesced, the domain, libvirtd, the loop mount, temp dirs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ $# -eq 5 ] || { echo "usage: $0 QUIESCED QUIESCECTL AGENT RECORDWRITER VERIFY_RECORDS" >&2; exit 2; }
Q=$1 C=$2 AGENT=$3 WRITER=$4
export QB_VERIFY_RECORDS=$5
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (loop devices, mounts, libvirtd as nobody)"; exit 77; }
for t in qemu-system-x86_64 libvirtd virsh socat; do
    command -v "$t" >/dev/null || { echo "SKIP: $t missing (packaging/deps/vm.txt, bench.txt)"; exit 77; }
done
step() { echo "libvirt-test: [$(date +%T)] $*"; }
fail() { echo "libvirt-test: FAIL: $*"; [ -f "${T:-}/quiesced.log" ] && tail -20 "$T/quiesced.log"; exit 1; }
t_start=$(date +%s%N)

T=$(mktemp -d "${TMPDIR:-/tmp}/qb-libvirt-test.XXXXXX")
chmod 0755 "$T"  # libvirtd and QEMU run as nobody below it
export QB_LVM_RUN=$T/vm QB_LVM_INITRD=$T/initrd.gz QB_LVM_APPEND="qb.work=1" QB_LVM_NAME=qb-libvirt-test
QPID=
stop_daemon() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null; QPID=; }
cleanup() { stop_daemon || true; "$ROOT/bench/vm/libvirt-vm.sh" stop || true; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

step "guest image and libvirt domain"
"$ROOT/tests/vm/fetch-kernel.sh" >/dev/null
"$ROOT/tests/vm/build-initramfs.sh" "$AGENT" "$QB_LVM_INITRD" "$WRITER" >/dev/null
"$ROOT/bench/vm/libvirt-vm.sh" start
eval "$("$ROOT/bench/vm/libvirt-vm.sh" env)"
HOSTFS=$(dirname "$LUN")

ask() { # ask LINE: one request to the guest's line responder; prints the reply line
    local reply=""
    coproc RESP { exec socat - "UNIX-CONNECT:$RESPONDER_SOCK" 2>/dev/null; }
    echo "$1" >&"${RESP[1]}"
    IFS= read -r -t 30 reply <&"${RESP[0]}" || true
    kill "$RESP_PID" 2>/dev/null || true
    wait "$RESP_PID" 2>/dev/null || true
    echo "$reply"
}

start_daemon() { # start_daemon SOURCE_PREFIX: quiesced with libvirt discovery only
    cat > "$T/quiesced.toml" <<EOF
[daemon]
control_socket = "$T/q.sock"
catalog = "$T/catalog.db"
log_level = "info"
[backends.reflink]
snapshot_dir = "$HOSTFS/snaps"
[libvirt]
uri = "$LV_URI"
agent_port = "org.quiesce-bridge.agent.0"
lun_rules = [ { disk = "file", source_prefix = "$1", backend = "reflink" } ]
EOF
    "$Q" --config "$T/quiesced.toml" >> "$T/quiesced.log" 2>&1 &
    QPID=$!
}

wait_connected() { # until quiescectl lists the domain connected (60 s)
    for _ in $(seq 600); do
        "$C" --socket "$T/q.sock" guests 2>/dev/null | grep -q "^$DOMAIN  connected" && return 0
        kill -0 "$QPID" 2>/dev/null || fail "quiesced exited"
        sleep 0.1
    done
    "$C" --socket "$T/q.sock" guests || true
    fail "quiesced did not discover and connect to domain $DOMAIN"
}

step "discovery"
start_daemon "$HOSTFS/"
wait_connected
guests=$("$C" --socket "$T/q.sock" guests)
echo "$guests" | sed 's/^/  /'
echo "$guests" | grep -qF "unix:$AGENT_SOCK" || fail "the agent endpoint is not the domain's channel $AGENT_SOCK"
echo "$guests" | grep -qF "lun reflink:$LUN" || fail "the LUN $LUN was not mapped to the reflink backend"

step "snapshot through libvirt discovery"
acked=$(ask ACKED | grep -oE '[0-9]+$' || true)
[ -n "$acked" ] || fail "no reply from the guest's responder"
rc=0
out=$("$C" --socket "$T/q.sock" snapshot "$DOMAIN" --json) || rc=$?
echo "  $out"
[ $rc -eq 0 ] || fail "quiescectl snapshot exited $rc"
echo "$out" | grep -q '"consistency":"application-consistent"' || fail "not application-consistent"
snap=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["array_name"])')
[ -f "$snap" ] || fail "snapshot file $snap missing"
vrc=0
vout=$("$ROOT/tests/vm/verify-snapshot.sh" "$snap" --min-sequence "$acked") || vrc=$?
echo "$vout" | sed 's/^/  /'
[ $vrc -eq 0 ] || fail "the snapshot is not consistent (or lacks records <= $acked): $vrc"

step "control: lun_rules that match no disk"
stop_daemon
start_daemon "/nonexistent/"
wait_connected
rc=0
out=$("$C" --socket "$T/q.sock" snapshot "$DOMAIN" --json) || rc=$?
echo "  exit $rc: $out"
[ $rc -ne 0 ] || fail "a snapshot without any mapped LUN succeeded"
echo "$out" | grep -q '"consistency":"application-consistent"' &&
    fail "labelled application-consistent without a mapped LUN"

t_end=$(date +%s%N)
echo "libvirt-test: PASS under TCG (libvirt domain), total" \
     "$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"
