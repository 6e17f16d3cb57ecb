#!/bin/bash
# slow-array.sh: an `exec` array backend (host-daemon/arrays/exec/README.md) over reflink copies,
# whose snapshot can be made slow on purpose: the end-to-end tests' "array" for the cases where
# the array call outlives the freeze (daemon killed meanwhile, backend slower than the lease).
# Environment (set by the wrapper lib.sh write_config makes: quiesced passes none of its own):
# QB_SLOW_ARRAY_DIR = snapshot directory on the LUN's reflink
# file system; the file $QB_SLOW_ARRAY_DIR/.delay-ms, if present, holds how long `snapshot`
# sleeps before cutting, .prepare-delay-ms the same for `prepare` (between the guest's
# inventory and the Freeze); every call is appended to $QB_SLOW_ARRAY_DIR/.calls.log.
# Needs jq.
set -uo pipefail
dir=${QB_SLOW_ARRAY_DIR:?QB_SLOW_ARRAY_DIR unset}
req=$(cat)
op=$(jq -r .op <<<"$req")
echo "$(date +%s.%N) $op $(jq -c 'del(.version)' <<<"$req")" >> "$dir/.calls.log"
err() { jq -cn --arg c "$1" --arg m "$2" '{ok:false,error:{code:$c,message:$m}}'; exit 0; }
case "$op" in
    capabilities) echo '{"ok":true,"capabilities":{"atomic_group":false,"clone":false,"rollback":false}}' ;;
    resolve)
        vol=$(jq -r .lun.volume <<<"$req")
        [ -f "$vol" ] || err not-found "no volume $vol"
        echo '{"ok":true}' ;;
    prepare)
        delay=$(cat "$dir/.prepare-delay-ms" 2>/dev/null || echo 0)
        [ "$delay" -gt 0 ] && sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
        echo '{"ok":true,"projected_cut_ms":5}' ;;
    snapshot)
        delay=$(cat "$dir/.delay-ms" 2>/dev/null || echo 0)
        [ "$delay" -gt 0 ] && sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
        out='[]'
        while IFS=$'\t' read -r vol name; do
            dest=$dir/$name
            [ -e "$dest" ] && err conflict "$dest exists"
            cp --reflink=always "$vol" "$dest" || err array-error "reflink copy of $vol failed"
            out=$(jq -c --arg v "$vol" --arg a "$dest" '. + [{volume:$v, array_name:$a}]' <<<"$out")
        done < <(jq -r '.luns[] | [.volume, .snapshot_name] | @tsv' <<<"$req")
        echo "$(date +%s.%N) snapshot-done" >> "$dir/.calls.log"
        jq -cn --argjson s "$out" '{ok:true,snapshots:$s}' ;;
    find)
        out='[]'
        while IFS=$'\t' read -r vol name; do
            [ -e "$dir/$name" ] &&
                out=$(jq -c --arg v "$vol" --arg a "$dir/$name" '. + [{volume:$v, array_name:$a}]' <<<"$out")
        done < <(jq -r '.luns[] | [.volume, .snapshot_name] | @tsv' <<<"$req")
        jq -cn --argjson s "$out" '{ok:true,snapshots:$s}' ;;
    list)
        vol=$(jq -r .lun.volume <<<"$req")
        out='[]'
        for f in "$dir"/qb-*; do
            [ -e "$f" ] || continue
            out=$(jq -c --arg v "$vol" --arg a "$f" '. + [{volume:$v, array_name:$a}]' <<<"$out")
        done
        jq -cn --argjson s "$out" '{ok:true,snapshots:$s}' ;;
    remove)
        name=$(jq -r .snapshot.array_name <<<"$req")
        case "$name" in "$dir"/qb-*) rm -f "$name" ;; *) err invalid-argument "not ours: $name" ;; esac
        echo '{"ok":true}' ;;
    *) err unsupported "op $op" ;;
esac
