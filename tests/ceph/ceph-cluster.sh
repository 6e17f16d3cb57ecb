#!/usr/bin/env bash
# A throw-away single-node Ceph cluster for the rbd backend's tests (Debian 12, ceph 16 pacific):
# one mon, one memstore OSD, NO mgr, cephx, every socket bound to 127.0.0.1, all state in DIR.
#
#   ceph-cluster.sh start DIR   # bootstrap; pool "rbd" initialised; writes DIR/ceph.conf and
#                               # DIR/keyring (client.admin); ~1-2 s
#   ceph-cluster.sh stop DIR    # stops the cluster's daemons by PID (SIGCONT, SIGTERM, SIGKILL
#                               # after a grace period) and removes DIR; a no-op for a missing DIR
#   ceph-cluster.sh env DIR     # prints CEPH_CONF=... and QB_CEPH_KEYRING=... lines
#   ceph-cluster.sh osd-pause DIR | osd-resume DIR | osd-kill DIR
#                               # fault injection: SIGSTOP / SIGCONT / SIGKILL the OSD
#
# Made for ctest fixtures (FIXTURES_SETUP runs start, FIXTURES_CLEANUP runs stop), so a test run
# gets one cluster and always tears it down. Several clusters can run at once (parallel ctest,
# other engineers): each picks a free mon port pair on 127.0.0.1 and retries on a bind race.
# DIR is only ever removed when it carries this script's marker file, so a typo cannot wipe an
# unrelated directory. Never touches /etc/ceph or /var/lib/ceph; kills only the daemons whose
# PID files are in DIR and whose command line names DIR's ceph.conf.
#
# Env: QB_CEPH_MEMSTORE_BYTES (default 1 GiB), QB_CEPH_CMD_TIMEOUT (s, default 60),
#      QB_CEPH_PAXOS_PROPOSE_INTERVAL (default 0.01: Ceph's 1.0 makes every snapshot take ~1 s).
set -euo pipefail

readonly MARKER=.qb-ceph-cluster
readonly STORE_BYTES=${QB_CEPH_MEMSTORE_BYTES:-1073741824}
readonly CMD_TIMEOUT=${QB_CEPH_CMD_TIMEOUT:-60}
readonly PAXOS_INTERVAL=${QB_CEPH_PAXOS_PROPOSE_INTERVAL:-0.01}
T0=$(date +%s.%N)

usage() {
  echo "usage: $0 start|stop|env|osd-pause|osd-resume|osd-kill DIR" >&2
  exit 2
}

log() { awk -v a="$(date +%s.%N)" -v b="$T0" -v m="$*" 'BEGIN{printf "[%6.2fs] %s\n", a-b, m}'; }

