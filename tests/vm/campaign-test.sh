#!/bin/bash
# campaign-test.sh BIN_DIR: random-time kill campaign on the real VM (issue 12), run on demand
# (ctest label `campaign`). One VM boot (e2e/lib.sh: agent, freeze hooks, record + SQLite
# workloads), quiesced on the reflink backend (host loop XFS). Each round starts
# `quiescectl snapshot`, waits a seeded random time spread over a whole job, then kill -9s
# quiesced (by PID) and restarts it at once; every QB_CAMPAIGN_AGENT_EVERY-th round kill -9s
# the agent in the guest instead (guest-init restarts it; the daemon keeps running). Then:
#   - the guest is thawed: who thawed it comes from the logs (restarted daemon, lease, agent's
#     thaw guard, or the job itself before the kill); a write probe through the responder
#     (ACKED, sampled from the kill on) gives kill->thawed and restart->thawed; the guest's own
#     log gives how long the freeze held (guest clock). A write stall longer than the lease
#     + 3 s is a failure;
#   - after reconcile ("reconcile done" in the daemon log) no job is left running;
#   - labels are honest: a job's label equals each of its rows' labels (a job with rows has a
#     label), application-consistent only on a succeeded job, and the round's job, if
#     application-consistent, passes verify-snapshot.sh (no log replay, every record acked at
#     the freeze);
#   - nothing orphaned: no row left "deleting", every row has its snapshot file and every file
#     in the snapshot dir has its row.
# The stage of each kill is the last "job X: <phase> done" line the daemon logged before it.
# Prints one line per round and a summary; exit 0 pass, 1 any failure, 77 skip.
#
# Environment: QB_AGENT_BINARY, QB_DAEMON, QB_CLI (set by ctest);
#   QB_CAMPAIGN_ROUNDS       rounds (default 10)
#   QB_CAMPAIGN_SEED         seed of the kill times (default: the clock; always printed)
#   QB_CAMPAIGN_AGENT_EVERY  every k-th round kills the agent instead (default 4; 0 = never)
#   QB_CAMPAIGN_LEASE_MS     lease of each snapshot (default 10000, the product's default)
#   QB_CAMPAIGN_LATE         late_snapshot policy: remove (default) or crash-consistent
#   QB_E2E_KEEP_LOGS=DIR     keep the daemon log and guest console (as for e2e-test.sh)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
E2E_BIN=${1:?usage: campaign-test.sh BIN_DIR}
ROUNDS=${QB_CAMPAIGN_ROUNDS:-10}
SEED=${QB_CAMPAIGN_SEED:-$(date +%s)}
AGENT_EVERY=${QB_CAMPAIGN_AGENT_EVERY:-4}
LEASE_MS=${QB_CAMPAIGN_LEASE_MS:-10000}
LATE=${QB_CAMPAIGN_LATE:-remove}
for v in ROUNDS SEED AGENT_EVERY LEASE_MS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "campaign: $v must be a number (got '${!v}')" >&2; exit 2; }
done
case "$LATE" in remove|crash-consistent) ;; *) echo "campaign: QB_CAMPAIGN_LATE: remove|crash-consistent" >&2; exit 2 ;; esac

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (loop devices, mounts)"; exit 77; }
for v in QB_AGENT_BINARY QB_DAEMON QB_CLI; do
    [ -x "${!v:-}" ] || { echo "campaign: $v must name the built binary (got '${!v:-}')" >&2; exit 2; }
done
for b in qb-recordwriter qb-verify-records qb-sqlite; do
    [ -x "$E2E_BIN/$b" ] || { echo "campaign: $E2E_BIN/$b missing" >&2; exit 2; }
done
"$HERE/fetch-kernel.sh" >/dev/null  # also installs packaging/deps/vm.txt (qemu, jq, sqlite3)
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu-system-x86_64"; exit 77; }
for c in jq sqlite3 socat; do
    command -v $c >/dev/null || { echo "campaign: $c missing (packaging/deps/vm.txt)" >&2; exit 2; }
