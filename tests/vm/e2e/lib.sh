# tests/vm/e2e/lib.sh: shared by e2e-test.sh and demo.sh (source it; bash). One VM from lab.sh
# with the agent, the freeze hooks of hooks/, the record workload and the SQLite workload; a
# quiesced on a static guest config whose LUN carries the wwn QEMU gives the guest, so the
# guest inventory's NAA maps to the host LUN.
#
# Needs: E2E_BIN (dir with qb-recordwriter, qb-verify-records, qb-sqlite), QB_AGENT_BINARY,
# QB_DAEMON, QB_CLI. Sets: QB_VM_RUN, E2E (work dir inside it), DPID (the daemon we started).
E2E_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_DIR=$(cd "$E2E_HERE/.." && pwd)
E2E_WWN=5000c500a0b1c2d3
DPID=""

e2e_now() { date +%s%N; }
e2e_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
lab() { "$VM_DIR/lab.sh" "$@"; }
# The responder's reply to a GET, without the "GOT " prefix.
guest_get() { local r; r=$(lab send "GET $1"); echo "${r#GOT }"; }
guest_acked() { local r; r=$(lab send ACKED); echo "${r##* }"; }
# field LINE KEY: value of KEY=VALUE in a space-separated line
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# e2e_boot: initramfs (agent, hooks, workloads) and boot; both workloads start at boot.
e2e_boot() {
    export QB_VM_RUN
    QB_VM_RUN=$(mktemp -d "${TMPDIR:-/tmp}/qb-vm-e2e.XXXXXX")
    E2E=$QB_VM_RUN/e2e
    mkdir -p "$E2E"
    export QB_VM_INITRD=$QB_VM_RUN/initramfs.cpio.gz
    QB_VM_HOOKS=$E2E_HERE/hooks QB_VM_SQLITE=$E2E_BIN/qb-sqlite \
        "$VM_DIR/build-initramfs.sh" "$QB_AGENT_BINARY" "$QB_VM_INITRD" \
        "$E2E_BIN/qb-recordwriter" > "$E2E/initramfs.log" 2>&1 ||
        { cat "$E2E/initramfs.log"; return 1; }
    export QB_VM_LUN_WWN=0x$E2E_WWN
    export QB_VM_APPEND="qb.work=1 qb.sqlite=1 ${QB_VM_APPEND_EXTRA:-}"
    lab start
    # The agent must serve its port before the daemon's first Hello matters.
    local i
    for i in $(seq 300); do
        tr -d '\r' < "$QB_VM_RUN/serial.log" | grep -q 'quiesce-agent.*serving virtio-serial port' &&
            return 0
        sleep 0.1
    done
    echo "e2e: the agent does not serve its virtio-serial port" >&2
    return 1
}

# e2e_teardown: the daemon (by PID), the VM and everything lab.sh made. Safe to call twice.
# With QB_E2E_KEEP_LOGS=DIR the daemon log and the guest console are copied there first.
e2e_teardown() {
    if [ -n "${QB_E2E_KEEP_LOGS:-}" ] && [ -n "${E2E:-}" ] && [ -d "$E2E" ]; then
        mkdir -p "$QB_E2E_KEEP_LOGS"
        cp "$E2E/quiesced.log" "$QB_VM_RUN/serial.log" "$QB_VM_RUN/hostfs/xsnaps/.calls.log" \
            "$QB_E2E_KEEP_LOGS/" 2>/dev/null || true
    fi
    if [ -n "$DPID" ]; then
        kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
        DPID=""
    fi
    [ -n "${QB_VM_RUN:-}" ] && [ -d "$QB_VM_RUN" ] && { lab stop || true; rm -rf "$QB_VM_RUN"; }
    return 0
}

# write_config FILE BACKEND [LATE_POLICY]: BACKEND reflink (snapshots in hostfs/snaps) or slow
# (the exec script slow-array.sh through a wrapper, snapshots in hostfs/xsnaps). Both are
# declared in every config, so a later config still knows the backend of earlier snapshots.
write_config() {
    local file=$1 backend=$2 late=${3:-remove} hostfs=$QB_VM_RUN/hostfs
    mkdir -p "$hostfs/snaps" "$hostfs/xsnaps"
    # quiesced gives an exec script none of its own environment: a wrapper (root's, 0700, in
    # the run dir) hands slow-array.sh its snapshot directory.
    printf '#!/bin/sh\nQB_SLOW_ARRAY_DIR=%s exec %s\n' "$hostfs/xsnaps" "$E2E_HERE/slow-array.sh" \
        > "$E2E/slow-array"
    chmod 0700 "$E2E/slow-array"
    {
        echo "[daemon]"
        echo "control_socket = \"$E2E/quiesced.sock\""
        echo "catalog = \"$E2E/catalog.db\""
        echo "log_level = \"debug\""
        echo "[policy]"
        echo "late_snapshot = \"$late\""
        echo "[backends.reflink]"
        echo "snapshot_dir = \"$hostfs/snaps\""
        echo "[backends.slow]"
        echo "type = \"exec\""
        echo "script = \"$E2E/slow-array\""
        echo "[[guests]]"
        echo "name = \"lab\""
        echo "agent = \"unix:$QB_VM_RUN/agent.sock\""
        echo "luns = [ { backend = \"$backend\", volume = \"$hostfs/lun0.raw\", wwn = \"$E2E_WWN\" } ]"
    } > "$file"
}

