#!/bin/bash
# e2e-test.sh BIN_DIR consistency|faults: the product end to end on a real VM (issue 5).
# quiesced + quiescectl on the host drive quiesce-agent in the guest over the virtio-serial
# chardev; one VM boot serves every check of a suite.
#
#   consistency  (test 1) QB_E2E_ROUNDS (default 3) snapshots under load through the reflink
#                backend: each labelled application-consistent (also in `quiescectl snapshots
#                --json`), consistent without log replay, holding every record acknowledged
#                when the freeze began (freeze hook 10-records-acked); unfrozen control
#                snapshots must be found inconsistent (the check can fail).
#                (test 2) in the same snapshots, the SQLite database the freeze hook 20-sqlite
#                checkpointed: empty WAL, PRAGMA integrity_check ok, exactly the rows committed
#                before the freeze; the workload commits again after the thaw.
#   faults       through the exec backend slow-array.sh (a sleep before the reflink cut):
#                (test 5) array slower than the lease; (test 4) kill -9 of the agent while frozen;
#                (test 7) agent SIGSTOPped while a Freeze is on its way, host gives up, SIGCONT;
#                (test 3) kill -9 of quiesced while frozen, restart, reconcile. Afterwards no job
#                of these is labelled application-consistent and none is left running.
#
# BIN_DIR holds qb-recordwriter, qb-verify-records, qb-sqlite. Environment: QB_AGENT_BINARY,
# QB_DAEMON, QB_CLI (set by ctest). Exit 0 pass, 1 fail, 77 skip (not root, no QEMU).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
E2E_BIN=${1:?usage: e2e-test.sh BIN_DIR consistency|faults}
SUITE=${2:?usage: e2e-test.sh BIN_DIR consistency|faults}
case "$SUITE" in consistency|faults) ;; *) echo "e2e: unknown suite '$SUITE'" >&2; exit 2 ;; esac

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (loop devices, mounts)"; exit 77; }
for v in QB_AGENT_BINARY QB_DAEMON QB_CLI; do
    [ -x "${!v:-}" ] || { echo "e2e: $v must name the built binary (got '${!v:-}')" >&2; exit 2; }
done
for b in qb-recordwriter qb-verify-records qb-sqlite; do
    [ -x "$E2E_BIN/$b" ] || { echo "e2e: $E2E_BIN/$b missing" >&2; exit 2; }
done
"$HERE/fetch-kernel.sh" >/dev/null  # also installs packaging/deps/vm.txt (qemu, jq, sqlite3)
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu-system-x86_64"; exit 77; }
for c in jq sqlite3 socat; do
    command -v $c >/dev/null || { echo "e2e: $c missing (packaging/deps/vm.txt)" >&2; exit 2; }
done

# shellcheck source=e2e/lib.sh
. "$HERE/e2e/lib.sh"
trap 'e2e_teardown' EXIT
trap 'exit 130' INT TERM HUP

