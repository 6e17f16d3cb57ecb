#!/bin/bash
# verify-snapshot.sh LUNCOPY [--min-sequence N] [--json]
#
# Decides whether a snapshot (a raw copy of the data LUN) is crash-consistent without help,
# which is what a freeze must guarantee:
#   1. the copy as it is, mounted read-only WITHOUT log replay (xfs: ro,norecovery;
#      ext4: ro,noload), holds a valid record file (qb-verify-records: no torn or corrupt
#      record, sequence contiguous from 1);
#   2. a second copy on which the log WAS replayed (mounted rw once) holds exactly the same
#      records: nothing was waiting in the log;
#   3. with --min-sequence N, it holds every record the workload had acknowledged before the
#      freeze (N, from the responder's "FROZEN acked=N").
# A frozen XFS leaves its log not marked clean even when the snapshot is perfect, so a plain
# read-only mount or `xfs_repair -n` is reported (log_clean) but not used for the verdict.
# For ext4, `e2fsck -fn` is run and must pass.
#
# LUNCOPY is never modified (the replayed copy is a reflink/copy in a temp dir next to it).
# Prints the findings and a last line "QB-VERDICT consistent|INCONSISTENT {json}".
# Exit status: 0 consistent, 1 inconsistent, 2 error (usage, missing tools).
# Environment: QB_VERIFY_RECORDS = path of qb-verify-records (else PATH, else build dirs).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

copy=""; min_seq=0
while [ $# -gt 0 ]; do
    case "$1" in
        --min-sequence) min_seq=${2:?}; shift 2 ;;
        -*) echo "usage: $0 LUNCOPY [--min-sequence N]" >&2; exit 2 ;;
        *) copy=$1; shift ;;
    esac
done
[ -f "$copy" ] || { echo "usage: $0 LUNCOPY [--min-sequence N]" >&2; exit 2; }

verifier=${QB_VERIFY_RECORDS:-$(command -v qb-verify-records || true)}
if [ -z "$verifier" ]; then
    for b in "$HERE"/../../build*/tests/vm/qb-verify-records; do [ -x "$b" ] && verifier=$b && break; done
fi
[ -x "$verifier" ] || { echo "verify-snapshot: qb-verify-records not found (QB_VERIFY_RECORDS)" >&2; exit 2; }

work=$(mktemp -d "$(dirname "$copy")/.verify.XXXXXX")
loops=()
cleanup() {
    for m in "$work"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
    for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

fs=$(blkid -p -o value -s TYPE "$copy" 2>/dev/null || true)
case "$fs" in
    xfs) raw_opts=ro,norecovery,nouuid; replay_opts=nouuid ;;
    ext4) raw_opts=ro,noload; replay_opts="" ;;
    *) echo "verify-snapshot: unsupported file system '$fs' in $copy" >&2; exit 2 ;;
esac

reasons=()
log_clean=unknown
if [ "$fs" = xfs ]; then
    if xfs_repair -n -f "$copy" >"$work/repair.out" 2>&1; then log_clean=yes; else
        grep -qi 'log' "$work/repair.out" && log_clean=no || log_clean="repair-failed"
    fi
else
    # e2fsck -n skips journal recovery and can pass on a copy whose journal still holds
    # transactions; the needs_recovery flag says whether it does.
    log_clean=yes
    dumpe2fs -h "$copy" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery' && log_clean=no
    e2fsck -fn "$copy" >"$work/fsck.out" 2>&1 || reasons+=("e2fsck -fn fails")
fi

# mount_and_verify NAME IMAGE OPTS RO(1/0) -> writes $work/NAME.json, returns verifier status
mount_and_verify() {
    local name=$1 image=$2 opts=$3 ro=$4
    local loop
    if [ "$ro" = 1 ]; then loop=$(losetup -r -f --show "$image"); else loop=$(losetup -f --show "$image"); fi
    loops+=("$loop")
    mkdir -p "$work/mnt-$name"
    if ! mount -t "$fs" ${opts:+-o "$opts"} "$loop" "$work/mnt-$name" 2>"$work/$name.mount.err"; then
        echo "{\"mounted\":false,\"error\":\"$(tr -d '"\n' < "$work/$name.mount.err")\"}" > "$work/$name.json"
        return 3
    fi
    local rc=0
    if [ -f "$work/mnt-$name/records.bin" ]; then
        "$verifier" --json "$work/mnt-$name/records.bin" > "$work/$name.json" || rc=$?
    else
        echo '{"mounted":true,"ok":false,"records":0,"last_sequence":0,"errors":["no records.bin"]}' > "$work/$name.json"
        rc=1
    fi
    umount "$work/mnt-$name"
    return $rc
}
field() { grep -oE "\"$2\":(true|false|[0-9]+)" "$work/$1.json" | head -1 | cut -d: -f2; }

mount_and_verify raw "$copy" "$raw_opts" 1; raw_rc=$?
cp --reflink=auto "$copy" "$work/replayed.raw"
mount_and_verify replayed "$work/replayed.raw" "$replay_opts" 0; replayed_rc=$?

raw_last=$(field raw last_sequence); raw_last=${raw_last:-0}
rep_last=$(field replayed last_sequence); rep_last=${rep_last:-0}
echo "verify-snapshot: $copy ($fs)"
echo "  without log replay: $(cat "$work/raw.json")"
echo "  after log replay:   $(cat "$work/replayed.json")"
echo "  log marked clean:   $log_clean"

[ $raw_rc -eq 3 ] && reasons+=("cannot mount without log replay")
[ $raw_rc -eq 1 ] && reasons+=("records invalid without log replay")
[ $replayed_rc -eq 3 ] && reasons+=("cannot mount even with log replay")
[ $replayed_rc -eq 1 ] && reasons+=("records invalid after log replay")
[ $raw_rc -eq 2 ] || [ $replayed_rc -eq 2 ] && reasons+=("verifier error")
if [ "$raw_last" != "$rep_last" ]; then
    reasons+=("needs log replay: $raw_last records without, $rep_last with")
fi
if [ "$min_seq" -gt 0 ] && [ "$raw_last" -lt "$min_seq" ]; then
    reasons+=("lags: $raw_last records, $min_seq were acknowledged before the snapshot ($((min_seq - raw_last)) missing)")
fi

verdict=consistent
[ ${#reasons[@]} -eq 0 ] || verdict=INCONSISTENT
for r in "${reasons[@]}"; do echo "  - $r"; done
json_reasons=$(printf '"%s",' "${reasons[@]}"); json_reasons=${json_reasons%,}
[ ${#reasons[@]} -eq 0 ] && json_reasons=""
echo "QB-VERDICT $verdict {\"snapshot\":\"$copy\",\"fs\":\"$fs\",\"consistent\":$([ $verdict = consistent ] && echo true || echo false),\"records_without_replay\":$raw_last,\"records_with_replay\":$rep_last,\"min_sequence\":$min_seq,\"log_clean\":\"$log_clean\",\"reasons\":[$json_reasons]}"
[ $verdict = consistent ]
