#!/bin/bash
# control-measurement.sh BIN_DIR [ROUNDS]: proves the snapshot check can fail, and measures how.
# Boots one VM with the record workload (QB_VM_FS=xfs|ext4 as for lab.sh), then ROUNDS times
# (default 5), a second apart:
#   control: read the acknowledged sequence, take a reflink snapshot WITHOUT freezing, verify;
#   frozen:  FREEZE through qb-responder (busybox fsfreeze), snapshot, THAW, verify.
# Prints one line per snapshot and a summary. Exit 0 when every frozen snapshot is consistent
# and at least one control snapshot is not; 1 otherwise; 77 when not root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:?usage: control-measurement.sh BIN_DIR [ROUNDS]}
ROUNDS=${2:-5}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

"$HERE/fetch-kernel.sh" >/dev/null
export QB_VM_RUN
QB_VM_RUN=$(mktemp -d "${TMPDIR:-/tmp}/qb-vm-control.XXXXXX")
trap '"$HERE/lab.sh" stop; rm -rf "$QB_VM_RUN"' EXIT
trap 'exit 130' INT TERM HUP  # so the EXIT trap tears down on a signal too
export QB_VM_INITRD=$QB_VM_RUN/initramfs.cpio.gz
"$HERE/build-initramfs.sh" "" "$QB_VM_INITRD" "$BIN/qb-recordwriter" >/dev/null
export QB_VERIFY_RECORDS=$BIN/qb-verify-records
export QB_VM_APPEND="qb.work=1 ${QB_VM_APPEND:-}"
"$HERE/lab.sh" start
lab() { "$HERE/lab.sh" "$@"; }
num() { echo "$1" | grep -oE '[0-9]+$'; }
ms_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

verdict() { # verdict SNAPSHOT MIN -> "consistent|INCONSISTENT without=N with=M"
    local line
    line=$("$HERE/verify-snapshot.sh" "$1" --min-sequence "$2" | grep '^QB-VERDICT' || true)
    local w r
    w=$(echo "$line" | grep -oE '"records_without_replay":[0-9]+' | cut -d: -f2)
    r=$(echo "$line" | grep -oE '"records_with_replay":[0-9]+' | cut -d: -f2)
    echo "$(echo "$line" | cut -d' ' -f2) without_replay=$w with_replay=$r"
}

sleep 2  # let the workload get going after boot
control_bad=0; frozen_bad=0
for i in $(seq "$ROUNDS"); do
    acked=$(num "$(lab send ACKED)")
    snap=$(lab snapshot "control$i")
    v=$(verdict "$snap" "$acked")
    case "$v" in INCONSISTENT*) control_bad=$((control_bad + 1)) ;; esac
    w=$(echo "$v" | grep -oE 'without_replay=[0-9]+' | cut -d= -f2)
    echo "round $i control: $v acked_before=$acked lag=$((acked - ${w:-0}))"
    rm -f "$snap"
    sleep 1

    t0=$(date +%s%N)
    reply=$(lab send FREEZE)
    frozen_ms=$(ms_since "$t0")
    acked=$(num "$reply")
    snap=$(lab snapshot "frozen$i")
    reply2=$(lab send THAW)
    window=$(ms_since "$t0")
    [ "$reply2" = THAWED ] || { echo "thaw failed: $reply2"; exit 1; }
    v=$(verdict "$snap" "$acked")
    case "$v" in consistent*) ;; *) frozen_bad=$((frozen_bad + 1)) ;; esac
    echo "round $i frozen:  $v acked_at_freeze=$acked freeze_reply_ms=$frozen_ms host_window_ms=$window"
    rm -f "$snap"
    sleep 1
done
echo "summary: accel=$(cat "$QB_VM_RUN/accel") fs=${QB_VM_FS:-xfs} boot_s=$(cat "$QB_VM_RUN/boot-seconds")" \
     "control_inconsistent=$control_bad/$ROUNDS frozen_inconsistent=$frozen_bad/$ROUNDS"
[ $frozen_bad -eq 0 ] && [ $control_bad -gt 0 ]
