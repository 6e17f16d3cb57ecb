#!/bin/bash
# Daemon benchmarks with the qb-bench-agents TEST DOUBLES (not the real agent: nothing in a
# guest is frozen) and the reflink backend on a loop-mounted XFS (mkfs.xfs -m reflink=1) in a
# temp dir. Needs root (loop mount). Prints:
#   - phase timings of a one-VM job, median of 50 (quiescectl --json phases);
#   - job throughput with 20 guests (20 concurrent single-VM jobs, 5 rounds);
#   - quiesced RSS with 1, 100 and 1000 connected guests.
# Usage: run_bench.sh BUILD_DIR
set -u
B=$(realpath "$1")
Q=$B/host-daemon/daemon/quiesced C=$B/host-daemon/cli/quiescectl A=$B/bench/daemon/qb-bench-agents
T=$(mktemp -d /tmp/qb-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  mountpoint -q "$T/mnt" && umount "$T/mnt"
  rm -rf "$T"
}
trap cleanup EXIT
truncate -s 2G "$T/xfs.img"
mkfs.xfs -q -m reflink=1 "$T/xfs.img"
mkdir -p "$T/mnt" "$T/agents"
mount -o loop "$T/xfs.img" "$T/mnt" || { echo "cannot loop-mount XFS"; exit 1; }

setup() {  # setup N: agents + config for N guests with one 64 MiB LUN each (first 20 filled)
  local n=$1
  {
    echo "[daemon]"
    echo "control_socket = \"$T/q.sock\""
    echo "catalog = \"$T/catalog-$n.db\""
    echo "worker_threads = 4"
    echo "log_level = \"warn\""
    echo "[backends.reflink]"
    echo "snapshot_dir = \"$T/mnt/.qb-snapshots\""
    for i in $(seq 0 $((n - 1))); do
      printf '[[guests]]\nname = "vm%d"\nagent = "unix:%s/agents/vm%d.sock"\n' "$i" "$T" "$i"
      printf 'luns = [ { backend = "reflink", volume = "%s/mnt/lun%d.raw", wwn = "600a0b80%06x" } ]\n' "$T" "$i" "$i"
    done
  } > "$T/q-$n.toml"
  mkdir -p "$T/mnt/.qb-snapshots"
  for i in $(seq 0 $(( (n < 20 ? n : 20) - 1 ))); do
    [ -e "$T/mnt/lun$i.raw" ] || dd if=/dev/urandom of="$T/mnt/lun$i.raw" bs=1M count=64 status=none
  done
  "$A" "$T/agents" "$n" > "$T/agents.log" 2>&1 &
  AGENTS=$!; PIDS+=($AGENTS)
  until grep -q ready "$T/agents.log"; do sleep 0.05; done
  "$Q" --config "$T/q-$n.toml" > "$T/daemon-$n.log" 2>&1 &
  DAEMON=$!; PIDS+=($DAEMON)
  local start=$SECONDS
  until [ "$("$C" --socket "$T/q.sock" guests --json 2>/dev/null | jq 'if type == "array" then map(select(.link_state == "connected")) | length else 0 end' 2>/dev/null)" = "$n" ]; do
    [ $((SECONDS - start)) -gt 300 ] && { echo "guests did not all connect"; exit 1; }
    sleep 0.2
  done
}
teardown() {
  kill -TERM $DAEMON; wait $DAEMON
  kill -TERM $AGENTS; wait $AGENTS
}
rss_kib() { awk '/VmRSS/ {print $2}' /proc/$DAEMON/status; }

echo "== phase timings, one VM, reflink on loop XFS, TestAgent double, median of 50"
setup 1
for i in $(seq 1 50); do
  "$C" --socket "$T/q.sock" snapshot vm0 --json >> "$T/phases.jsonl" || { echo "job $i failed"; tail -1 "$T/phases.jsonl"; }
done
python3 - "$T/phases.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = [r for r in rows if r["consistency"] == "application-consistent"]
print(f"jobs: {len(rows)}, application-consistent: {len(ok)}")
phases = {}
for r in ok:
    for p in r["phases"]:
        phases.setdefault(p["phase"], []).append(p["duration_us"])
    phases.setdefault("freeze window (freeze sent -> thaw sent)", []).append(r["freeze_window_us"])
    phases.setdefault("total", []).append(sum(p["duration_us"] for p in r["phases"]))
for name, v in phases.items():
    print(f"  {name:45s} median {statistics.median(v)/1000:8.3f} ms   p90 {sorted(v)[int(len(v)*0.9)-1]/1000:8.3f} ms")
PY
echo "  daemon RSS after 50 jobs: $(rss_kib) KiB"
teardown

echo "== throughput, 20 guests, 20 concurrent single-VM jobs x 5 rounds"
setup 20
start=$(date +%s.%N)
fails=0
for round in 1 2 3 4 5; do
  for i in $(seq 0 19); do "$C" --socket "$T/q.sock" snapshot "vm$i" > /dev/null & done
  for job in $(jobs -p); do
    [ "$job" = "$DAEMON" ] || [ "$job" = "$AGENTS" ] || wait "$job" || fails=$((fails + 1))
  done
done
end=$(date +%s.%N)
python3 -c "d=$end-$start; print(f'  100 jobs in {d:.2f} s: {100/d:.1f} jobs/s, failed: $fails')"
teardown

for n in 1 100 1000; do
  setup $n
  sleep 1
  echo "== quiesced RSS with $n connected guests: $(rss_kib) KiB (fds: $(ls /proc/$DAEMON/fd | wc -l))"
  teardown
done
