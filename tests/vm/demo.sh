#!/bin/bash
# demo.sh: quiesce-bridge end to end on a tiny VM, from a fresh Debian 12 machine, as root.
#   1. installs what it needs (packaging/install-build-deps) and builds (cmake --preset default)
#   2. boots the test VM (Debian's cloud kernel + busybox initramfs under QEMU) with
#      quiesce-agent inside and two workloads writing to its data LUN (fsynced records; SQLite
#      in WAL mode, checkpointed by a freeze hook)
#   3. starts quiesced with the reflink backend (the LUN is a raw file on a loop-mounted XFS)
#   4. takes a snapshot with `quiescectl snapshot`
#   5. verifies the snapshot: consistent without log replay, every record acknowledged at the
#      freeze present, no torn record; SQLite PRAGMA integrity_check and every committed row
#   6. prints a short report, tears everything down, exits non-zero if anything failed
# Environment: QB_BUILD_DIR (default: the preset's build/), QB_VM_CACHE (kernel cache,
# default /var/tmp/quiesce-bridge-vm), QB_VM_ACCEL (auto: KVM only if a probe boot works).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: run as root (loop devices, mounts, QEMU)" >&2; exit 2; }

t_all=$(date +%s%N)
say() { echo "demo: $*"; }
say "installing build and VM dependencies (Debian 12 packages)"
"$ROOT/packaging/install-build-deps" | tail -1

BUILD=${QB_BUILD_DIR:-$ROOT/build}
say "building into $BUILD"
export CCACHE_NOHASHDIR=true
(cd "$ROOT" && cmake --preset default -B "$BUILD" > "${TMPDIR:-/tmp}/qb-demo-cmake.log" 2>&1 &&
    cmake --build "$BUILD" --target quiesced quiescectl quiesce-agent qb-recordwriter \
        qb-verify-records qb-sqlite >> "${TMPDIR:-/tmp}/qb-demo-cmake.log" 2>&1) ||
    { tail -30 "${TMPDIR:-/tmp}/qb-demo-cmake.log"; say "FAILED: build"; exit 1; }
export QB_AGENT_BINARY=$BUILD/guest-agent/quiesce-agent
export QB_DAEMON=$BUILD/host-daemon/daemon/quiesced
export QB_CLI=$BUILD/host-daemon/cli/quiescectl
E2E_BIN=$BUILD/tests/vm

say "fetching the guest kernel (linux-image-cloud-amd64's current dependency, not installed)"
"$HERE/fetch-kernel.sh" | tail -1

# shellcheck source=e2e/lib.sh
. "$HERE/e2e/lib.sh"
trap 'e2e_teardown' EXIT
trap 'exit 130' INT TERM HUP

say "booting the VM (agent inside, workloads running)"
t0=$(e2e_now)
e2e_boot > "${TMPDIR:-/tmp}/qb-demo-boot.log" 2>&1 || { cat "${TMPDIR:-/tmp}/qb-demo-boot.log"; exit 1; }
boot_s=$(e2e_secs "$t0" "$(e2e_now)")
accel=$(cat "$QB_VM_RUN/accel")
write_config "$E2E/quiesced.toml" reflink
start_daemon "$E2E/quiesced.toml"
sleep 1  # let the workloads get going

say "quiescectl snapshot lab"
t0=$(e2e_now)
rc=0
cli --json snapshot lab > "$E2E/snapshot.json" || rc=$?
snap_s=$(e2e_secs "$t0" "$(e2e_now)")
res=$(cat "$E2E/snapshot.json")
label=$(jq -r '.consistency // "none"' <<<"$res")
job=$(jq -r '.job_id // "?"' <<<"$res")
snap=$(jq -r '.snapshots[0].array_name // empty' <<<"$res")

failed=0
acked_line=$(guest_get freeze.acked)
sql_line=$(guest_get freeze.sqlite)
acked=$(field "$acked_line" acked)
records_verdict="not run"; sqlite_verdict="not run"; vline="{}"
if [ "$rc" = 0 ] && [ -n "$snap" ] && [ "$(field "$acked_line" job)" = "$job" ]; then
    if verify_records "$snap" "$acked" > "$E2E/verify.out" 2>&1; then
        records_verdict="consistent"
    else
        records_verdict="INCONSISTENT"; failed=1
    fi
    vline=$(grep -o 'QB-VERDICT.*' "$E2E/verify.out" | sed 's/^QB-VERDICT [A-Za-z]* //')
    if [ "$(field "$sql_line" job)" = "$job" ] &&
        verify_sqlite "$snap" "$(field "$sql_line" rows)" "$(field "$sql_line" committed)" > "$E2E/sqlite.out"; then
        sqlite_verdict="ok"
    else
        sqlite_verdict="FAILED"; failed=1
    fi
else
    failed=1
fi
[ "$label" = application-consistent ] || failed=1

echo
echo "=== quiesce-bridge demo report ==="
echo "VM:              booted in $boot_s s under $accel (guest: Debian cloud kernel, busybox, quiesce-agent)"
echo "job:             $job (quiescectl exit $rc, $snap_s s end to end)"
jq -r '"phases:          " + ([.phases[]? | "\(.phase) \(.duration_us / 1000 * 10 | floor / 10) ms"] | join(", "))' <<<"$res"
jq -r '"freeze window:   \((.freeze_window_us // 0) / 1000 * 10 | floor / 10) ms (guest writes held)"' <<<"$res"
echo "label:           $label"
echo "snapshot:        ${snap:-none}"
[ -n "$(jq -r '.error // empty' <<<"$res")" ] && echo "error:           $(jq -r .error <<<"$res")"
echo "verification:    records $records_verdict (acknowledged at the freeze: ${acked:-?}; $(jq -r '"\(.records_without_replay) in the snapshot without log replay, \(.records_with_replay) with"' <<<"$vline" 2>/dev/null || echo "?"))"
echo "                 SQLite $sqlite_verdict ($(sed 's/^sqlite: //' "$E2E/sqlite.out" 2>/dev/null || echo "?"))"
if [ $failed = 0 ]; then
    echo "result:          PASS: the snapshot is application-consistent and verified"
else
    echo "result:          FAILED"
    sed 's/^/  /' "$E2E/verify.out" 2>/dev/null || true
    tail -20 "$E2E/quiesced.log" | sed 's/^/  quiesced: /'
fi
stop_daemon
e2e_teardown > /dev/null 2>&1
echo "teardown:        VM, daemon, loop devices, mounts and temp files removed; total $(e2e_secs "$t_all" "$(e2e_now)") s"
exit $failed