done

# shellcheck source=e2e/lib.sh
. "$HERE/e2e/lib.sh"
SPID=""  # the quiescectl snapshot of the round
PRB=""   # the write probe of the round
stop_bg() {
    local p
    for p in "$SPID" "$PRB"; do
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    SPID="" PRB=""
}
trap 'stop_bg; e2e_teardown' EXIT
trap 'exit 130' INT TERM HUP

FAILS=0
FAILED=()
say() { echo "campaign: $*"; }
fail() { say "FAIL: $*"; FAILS=$((FAILS + 1)); FAILED+=("$*"); }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
db() { sqlite3 -readonly -cmd '.timeout 5000' "$E2E/catalog.db" "$@"; }
# rand_frac ROUND: the ROUND-th number in [0,1) of the sequence the seed starts.
rand_frac() {
    awk -v s="$SEED" -v r="$1" 'BEGIN { srand(s % 2147483647); for (i = 0; i < r; i++) x = rand(); printf "%.6f", x }'
}
# stats: "median max" of the numbers on stdin ("-" if none)
stats() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- -"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f %.2f\n", m, v[NR] }'
}
# ge A B: A >= B (decimals)
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
# guest_ms_between T1 T2: ms from T1 to T2, times of the guest's log (ISO, same day)
guest_ms_between() {
    awk -v a="${1#*T}" -v b="${2#*T}" 'function s(t, p) { split(t, p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
        BEGIN { printf "%d", (s(b) - s(a)) * 1000 }'
}
# probe_writes STOPFILE: "NS ACKED" lines, one per responder round trip, until STOPFILE exists.
# It is stopped that way, not killed: a request cut midway would keep the responder's one
# connection busy.
probe_writes() {
    while [ ! -e "$1" ]; do echo "$(e2e_now) $(guest_acked 2>/dev/null || echo -1)"; done
}
# stall_of FILE: "STALL_S END_NS FIRST_NS" for the longest run of samples without a new
# acknowledged record (END_NS = the first sample that shows one; runs of one sample count their
# interval) and FIRST_NS = the first sample that shows a record newer than the first sample's.
stall_of() {
    awk '$2 ~ /^[0-9]+$/ && $2 >= 0 {
            if (n == 0) first = $2
            if (n > 0 && $2 != first && firstns == 0) firstns = $1
            if (n == 0 || $2 != last) {
                if (n > 0) { d = $1 - start; if (d > best) { best = d; end = $1 } }
                start = $1; last = $2
            }
            n++
        }
        END { printf "%.2f %.0f %.0f\n", best / 1e9, end, firstns }' "$1"
}

