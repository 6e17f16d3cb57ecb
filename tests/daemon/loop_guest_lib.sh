# Shared setup of the daemon tests that run the REAL quiesce-agent (sourced, not run):
#   host side:  a loop-mounted XFS (reflink=1) in a temp dir holds the LUN file vm1.raw;
#   "guest":    vm1.raw is loop-attached, formatted ext4 and mounted; the agent (unix socket)
#               is given a mount table naming only that mount, so it never freezes a file
#               system of the machine itself; the daemon maps the loop disk to the LUN with
#               `disk` (the loop device has no WWN).
# Root only (loop devices, mounts, FIFREEZE): lg_require exits 77 otherwise. Everything lives
# in one temp dir $T and lg_cleanup (installed as the EXIT trap) tears it down on every path:
# processes it started (by PID), a frozen guest mount, the loop device, the XFS mount.
#
# Sets: T, LUN, LOOP, DISK, PIDS, DAEMON (after lg_start_daemon), AGENT_PID; LUN2, LOOP2,
# DISK2 after lg_add_second_lun.
# Needs (set by the caller): QUIESCED, CTL, AGENT (absolute paths).

lg_require() {  # lg_require TOOL...
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
  for tool in mkfs.xfs mkfs.ext4 losetup jq "$@"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
  done
}

PIDS=()
LOOP=
LOOP2=
PROBE=
lg_cleanup() {
  for p in "${PIDS[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done
  # A test stopped mid-freeze must not leave the mount frozen (writers would hang forever).
  mountpoint -q "$T/guest" && { fsfreeze -u "$T/guest" 2>/dev/null; umount "$T/guest"; }
  [ -n "$PROBE" ] && wait "$PROBE" 2>/dev/null
  [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
  mountpoint -q "$T/guest2" && { fsfreeze -u "$T/guest2" 2>/dev/null; umount "$T/guest2"; }
  [ -n "$LOOP2" ] && losetup -d "$LOOP2" 2>/dev/null
  mountpoint -q "$T/xfs" && umount "$T/xfs"
  wait 2>/dev/null
  rm -rf "$T" "${LG_EXEC_DIR:-}"
}

# lg_exec_wrapper: points $ARRAY at a wrapper of the test array script. The exec backend runs
# only a script no one but root can change (not under /tmp) and gives it none of the daemon's
# variables, so a 0700 wrapper under the build tree hands it $T/array.
lg_exec_wrapper() {
  LG_EXEC_DIR=$(mktemp -d "$PWD/qb-exec-XXXXXX")
  printf '#!/bin/sh\nQB_FAKE_ARRAY_DIR=%s exec %s\n' "$T/array" "$ARRAY" > "$LG_EXEC_DIR/array.sh"
  chmod 0700 "$LG_EXEC_DIR/array.sh"
  ARRAY=$LG_EXEC_DIR/array.sh
}

fail() {
  echo "FAIL: $*"
  for f in daemon.log agent.log; do [ -f "$T/$f" ] && { echo "--- $f"; tail -25 "$T/$f"; }; done
  exit 1
}

wait_for() {  # wait_for SECONDS CONDITION...
  local until=$((SECONDS + $1)); shift
  while ! "$@"; do [ $SECONDS -ge $until ] && return 1; sleep 0.05; done
}

# lg_setup PREFIX: the temp dir, the host XFS with the LUN file, the mounted guest file system
# and the agent's one-line mount table.
lg_setup() {
  T=$(mktemp -d "/tmp/$1-XXXXXX")
  trap lg_cleanup EXIT
  mkdir -p "$T/xfs" "$T/guest" "$T/run" "$T/hooks" "$T/array"
  truncate -s 320M "$T/xfs.img"
  mkfs.xfs -q -m reflink=1 "$T/xfs.img" || fail "mkfs.xfs"
  mount -o loop "$T/xfs.img" "$T/xfs" || { echo "SKIP: cannot loop-mount"; exit 77; }
  mkdir -p "$T/xfs/luns" "$T/xfs/snaps"
  LUN=$T/xfs/luns/vm1.raw
  truncate -s 64M "$LUN"
  mkfs.ext4 -q -F "$LUN" || fail "mkfs.ext4"
  LOOP=$(losetup -f --show "$LUN") || fail "losetup"
  mount "$LOOP" "$T/guest" || fail "mount $LOOP"
  DISK=$(basename "$LOOP")
  awk -v m="$T/guest" '$5 == m' /proc/self/mountinfo > "$T/mountinfo"
  [ "$(wc -l < "$T/mountinfo")" -eq 1 ] || fail "mount table: $(cat "$T/mountinfo")"
}

# lg_add_second_lun: a second guest disk and mount (LUN file vm1b.raw on the host XFS), added
# to the agent's mount table. Start (or restart) the agent after it.
lg_add_second_lun() {
  mkdir -p "$T/guest2"
  LUN2=$T/xfs/luns/vm1b.raw
  truncate -s 64M "$LUN2"
  mkfs.ext4 -q -F "$LUN2" || fail "mkfs.ext4 (second LUN)"
  LOOP2=$(losetup -f --show "$LUN2") || fail "losetup (second LUN)"
  mount "$LOOP2" "$T/guest2" || fail "mount $LOOP2"
  DISK2=$(basename "$LOOP2")
  awk -v m="$T/guest" -v n="$T/guest2" '$5 == m || $5 == n' /proc/self/mountinfo > "$T/mountinfo"
  [ "$(wc -l < "$T/mountinfo")" -eq 2 ] || fail "mount table: $(cat "$T/mountinfo")"
}

# lg_start_agent LEASE_MS: the real agent on $T/agent.sock, freezing only the guest mount.
lg_start_agent() {
  cat > "$T/agent.toml" <<TOML
[freeze]
default_lease_ms = $1
lease_cap_ms = $1
[log]
level = "info"
TOML
  "$AGENT" --config "$T/agent.toml" --unix "$T/agent.sock" --no-virtio-serial --run-dir "$T/run" \
    --hooks-dir "$T/hooks" --mountinfo "$T/mountinfo" --foreground >> "$T/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=($AGENT_PID)
  wait_for 20 test -S "$T/agent.sock" || fail "agent did not start"
}

# lg_start_daemon: quiesced with $T/quiesced.toml (environment passed through, e.g.
# QB_CRASH_POINT), waiting until vm1's agent link is connected.
lg_start_daemon() {
  "$QUIESCED" --config "$T/quiesced.toml" --foreground >> "$T/daemon.log" 2>&1 &
  DAEMON=$!
  PIDS+=($DAEMON)
  lg_connected() {
    kill -0 $DAEMON 2>/dev/null || fail "daemon exited"
    "$CTL" --socket "$T/quiesced.sock" guests --json 2>/dev/null |
      jq -e '.[0].link_state == "connected"' >/dev/null 2>&1
  }
  wait_for 30 lg_connected || fail "daemon did not connect to the agent"
}