die() {
  echo "ceph-cluster: ERROR: $*" >&2
  tail -n 20 "$DIR"/data/log/*.log >&2 2>/dev/null || true
  exit 1
}

# Running and not a zombie (daemons re-parent to PID 1, which may reap them late).
alive() { [ -e /proc/"$1" ] && [ "$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null)" != Z ]; }

# PID of daemon $1 (mon.a / osd.0) if it is ours: the PID file is in DIR, the process is a ceph
# daemon and its command line names our ceph.conf (guards against stale, reused PIDs).
our_pid() {
  local f=$DIR/data/run/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  case "$(cat /proc/"$pid"/comm 2>/dev/null)" in ceph-osd | ceph-mon) ;; *) return 1 ;; esac
  tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -qF -- "$CONF" || return 1
  echo "$pid"
}

c() { timeout "$CMD_TIMEOUT" ceph -c "$CONF" "$@"; }

stop_daemon() {
  local pid
  pid=$(our_pid "$1") || return 0
  kill -s CONT "$pid" 2>/dev/null || true # a paused OSD cannot act on SIGTERM
  kill -s TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || return 0
    sleep 0.05
  done
  kill -s KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || return 0
    sleep 0.05
  done
  echo "ceph-cluster: $1 (pid $pid) did not die" >&2
}

stop() {
  [ -e "$DIR" ] || return 0
  [ -f "$DIR/$MARKER" ] || die "$DIR exists but is not a cluster made by $0; not touching it"
  stop_daemon osd.0
  stop_daemon mon.a
  rm -rf "$DIR"
}

port_free() { ! ss -Htln "( sport = :$1 or sport = :$(($1 + 1)) )" | grep -q .; }

# A free port pair (v2, v1) starting from a point derived from DIR, so parallel clusters start
# apart; the mon's bind is the final word (start() retries on a race).
pick_port() {
  local base p
  base=$((20000 + $(echo -n "$DIR" | cksum | cut -d' ' -f1) % 20000))
  base=$((base - base % 2))
  for i in $(seq 0 2 400); do
    p=$((base + i))
    if port_free "$p"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

write_conf() {
  local fsid=$1 monaddr=$2 d=$DIR/data
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = $monaddr
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = $d/run
crash dir = $d/crash
log file = $d/log/\$name.log
admin socket = $d/run/\$name.asok
pid file = $d/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mon osd full ratio = .99
mon osd nearfull ratio = .99
mon osd backfillfull ratio = .99
osd failsafe full ratio = .99
client mount timeout = 30
[mon]
mon data = $d/mon.\$id
mon cluster log file = $d/log/cluster.log
paxos propose interval = $PAXOS_INTERVAL
paxos min wait = 0.001
[osd]
osd data = $d/osd\$id
osd objectstore = memstore
memstore device bytes = $STORE_BYTES
osd memory target = 939524096
[client]
keyring = $KEYRING
log file = $d/log/client.log
admin socket =
EOF
}

# Starts the mon on a free port; retries when another cluster grabbed the port meanwhile.
start_mon() {
  local fsid port monaddr
  fsid=$(uuidgen)
  for attempt in 1 2 3 4 5; do
    port=$(pick_port) || die "no free port pair on 127.0.0.1"
    monaddr="[v2:127.0.0.1:$port,v1:127.0.0.1:$((port + 1))]"
    rm -rf "$DIR/data/mon.a"
    write_conf "$fsid" "$monaddr"
    monmaptool --create --clobber --fsid "$fsid" --addv a "$monaddr" "$DIR/data/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/data/monmap" --keyring "$DIR/data/mon.keyring"
    ceph-mon -c "$CONF" -i a 2>>"$DIR/data/log/mon.a.stderr" # daemonizes
    for _ in $(seq 1 40); do
      if ss -Htln "( sport = :$port )" | grep -q . && our_pid mon.a >/dev/null; then
        echo "$port" >"$DIR/port"
        return 0
      fi
      our_pid mon.a >/dev/null || break # died: most likely the port was taken
      sleep 0.05
    done
    stop_daemon mon.a
    log "mon could not bind port $port (attempt $attempt), retrying"
  done
  die "mon did not start"
}

start() {
  if [ -e "$DIR" ]; then
    if [ -f "$DIR/$MARKER" ]; then
      stop # left over from an interrupted run
    elif [ -n "$(ls -A "$DIR")" ]; then
      die "$DIR exists and is not empty"
    fi
  fi
  mkdir -p "$DIR"
  : >"$DIR/$MARKER"
  mkdir -p "$DIR"/data/{osd0,run,log,crash}
  chmod 700 "$DIR"

  ceph-authtool --create-keyring "$DIR/data/mon.keyring" --gen-key -n mon. \
    --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$KEYRING" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  chmod 600 "$KEYRING"
  ceph-authtool "$DIR/data/mon.keyring" --import-keyring "$KEYRING" >/dev/null

  start_mon
  c quorum_status >/dev/null || die "mon did not form quorum"
  c health mute MGR_DOWN --sticky >/dev/null 2>&1 || true # no mgr on purpose
  log "mon up on 127.0.0.1:$(cat "$DIR/port")"

  local uuid secret id
  uuid=$(uuidgen)
  secret=$(ceph-authtool --gen-print-key)
  echo "{\"cephx_secret\": \"$secret\"}" >"$DIR/data/osd0/new.json"
  id=$(c osd new "$uuid" -i "$DIR/data/osd0/new.json")
  rm -f "$DIR/data/osd0/new.json"
  [ "$id" = 0 ] || die "unexpected osd id '$id'"
  printf '[osd.0]\n\tkey = %s\n' "$secret" >"$DIR/data/osd0/keyring"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >"$DIR/data/log/osd-mkfs.log" 2>&1 ||
    die "osd mkfs failed"
  ceph-osd -c "$CONF" -i 0 2>>"$DIR/data/log/osd.0.stderr" # daemonizes
  local up=""
  for _ in $(seq 1 $((CMD_TIMEOUT * 10))); do
    if c osd stat -f json | grep -q '"num_up_osds":1'; then
      up=1
      break
    fi
    sleep 0.1
  done
  [ -n "$up" ] || die "osd.0 did not come up"
  log "osd.0 up (memstore)"

  c osd pool create rbd 8 8 >/dev/null 2>&1 || die "pool create"
  timeout "$CMD_TIMEOUT" rbd -c "$CONF" pool init rbd || die "rbd pool init" # waits for PGs
  log "pool rbd ready; CEPH_CONF=$CONF"
}

signal_osd() {
  local pid
  pid=$(our_pid osd.0) || die "no running osd.0 in $DIR"
  kill -s "$1" "$pid"
}

[ $# -eq 2 ] || usage
case "$2" in
  /*) DIR=$2 ;;
  *) DIR=$(pwd)/$2 ;;
esac
DIR=${DIR%/}
readonly DIR CONF=$DIR/ceph.conf KEYRING=$DIR/keyring

case "$1" in
  start)
    start_ok=""
    trap '[ -n "$start_ok" ] || stop' EXIT # a failed start leaves nothing running
    start
    start_ok=1
    ;;
  stop) stop ;;
  env) printf 'CEPH_CONF=%s\nQB_CEPH_KEYRING=%s\n' "$CONF" "$KEYRING" ;;
  osd-pause) signal_osd STOP ;;
  osd-resume) signal_osd CONT ;;
  osd-kill) signal_osd KILL ;;
  *) usage ;;
esac