catalog_checks() { # the whole catalog and the snapshot dir; fail lines for each breach
    local where=$1 bad
    bad=$(db "SELECT j.job_key || ' is ' || IFNULL(j.consistency, 'unlabelled') || ' but row ' || s.id || ' is ' || s.consistency
              FROM snapshots s JOIN jobs j ON j.id = s.job_id
              WHERE j.consistency IS NULL OR s.consistency <> j.consistency")
    [ -z "$bad" ] || fail "$where: contradictory labels: $(echo "$bad" | tr '\n' ';')"
    bad=$(db "SELECT job_key || ' (' || state || ')' FROM jobs WHERE consistency = 'application-consistent' AND state <> 'succeeded'")
    [ -z "$bad" ] || fail "$where: application-consistent but not succeeded: $(echo "$bad" | tr '\n' ' ')"
    bad=$(db "SELECT id FROM snapshots WHERE state <> 'present'")
    [ -z "$bad" ] || fail "$where: rows left deleting: $(echo "$bad" | tr '\n' ' ')"
    bad=$(db "SELECT job_key FROM jobs WHERE state = 'running'")
    [ -z "$bad" ] || fail "$where: jobs left running: $(echo "$bad" | tr '\n' ' ')"
    local rows files
    rows=$(db "SELECT array_name FROM snapshots" | sort)
    files=$(find "$SNAPS" -mindepth 1 -maxdepth 1 | sort)
    bad=$(comm -23 <(echo "$rows") <(echo "$files") | grep . || true)
    [ -z "$bad" ] || fail "$where: rows without their snapshot file: $(echo "$bad" | tr '\n' ' ')"
    bad=$(comm -13 <(echo "$rows") <(echo "$files") | grep . || true)
    [ -z "$bad" ] || fail "$where: orphaned files in the snapshot dir: $(echo "$bad" | tr '\n' ' ')"
}

t_start=$(e2e_now)
say "seed $SEED (QB_CAMPAIGN_SEED=$SEED reproduces the kill times), rounds $ROUNDS, agent kill every ${AGENT_EVERY} (0 = never), lease $LEASE_MS ms, late policy $LATE"
e2e_boot
say "booted in $(cat "$QB_VM_RUN/boot-seconds") s under $(cat "$QB_VM_RUN/accel")"
SNAPS=$QB_VM_RUN/hostfs/snaps
CONF=$E2E/reflink.toml
write_config "$CONF" reflink "$LATE"
start_daemon "$CONF"

# Calibration: three whole jobs (they also prove the rig); the kill times are spread over the
# median one. A request to the responder (how the agent is killed) takes its own time: agent
# kills are sent that much earlier.
cal=()
for c in 1 2 3; do
    t0=$(e2e_now)
    rc=0; cli --json snapshot --lease-ms "$LEASE_MS" lab > "$E2E/cal.json" 2>&1 || rc=$?
    ms=$(( ($(e2e_now) - t0) / 1000000 ))
    cal+=("$ms")
    label=$(jq -r .consistency "$E2E/cal.json" 2>/dev/null || echo "?")
    say "calibration job $c: rc=$rc $label in $ms ms"
    [ "$rc" = 0 ] && [ "$label" = application-consistent ] || fail "calibration job $c: rc=$rc $(head -c 300 "$E2E/cal.json")"
done
range_ms=$(printf '%s\n' "${cal[@]}" | sort -n | sed -n 2p)
t0=$(e2e_now)
for _ in 1 2 3; do lab send PING >/dev/null; done
send_ms=$(( ($(e2e_now) - t0) / 3000000 ))
say "kill times uniform in 0..$range_ms ms after quiescectl starts (the median calibration job); a responder request takes ~$send_ms ms"
catalog_checks "after calibration"

STAGES=() KINDS=() LABELS=() THAWED_BY=()
: > "$E2E/kill_thaw.daemon"; : > "$E2E/kill_thaw.agent"; : > "$E2E/restart_thaw"; : > "$E2E/held"; : > "$E2E/probe_thaw"; : > "$E2E/frozen"
for i in $(seq "$ROUNDS"); do
    kind=daemon
    [ "$AGENT_EVERY" -gt 0 ] && [ $((i % AGENT_EVERY)) = 0 ] && kind=agent
    delay_ms=$(awk -v f="$(rand_frac "$i")" -v r="$range_ms" 'BEGIN { printf "%d", f * r }')
    fails_before=$FAILS
    jobs_before=$(db "SELECT job_key FROM jobs" | sort)
    log_off=$(size_of "$E2E/quiesced.log")
    reconciles_before=$(grep -c 'reconcile done' "$E2E/quiesced.log" || true)

    agent_pid=""
    [ $kind = agent ] && { agent_pid=$(lab send AGENT-PID); agent_pid=${agent_pid##* }; }
    cli --json snapshot --lease-ms "$LEASE_MS" lab > "$E2E/snap.$i.json" 2>&1 &
    SPID=$!
    sleep_ms=$delay_ms
    [ $kind = agent ] && sleep_ms=$(( delay_ms > send_ms ? delay_ms - send_ms : 0 ))
    sleep "$(awk -v d="$sleep_ms" 'BEGIN { printf "%.3f", d / 1000 }')"
    t_kill=$(e2e_now)
    if [ $kind = daemon ]; then
        kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""
    else
        lab send "AGENT-SIGNAL KILL" >/dev/null
    fi
    log_kill_off=$(size_of "$E2E/quiesced.log")
    probe=$E2E/probe.$i
    rm -f "$probe.stop"
    probe_writes "$probe.stop" > "$probe" &
    PRB=$!
    t_restart=""
    if [ $kind = daemon ]; then
        t_restart=$(e2e_now)
        start_daemon "$CONF" || { fail "round $i: quiesced does not restart"; break; }
    fi

    # The client ends (daemon killed: at once; agent killed: when the job fails).
    for _ in $(seq 600); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SPID" 2>/dev/null; then fail "round $i: quiescectl snapshot still waiting 60 s after the kill"; fi
    cli_rc=0; wait "$SPID" 2>/dev/null || cli_rc=$?; SPID=""
    # Thawed: the agent says so (through the daemon), then writes go on for a second.
    deadline=$(( t_kill + (LEASE_MS + 20000) * 1000000 ))
    frozen="?"
    while [ "$(e2e_now)" -lt "$deadline" ]; do
        frozen=$(cli --json status lab 2>/dev/null | jq -r .frozen 2>/dev/null || echo "?")
        [ "$frozen" = false ] && break
        sleep 0.1
    done
    sleep 1
    touch "$probe.stop"; wait "$PRB" 2>/dev/null || true; PRB=""
    [ "$frozen" = false ] || fail "round $i: guest not thawed $(( LEASE_MS / 1000 + 20 )) s after the kill (status: $frozen)"
    a_end=$(awk '$2 ~ /^[0-9]+$/ { print $2 }' "$probe" | tail -1)
    a_mid=$(awk -v t="$(( $(e2e_now) - 900000000 ))" '$2 ~ /^[0-9]+$/ && $1 <= t { v = $2 } END { print v + 0 }' "$probe")
    [ -n "$a_end" ] && [ "$a_end" -gt "$a_mid" ] || fail "round $i: guest writes do not resume (acked $a_mid -> ${a_end:-?})"
    read -r stall_s stall_end first_change < <(stall_of "$probe")

    # The round's job: new in the catalog, else named in the daemon's log.
    if [ $kind = daemon ]; then
        # Reconcile (second pass a sweep delay later) must end before the checks.
        for _ in $(seq 600); do
            [ "$(grep -c 'reconcile done' "$E2E/quiesced.log" || true)" -gt "$reconciles_before" ] && break
            sleep 0.1
        done
        [ "$(grep -c 'reconcile done' "$E2E/quiesced.log" || true)" -gt "$reconciles_before" ] ||
            fail "round $i: no 'reconcile done' within 60 s of the restart"
    else
        for _ in $(seq 300); do [ -z "$(db "SELECT 1 FROM jobs WHERE state = 'running'")" ] && break; sleep 0.1; done
        wait_link 30 >/dev/null || fail "round $i: no working link to the restarted agent"
    fi
    job=$(comm -13 <(echo "$jobs_before") <(db "SELECT job_key FROM jobs" | sort) | head -1 || true)
    seg=$(dd if="$E2E/quiesced.log" bs=1 skip="$log_off" count="$((log_kill_off - log_off))" 2>/dev/null)
    [ -n "$job" ] || job=$(grep -o 'job [^ :]*: [a-z]* done' <<<"$seg" | head -1 | cut -d' ' -f2 | tr -d : || true)
    stage=$(grep -F "job ${job:-none}: " <<<"$seg" | grep -o ': [a-z]* done' | tail -1 | cut -d' ' -f2 || true)
    if [ -z "$job" ]; then stage=no-job; elif [ -z "$stage" ]; then stage=before-plan-done; else stage=after-$stage; fi

    # How long the freeze held, on the guest's clock (the agent's log of a job it thawed).
    serial=$(tr -d '\r' < "$QB_VM_RUN/serial.log")
    f_at=""; z_at=""; t_at=""; held=""; frozen_ms=""
    if [ -n "$job" ]; then
        f_at=$(grep -a "freeze job $job:" <<<"$serial" | head -1 | cut -d' ' -f1 || true)
        z_at=$(grep -a "job $job frozen:" <<<"$serial" | head -1 | cut -d' ' -f1 || true)
        t_at=$(grep -a "job $job thawed" <<<"$serial" | head -1 | cut -d' ' -f1 || true)
    fi
    [ -n "$f_at" ] && [ -n "$t_at" ] && held=$(guest_ms_between "$f_at" "$t_at")
    [ -n "$z_at" ] && [ -n "$t_at" ] && frozen_ms=$(guest_ms_between "$z_at" "$t_at")
    after=$(tail -c +"$((log_kill_off + 1))" "$E2E/quiesced.log" || true)
    # Who thawed, from the logs: the restarted daemon (its leftover-freeze thaw), the lease, the
    # thaw guard of a killed agent (the restarted agent finds its crash record), or the job
    # itself before the kill reached it (then the guest was not frozen after the kill).
    by=none
    if [ -n "$job" ] && grep -qF "thawed job $job left by a stopped daemon" <<<"$after"; then by=restart
    elif [ -n "$job" ] && grep -qa "job $job: lease of" <<<"$serial"; then by=lease
    elif [ -n "$job" ] && grep -qa "stale freeze of job $job" <<<"$serial"; then by=agent-guard
    elif [ -n "$t_at" ]; then by=job
    fi
    # The time it thawed. restart: when the restarted daemon logged the agent's Thawed reply
    # (host clock, ms); lease: the end of the longest write stall; agent guard: the first new
    # record (frozen at the kill, thawed within a few samples). probe: the end of the longest
    # write stall, as a cross-check.
    k2t="-" r2t="-" thawed_ns=0 probe_k2t="-"
    case $by in
        restart)
            line=$(grep -F "thawed job $job left by a stopped daemon" <<<"$after" | head -1 || true)
            thawed_ns=$(date -d "${line%% *}" +%s%N 2>/dev/null || echo 0) ;;
        lease) thawed_ns=$stall_end ;;
        agent-guard) thawed_ns=$first_change ;;
    esac
    if [ "$stall_end" -gt "$t_kill" ]; then
        probe_k2t=$(e2e_secs "$t_kill" "$stall_end")
        [ $by = restart ] && echo "$probe_k2t" >> "$E2E/probe_thaw"
    fi
    if [ "$thawed_ns" -gt "$t_kill" ]; then
        k2t=$(e2e_secs "$t_kill" "$thawed_ns")
        echo "$k2t" >> "$E2E/kill_thaw.$kind"
        if [ -n "$t_restart" ] && [ "$thawed_ns" -gt "$t_restart" ]; then
            r2t=$(e2e_secs "$t_restart" "$thawed_ns"); echo "$r2t" >> "$E2E/restart_thaw"
        fi
    fi
    # Whoever thawed it, no stall may outlast the lease (+3 s for TCG and the probe).
    ge "$stall_s" "$(( (LEASE_MS + 3000) / 1000 ))" &&
        fail "round $i: guest writes stalled $stall_s s after the kill (lease $LEASE_MS ms)"
    [ -n "$held" ] && echo "$held" >> "$E2E/held"
    [ -n "$frozen_ms" ] && echo "$frozen_ms" >> "$E2E/frozen"

    # The round's label, and the verifier's word on an application-consistent one.
    label="no-job" verdict="-"
    if [ -n "$job" ]; then
        label=$(db "SELECT state || '/' || IFNULL(consistency, 'unlabelled') FROM jobs WHERE job_key = '$job'")
        [ -n "$label" ] || label="not-in-catalog"
        rows=$(db "SELECT COUNT(*) FROM snapshots s JOIN jobs j ON j.id = s.job_id WHERE j.job_key = '$job'")
        label="$label rows=${rows:-0}"
        if [[ "$label" == succeeded/application-consistent* ]]; then
            acked_line=$(guest_get freeze.acked)
            min=0; [ "$(field "$acked_line" job)" = "$job" ] && min=$(field "$acked_line" acked)
            snapfile=$(db "SELECT array_name FROM snapshots s JOIN jobs j ON j.id = s.job_id WHERE j.job_key = '$job' LIMIT 1")
            if verify_records "$snapfile" "$min" > "$E2E/verify.$i" 2>&1; then verdict="consistent(min $min)"
            else verdict=INCONSISTENT; cat "$E2E/verify.$i"; fail "round $i: $job labelled application-consistent but its snapshot is not consistent"; fi
        fi
    fi
    catalog_checks "round $i"
    cli_err=$(jq -r '.error // empty' "$E2E/snap.$i.json" 2>/dev/null | head -c 120 || true)
    STAGES+=("$kind:$stage") KINDS+=("$kind") LABELS+=("${label%% *}") THAWED_BY+=("$by")
    res=OK; [ "$FAILS" -gt "$fails_before" ] && res=FAIL
    say "round $i/$ROUNDS kill=$kind${agent_pid:+($agent_pid)} delay=${delay_ms}ms stage=$stage job=${job:-none} stall=${stall_s}s(ends ${probe_k2t}s after the kill) kill->thawed=${k2t}s restart->thawed=${r2t}s held=${held:--}ms/frozen=${frozen_ms:--}ms(guest) thawed-by=$by label=$label verify=$verdict cli_rc=$cli_rc${cli_err:+ cli_error=\"$cli_err\"} $res"