cli() { "$QB_CLI" --socket "$E2E/quiesced.sock" "$@"; }

# start_daemon CONFIG: quiesced in the foreground (log appended to $E2E/quiesced.log); waits
# until it has connected to the guest's agent.
start_daemon() {
    "$QB_DAEMON" --config "$1" --foreground >> "$E2E/quiesced.log" 2>&1 &
    DPID=$!
    local i
    for i in $(seq 200); do
        if ! kill -0 "$DPID" 2>/dev/null; then
            tail -20 "$E2E/quiesced.log" >&2
            DPID=""
            echo "e2e: quiesced exited at start" >&2
            return 1
        fi
        [ "$(cli --json guests 2>/dev/null | jq -r '.[0].link_state' 2>/dev/null)" = connected ] &&
            return 0
        sleep 0.1
    done
    echo "e2e: quiesced did not connect to the agent within 20 s" >&2
    tail -20 "$E2E/quiesced.log" >&2
    return 1
}
# wait_link TIMEOUT_S: the daemon's link to the agent is connected and answers a status
# request; prints the seconds it took.
wait_link() {
    local t0 st; t0=$(e2e_now)
    while :; do
        st=$(cli --json status lab 2>/dev/null | jq -r '"\(.link_state) \(.frozen)"' 2>/dev/null || true)
        [ "$st" = "connected false" ] && { e2e_secs "$t0" "$(e2e_now)"; return 0; }
        [ "$(e2e_secs "$t0" "$(e2e_now)" | cut -d. -f1)" -ge "$1" ] && { echo "never ($st)"; return 1; }
        sleep 0.2
    done
}
stop_daemon() { [ -z "$DPID" ] || { kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""; }; }

# verify_records SNAPSHOT MIN_SEQUENCE: verify-snapshot.sh (records, no log replay needed);
# output indented; its exit status.
verify_records() {
    local out rc=0
    out=$(QB_VERIFY_RECORDS=$E2E_BIN/qb-verify-records "$VM_DIR/verify-snapshot.sh" "$1" \
          --min-sequence "$2") || rc=$?
    echo "$out" | sed 's/^/    /'
    return $rc
}

# verify_sqlite SNAPSHOT ROWS COMMITTED: the snapshot's app.db (file system mounted without log
# replay) must have an empty WAL (the hook checkpointed), pass PRAGMA integrity_check, and hold
# exactly rows 1..ROWS (what the hook saw at the freeze) with intact payloads, ROWS >= COMMITTED.
# Prints one line "sqlite: ..." and returns 0 when all holds.
verify_sqlite() {
    local snap=$1 rows=$2 committed=$3 d
    d=$(mktemp -d "$E2E/sqlite.XXXXXX")
    local loop; loop=$(losetup -r -f --show "$snap")
    mkdir -p "$d/mnt"
    if ! mount -t xfs -o ro,norecovery,nouuid "$loop" "$d/mnt"; then
        losetup -d "$loop"; echo "sqlite: cannot mount $snap"; return 1
    fi
    local wal=absent
    [ -f "$d/mnt/app.db-wal" ] && wal=$(stat -c %s "$d/mnt/app.db-wal")
    cp "$d/mnt/app.db" "$d/app.db"
    umount "$d/mnt"; losetup -d "$loop"
    local integrity count max bad
    integrity=$(sqlite3 "$d/app.db" 'PRAGMA integrity_check' 2>&1 | tr '\n' ' ' | sed 's/ $//')
    read -r count max bad < <(sqlite3 -separator ' ' "$d/app.db" \
        "SELECT COUNT(*), IFNULL(MAX(id),0), (SELECT COUNT(*) FROM rows WHERE payload <> printf('%-200s', 'qb-row-' || id)) FROM rows" 2>&1)
    rm -rf "$d"
    echo "sqlite: integrity_check=$integrity wal_bytes=$wal rows=$count max_id=$max bad_payloads=$bad; at the freeze: rows=$rows, committed before the hook=$committed"
    [ "$integrity" = ok ] && { [ "$wal" = 0 ] || [ "$wal" = absent ]; } &&
        [ "$count" = "$rows" ] && [ "$max" = "$rows" ] && [ "$bad" = 0 ] &&
        [ "$rows" -ge "$committed" ] && [ "$rows" -gt 0 ]
}

# wait_writes_resume TIMEOUT_S: waits until the record workload acknowledges a new record;
# prints the seconds it took; fails after TIMEOUT_S.
wait_writes_resume() {
    local t0 a0 a; t0=$(e2e_now); a0=$(guest_acked)
    while :; do
        a=$(guest_acked)
        [ "$a" -gt "$a0" ] && { e2e_secs "$t0" "$(e2e_now)"; return 0; }
        [ "$(e2e_secs "$t0" "$(e2e_now)" | cut -d. -f1)" -ge "$1" ] && { echo "never"; return 1; }
        sleep 0.05
    done
}

# writes_stalled: true if the record workload acknowledges nothing for 0.6 s (guest frozen).
writes_stalled() {
    local a0 a1; a0=$(guest_acked); sleep 0.6; a1=$(guest_acked)
    [ "$a0" = "$a1" ]
}

# wait_for_call OP JOB_PATTERN TIMEOUT_S: the slow array's call log shows OP for a job.
wait_for_call() {
    local i
    for i in $(seq $(($3 * 20))); do
        grep -q " $1 .*$2" "$QB_VM_RUN/hostfs/xsnaps/.calls.log" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
