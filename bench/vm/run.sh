#!/bin/bash
# run.sh BUILD_DIR [bench.py options: --iterations N (20) --gap S (0.3) --warmup N --paths ...]
#
# The freeze-path benchmark (on demand, not a ctest test): in ONE boot of the test guest, run as
# a libvirt domain of a private libvirtd (libvirt-vm.sh; TCG), N iterations alternating
#   quiescectl  quiescectl snapshot (static agent in the guest + quiesced + reflink backend)
#   qga-direct  Debian's qemu-ga in its JSON protocol on its own chardev (org.qemu.guest_agent.1)
#   virsh       virsh domfsfreeze / FICLONE / virsh domfsthaw (libvirt's qemu-ga channel)
#   floor       qb-floor (qb_floor.cc: FIFREEZE / reply / FITHAW in one guest process) / FICLONE /
#               THAW: what the channel allows
#   floor-sh    the same through the rig's shell responder (forks busybox fsfreeze per request)
# while the guest's record workload appends and fsyncs. Prints medians and p99 of the guest
# freeze window (kprobes on freeze_super/thaw_super in the guest), request-to-thawed, the array
# call, the excess over the floor, the ratios, and checks the targets. Exit 0 when every target
# is met, 3 when one is missed, 1 on error, 77 when it cannot run here.
# Needs root, packaging/deps/vm.txt and packaging/deps/bench.txt, and BUILD_DIR with
# quiesced, quiescectl, quiesce-agent (preferably -DQB_STATIC_AGENT=ON) and qb-recordwriter.
# QB_BENCH_AGENT=PATH puts that quiesce-agent binary in the guest instead of BUILD_DIR's (to
# compare two agents with the same host side). QB_BENCH_CONSOLE=FILE keeps the guest's serial
# console (the agent's log) there; QB_BENCH_AGENT_LOG=debug runs the agent at that log level
# (debug: per-job timing lines, logged after the Thawed reply).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [bench.py options]" >&2; exit 2; }
B=$(realpath "$1"); shift
Q=$B/host-daemon/daemon/quiesced C=$B/host-daemon/cli/quiescectl
AGENT=${QB_BENCH_AGENT:-$B/guest-agent/quiesce-agent} WRITER=$B/tests/vm/qb-recordwriter
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
for t in qemu-system-x86_64 libvirtd virsh python3 /usr/sbin/qemu-ga; do
    command -v "$t" >/dev/null || { echo "SKIP: $t missing (packaging/deps/vm.txt, bench.txt)"; exit 77; }
done
for f in "$Q" "$C" "$AGENT" "$WRITER"; do
    [ -x "$f" ] || { echo "run.sh: $f not built" >&2; exit 1; }
done

T=$(mktemp -d /tmp/qb-vmbench.XXXXXX)
chmod 0755 "$T"  # libvirtd and QEMU run unprivileged below it
export QB_LVM_RUN=$T/vm QB_LVM_INITRD=$T/initrd.gz QB_LVM_APPEND="qb.work=1" QB_LVM_NAME=qb-bench
QPID=
cleanup() {
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
    [ -n "${QB_BENCH_CONSOLE:-}" ] && cp "$QB_LVM_RUN/sock/serial.log" "$QB_BENCH_CONSOLE" 2>/dev/null
    "$HERE/libvirt-vm.sh" stop || true
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

"$ROOT/tests/vm/fetch-kernel.sh" >/dev/null
if [ -n "${QB_BENCH_AGENT_LOG:-}" ]; then
    printf '[log]\nlevel = "%s"\n' "$QB_BENCH_AGENT_LOG" > "$T/agent.toml"
    export QB_VM_AGENT_CONFIG=$T/agent.toml
fi
"$HERE/build-bench-initramfs.sh" "$AGENT" "$WRITER" "$QB_LVM_INITRD" 2>/dev/null
"$HERE/libvirt-vm.sh" start
eval "$("$HERE/libvirt-vm.sh" env)"

mkdir -p "$T/qd" "$SNAPS/qb"
cat > "$T/qd/quiesced.toml" <<EOF
[daemon]
control_socket = "$T/qd/q.sock"
catalog = "$T/qd/catalog.db"
log_level = "warn"
[backends.reflink]
snapshot_dir = "$SNAPS/qb"
[[guests]]
name = "bench"
agent = "unix:$AGENT_SOCK"
luns = [ { backend = "reflink", volume = "$LUN", wwn = "$WWN" } ]
[retention]
"*" = { keep_last = 1000 }
EOF
"$Q" --config "$T/qd/quiesced.toml" > "$T/qd/quiesced.log" 2>&1 &
QPID=$!
for _ in $(seq 600); do
    "$C" --socket "$T/qd/q.sock" guests 2>/dev/null | grep -q '^bench  connected' && break
    sleep 0.1
done
"$C" --socket "$T/qd/q.sock" guests | grep -q '^bench  connected' ||
    { cat "$T/qd/quiesced.log" >&2; echo "run.sh: the agent did not connect" >&2; exit 1; }
echo "run.sh: guest up, agent connected; static agent: $(file -L "$AGENT" | grep -qE 'static(-pie)? linked|statically' && echo yes || echo no)"

rc=0
python3 "$HERE/bench.py" --quiescectl "$C" --qsock "$T/qd/q.sock" --vm bench --uri "$LV_URI" \
    --domain "$DOMAIN" --lun "$LUN" --snaps "$SNAPS" --responder "$RESPONDER_SOCK" --floor "$FLOOR_SOCK" \
    --bench "$BENCH_SOCK" --qga "$QGA_SOCK" --accel tcg "$@" || rc=$?
if grep -qiE 'error|critical' "$T/qd/quiesced.log"; then
    echo "quiesced log:"; grep -iE 'error|critical' "$T/qd/quiesced.log" | tail -5
fi
exit $rc