done

stop_daemon
count() { printf '%s\n' "$@" | sort | uniq -c | awk '{ printf "%s%s=%d", (NR > 1 ? " " : ""), $2, $1 }'; }
say "summary: seed $SEED, $ROUNDS rounds ($(count "${KINDS[@]}")) under $(cat "$QB_VM_RUN/accel"), lease $LEASE_MS ms, total $(e2e_secs "$t_start" "$(e2e_now)") s"
say "  stages at the kill: $(count "${STAGES[@]}")"
read -r m x < <(stats < "$E2E/kill_thaw.daemon")
say "  daemon killed, guest frozen after it: $(wc -l < "$E2E/kill_thaw.daemon") rounds; kill->thawed median $m s, max $x s"
read -r m x < <(stats < "$E2E/restart_thaw")
say "  restart->thawed (the restarted daemon's Thawed reply): median $m s, max $x s over $(wc -l < "$E2E/restart_thaw") rounds"
read -r m x < <(stats < "$E2E/probe_thaw")
say "  restart rounds, cross-check: end of the longest write stall (probe; a TCG scheduling stall can outlast a short freeze): median $m s, max $x s after the kill"
read -r m x < <(stats < "$E2E/kill_thaw.agent")
say "  agent killed, guest frozen after it: $(wc -l < "$E2E/kill_thaw.agent") rounds; kill->thawed median $m s, max $x s"
read -r m x < <(stats < "$E2E/held")
say "  freeze window on the guest's clock, freeze request (hooks first) to thawed: median $m ms, max $x ms"
read -r m x < <(stats < "$E2E/frozen")
say "  file systems frozen (FIFREEZE done to thawed, guest clock): median $m ms, max $x ms"
say "  thawed by: $(count "${THAWED_BY[@]}")"
say "  labels (state/consistency): $(count "${LABELS[@]}")"
if [ "$FAILS" -gt 0 ]; then
    say "  failures: $FAILS"
    printf 'campaign:    %s\n' "${FAILED[@]}"
    echo "--- quiesced log (tail) ---"; tail -30 "$E2E/quiesced.log" || true
    echo "--- guest console (tail) ---"; tr -d '\r' < "$QB_VM_RUN/serial.log" | tail -30 || true
    exit 1
fi
say "  failures: 0"
say "PASS"