t_start=$(e2e_now)
step() { echo "e2e: [$(date +%T)] $*"; }
FAILS=0
fail() { echo "e2e: FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "e2e: ok: $*"; }

step "boot ($SUITE)"
e2e_boot
accel=$(cat "$QB_VM_RUN/accel")

# snap ARGS...: quiescectl --json snapshot ARGS lab; the JSON in $RES, the exit status in
# $SNAP_RC (non-zero is expected for the fault cases).
snap() {
    SNAP_RC=0
    cli --json snapshot "$@" lab > "$E2E/snap.json" 2>&1 || SNAP_RC=$?
    RES=$(cat "$E2E/snap.json")
}
# label_in_catalog JOB: the consistency labels `quiescectl snapshots --json` lists for JOB.
label_in_catalog() { cli --json snapshots | jq -r --arg j "$1" '[.[] | select(.job_id == $j) | .consistency] | join(",")'; }
job_row() { cli --json jobs | jq -c --arg j "$1" '.[] | select(.job_id == $j) | {state, consistency, error}'; }

consistency_suite() {
    write_config "$E2E/reflink.toml" reflink
    start_daemon "$E2E/reflink.toml"
    local rounds=${QB_E2E_ROUNDS:-3} i
    for i in $(seq "$rounds"); do
        step "[test 1+2] round $i/$rounds: quiescectl snapshot under load"
        sleep 0.3  # freezes spaced out, as a real schedule would
        local res job label snap acked_line acked sql_line
        snap; res=$RES
        echo "$res" | jq -c '{job_id, state, consistency, freeze_window_us, phases: [.phases[] | "\(.phase)=\(.duration_us / 1000 | floor)ms"]}'
        job=$(echo "$res" | jq -r .job_id)
        label=$(echo "$res" | jq -r .consistency)
        snap=$(echo "$res" | jq -r '.snapshots[0].array_name // empty')
        [ "$SNAP_RC" = 0 ] && [ "$label" = application-consistent ] ||
            { fail "round $i: quiescectl snapshot rc=$SNAP_RC label=$label"; continue; }
        [ "$(label_in_catalog "$job")" = application-consistent ] ||
            fail "round $i: quiescectl snapshots --json lists '$(label_in_catalog "$job")' for $job"
        acked_line=$(guest_get freeze.acked)
        [ "$(field "$acked_line" job)" = "$job" ] ||
            { fail "round $i: freeze hook did not note job $job ($acked_line)"; continue; }
        acked=$(field "$acked_line" acked)
        if verify_records "$snap" "$acked"; then
            ok "[test 1] round $i: $job application-consistent, snapshot consistent without log replay, holds all $acked records acknowledged at the freeze"
        else
            fail "[test 1] round $i: snapshot $snap is not consistent"
        fi
        sql_line=$(guest_get freeze.sqlite)
        if [ "$(field "$sql_line" job)" != "$job" ]; then
            fail "[test 2] round $i: the SQLite freeze hook did not run for $job ($sql_line)"
        elif verify_sqlite "$snap" "$(field "$sql_line" rows)" "$(field "$sql_line" committed)" |
                sed 's/^/    /'; [ "${PIPESTATUS[0]}" = 0 ]; then
            ok "[test 2] round $i: SQLite copy checkpointed by the hook, integrity ok, every committed row"
        else
            fail "[test 2] round $i: SQLite copy wrong"
        fi
        local c0 c1 k
        c0=$(field "$sql_line" rows)
        for k in $(seq 60); do
            c1=$(guest_get sqlite.committed)
            [ "${c1:-0}" -gt "$c0" ] && break
            sleep 0.1
        done
        [ "${c1:-0}" -gt "$c0" ] || fail "[test 2] round $i: SQLite workload does not commit after the thaw ($c0 -> $c1)"
    done

    step "[test 1] control: snapshots WITHOUT freezing must be found inconsistent"
    local detected=0 before snap
    for i in 1 2 3; do
        before=$(guest_acked)
        snap=$(lab snapshot "control$i")
        if verify_records "$snap" "$before"; then
            echo "    control $i happened to be consistent"
        else
            detected=1
            break
        fi
    done
    [ $detected = 1 ] && ok "[test 1] control snapshot detected inconsistent" ||
        fail "[test 1] no control snapshot found inconsistent: the check cannot fail"
    # Test 2's check can fail too: without the hook, the WAL holds commits (the workload never
    # checkpoints by itself), so the copy is not what the hook makes.
    local committed
    committed=$(guest_get sqlite.committed)
    snap=$(lab snapshot sqlite-control)
    if verify_sqlite "$snap" "$committed" "$committed" | sed 's/^/    /'; [ "${PIPESTATUS[0]}" != 0 ]; then
        ok "[test 2] control: an unquiesced copy of the database is told apart (it lacks committed rows)"
    else
        fail "[test 2] control: an unquiesced copy passed the SQLite check: the check cannot fail"
    fi
}

faults_suite() {
    local xs=$QB_VM_RUN/hostfs/xsnaps
    write_config "$E2E/slow.toml" slow crash-consistent
    start_daemon "$E2E/slow.toml"
    local res job t0 secs
    local fault_jobs=()

    step "baseline through the exec backend (no delay)"
    snap; res=$RES
    [ "$SNAP_RC" = 0 ] && [ "$(echo "$res" | jq -r .consistency)" = application-consistent ] &&
        ok "baseline exec-backend snapshot application-consistent" ||
        fail "baseline exec-backend snapshot: rc=$SNAP_RC $(echo "$res" | jq -c '{state,consistency,error}')"

    step "[test 5] backend slower than the lease (lease 3 s, array 6 s)"
    echo 6000 > "$xs/.delay-ms"
    t0=$(e2e_now)
    snap --lease-ms 3000; res=$RES
    secs=$(e2e_secs "$t0" "$(e2e_now)")
    job=$(echo "$res" | jq -r '.job_id // empty'); fault_jobs+=("$job")
    echo "    quiescectl rc=$SNAP_RC after $secs s: $(echo "$res" | jq -c '{job_id,state,consistency,error}')"
    if [ "$SNAP_RC" != 0 ] && [ "$(echo "$res" | jq -r .consistency)" != application-consistent ]; then
        ok "[test 5] job $job not labelled application-consistent"
    else
        fail "[test 5] slow backend job labelled $(echo "$res" | jq -r .consistency) rc=$SNAP_RC"
    fi
    [ "$(cli --json status lab | jq -r .frozen)" = false ] || fail "[test 5] guest still frozen"
    secs=$(wait_writes_resume 5) && ok "[test 5] guest thawed, writes resume (${secs} s)" ||
        fail "[test 5] guest writes do not resume"
    echo 0 > "$xs/.delay-ms"

    step "[test 4] kill -9 of the agent while the guest is frozen (array 4 s, lease 10 s)"
    echo 4000 > "$xs/.delay-ms"
    : > "$E2E/t4.json"
    (cli --json snapshot lab > "$E2E/t4.json" 2>&1; echo "rc=$?" >> "$E2E/t4.json") &
    local bg=$!
    local calls_before; calls_before=$(grep -c ' snapshot ' "$xs/.calls.log" || true)
    local i
    for i in $(seq 200); do
        [ "$(grep -c ' snapshot ' "$xs/.calls.log" || true)" -gt "$calls_before" ] && break
        sleep 0.05
    done
    if ! writes_stalled; then
        fail "[test 4] guest writes not stalled during the array call (not frozen?)"
    fi
    local pid1 pid2
    pid1=$(lab send AGENT-PID); pid1=${pid1##* }
    lab send "AGENT-SIGNAL KILL" >/dev/null
    secs=$(wait_writes_resume 8) && ok "[test 4] agent $pid1 killed while frozen: writes resume after ${secs} s (lease 10 s)" ||
        fail "[test 4] writes do not resume after the agent was killed"
    for i in $(seq 100); do
        pid2=$(lab send AGENT-PID); pid2=${pid2##* }
        [ "$pid2" != 0 ] && [ "$pid2" != "$pid1" ] && break
        sleep 0.1
    done
    [ "$pid2" != 0 ] && [ "$pid2" != "$pid1" ] && ok "[test 4] agent restarted as pid $pid2" ||
        fail "[test 4] agent not restarted"
    wait "$bg" || true
    job=$(grep -o '"job_id":"[^"]*"' "$E2E/t4.json" | head -1 | cut -d'"' -f4); fault_jobs+=("$job")
    # The dead agent's thaw guard thaws at once; the restarted agent finds the crash record of
    # the job and thaws what it lists (already thawed by then: it says so).
    local stale
    stale=$(tr -d '\r' < "$QB_VM_RUN/serial.log" | grep -a "quiesce-agent\[$pid2\].*stale freeze of job $job" | head -1)
    [ -n "$stale" ] && ok "[test 4] restarted agent handled the crash record: ${stale#*] }" ||
        fail "[test 4] restarted agent (pid $pid2) did not report the stale freeze of $job"
    echo "    quiescectl: $(tr '\n' ' ' < "$E2E/t4.json")"
    grep -q '"consistency":"application-consistent"' "$E2E/t4.json" &&
        fail "[test 4] job labelled application-consistent although the agent died"
    echo 0 > "$xs/.delay-ms"
    # The restarted agent must be connected and thawed before the next case.
    secs=$(wait_link 30) && ok "[test 4] daemon linked to the restarted agent, guest thawed (after ${secs} s)" ||
        fail "[test 4] no working link to the restarted agent: $secs"

    step "[test 7] agent SIGSTOPped while a Freeze is on its way (lease 3 s)"
    # The array's prepare (after the guest inventory, before the Freeze) is slowed down; the
    # agent is stopped during it, so the Freeze reaches a stopped agent.
    echo 1500 > "$xs/.prepare-delay-ms"
    local prep_before; prep_before=$(grep -c ' prepare ' "$xs/.calls.log" || true)
    (cli --json snapshot --lease-ms 3000 lab > "$E2E/t7.json" 2>&1 || true) &
    bg=$!
    for i in $(seq 400); do
        [ "$(grep -c ' prepare ' "$xs/.calls.log" || true)" -gt "$prep_before" ] && break
        sleep 0.05
    done
    pid1=$(lab send AGENT-PID); pid1=${pid1##* }
    lab send "AGENT-SIGNAL STOP" >/dev/null
    t0=$(e2e_now)
    wait "$bg" || true
    secs=$(e2e_secs "$t0" "$(e2e_now)")
    echo 0 > "$xs/.prepare-delay-ms"
    res=$(cat "$E2E/t7.json")
    job=$(echo "$res" | jq -r '.job_id // empty' 2>/dev/null || true)
    [ -n "$job" ] || job=$(grep ' prepare ' "$xs/.calls.log" | tail -1 | grep -o 'j20[0-9T_a-f]*' | head -1)
    fault_jobs+=("$job")
    echo "    host gave up $secs s after the SIGSTOP: $(echo "$res" | jq -c '{job_id,state,consistency,error}' 2>/dev/null || echo "$res")"
    grep -q '"state":"done"' <<<"$res" && fail "[test 7] snapshot succeeded with a stopped agent"
    writes_stalled && echo "    guest frozen while the agent is stopped" ||
        echo "    guest not frozen while the agent is stopped"
    lab send "AGENT-SIGNAL CONT" >/dev/null
    t0=$(e2e_now)
    # The late Freeze may now run; within one lease (3 s, +1.5 s for TCG and the probes) of the
    # SIGCONT the guest must be thawed, stay thawed, and write.
    sleep 4.5
    local frozen; frozen=$(cli --json status lab 2>/dev/null | jq -r .frozen 2>/dev/null || echo "?")
    secs=$(e2e_secs "$t0" "$(e2e_now)")
    if [ "$frozen" = false ] && ! writes_stalled; then
        ok "[test 7] ${secs} s after SIGCONT the guest is thawed and writing (lease 3 s)"
    else
        fail "[test 7] ${secs} s after SIGCONT: frozen=$frozen, writes stalled=$(writes_stalled && echo yes || echo no)"
    fi
    tr -d '\r' < "$QB_VM_RUN/serial.log" | grep -a "quiesce-agent.*$job" | tail -6 | sed 's/^/    guest: /' || true
    # If the late Freeze ran after the SIGCONT, the guest's own log says how long it held:
    # at most the lease.
    local f_at t_at held
    f_at=$(tr -d '\r' < "$QB_VM_RUN/serial.log" | grep -a "freeze job $job:" | head -1 | cut -d' ' -f1)
    t_at=$(tr -d '\r' < "$QB_VM_RUN/serial.log" | grep -a "job $job thawed" | head -1 | cut -d' ' -f1)
    if [ -n "$f_at" ] && [ -n "$t_at" ]; then
        held=$(awk -v a="${f_at#*T}" -v b="${t_at#*T}" 'function s(t, p) { split(t, p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
            BEGIN { printf "%d", (s(b) - s(a)) * 1000 }')
        if [ "$held" -le 3000 ]; then
            ok "[test 7] the late Freeze ran after SIGCONT and held $held ms (guest clock; lease 3000 ms)"
        else
            fail "[test 7] the late Freeze held $held ms, more than the 3000 ms lease"
        fi
    elif [ -n "$f_at" ]; then
        fail "[test 7] the late Freeze ran but the guest never logged its thaw"
    else
        echo "    the late Freeze never ran in the guest"
    fi
    grep -q '"consistency":"application-consistent"' <<<"$res" &&
        fail "[test 7] job labelled application-consistent"

    secs=$(wait_link 30) || fail "[test 7] no working link to the agent after SIGCONT: $secs"

    step "[test 3] kill -9 of quiesced while the guest is frozen (array 6 s, lease 4 s)"
    echo 6000 > "$xs/.delay-ms"
    calls_before=$(grep -c ' snapshot ' "$xs/.calls.log" || true)
    (cli --json snapshot --lease-ms 4000 lab > "$E2E/t3.json" 2>&1 || true) &
    bg=$!
    for i in $(seq 200); do
        [ "$(grep -c ' snapshot ' "$xs/.calls.log" || true)" -gt "$calls_before" ] && break
        sleep 0.05
    done
    job=$(grep ' snapshot ' "$xs/.calls.log" | tail -1 | grep -o '"job_key":"[^"]*"' | cut -d'"' -f4)
    fault_jobs+=("$job")
    writes_stalled || fail "[test 3] guest writes not stalled during the array call (not frozen?)"
    kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""
    wait "$bg" || true
    secs=$(wait_writes_resume 6) && ok "[test 3] quiesced killed while frozen: writes resume after ${secs} s (lease 4 s)" ||
        fail "[test 3] guest writes do not resume after quiesced was killed"
    # The orphaned array call lands after the thaw; then the restarted daemon reconciles.
    for i in $(seq 200); do
        grep -q 'snapshot-done' <(tail -1 "$xs/.calls.log") && break
        sleep 0.05
    done
    echo 0 > "$xs/.delay-ms"
    start_daemon "$E2E/slow.toml"
    local row
    for i in $(seq 300); do
        row=$(job_row "$job")
        [ "$(echo "$row" | jq -r .state)" != running ] && break
        sleep 0.1
    done
    echo "    after restart: $job $row; snapshots: $(label_in_catalog "$job")"
    if [ "$(echo "$row" | jq -r .state)" = reconciled ] &&
       [ "$(echo "$row" | jq -r .consistency)" != application-consistent ] &&
       ! label_in_catalog "$job" | grep -q application-consistent; then
        ok "[test 3] restarted daemon reconciled $job: $(echo "$row" | jq -r .consistency), late snapshot $(label_in_catalog "$job" | sed 's/^$/removed/')"
    else
        fail "[test 3] reconcile of $job: $row"
    fi
    [ "$(cli --json status lab | jq -r .frozen)" = false ] || fail "[test 3] guest still frozen"

    step "all fault jobs: none application-consistent, none left running"
    local j
    for i in $(seq 150); do
        cli --json jobs | jq -e '[.[] | select(.state == "running")] | length == 0' >/dev/null && break
        sleep 0.1
    done
    for j in "${fault_jobs[@]}"; do
        [ -n "$j" ] || { fail "a fault case has no job id"; continue; }
        row=$(job_row "$j")
        echo "    $j $row snapshots=[$(label_in_catalog "$j")]"
        case "$row" in *'"state":"running"'*|*'"consistency":"application-consistent"'*)
            fail "$j: $row" ;; esac
        label_in_catalog "$j" | grep -q application-consistent && fail "$j has an application-consistent snapshot"
    done
    [ "$(cli --json status lab | jq -r .frozen)" = false ] || fail "guest frozen at the end"
}

"${SUITE}_suite"
stop_daemon
t_end=$(e2e_now)
echo "e2e: $SUITE: boot $(cat "$QB_VM_RUN/boot-seconds") s under $accel, total $(e2e_secs "$t_start" "$t_end") s"
if [ $FAILS -gt 0 ]; then
    echo "e2e: $SUITE: $FAILS check(s) FAILED"
    echo "--- quiesced log (tail) ---"; tail -30 "$E2E/quiesced.log" || true
    echo "--- guest console (tail) ---"; tr -d '\r' < "$QB_VM_RUN/serial.log" | tail -30 || true
    exit 1
fi
echo "e2e: $SUITE: PASS"
