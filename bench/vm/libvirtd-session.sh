#!/bin/bash
# libvirtd-session.sh: a private, unprivileged libvirtd (session mode) for the benchmark and the
# libvirt VM test. Debian 12 has no virtqemud: the monolithic libvirtd runs here without systemd.
#
#   libvirtd-session.sh start      start libvirtd in $QB_LV_DIR as $QB_LV_USER; wait for its socket
#   libvirtd-session.sh stop       destroy every domain it runs, stop it (by PID), keep the dir
#   libvirtd-session.sh uri        prints the connection URI (qemu:///session?socket=...)
#   libvirtd-session.sh virsh ARGS virsh against it, run as $QB_LV_USER
#
# Environment:
#   QB_LV_DIR   the instance's directory (required; created; owned by QB_LV_USER so that QEMU,
#               which runs as that user, can write its sockets and logs there)
#   QB_LV_USER  unprivileged user to run libvirtd and QEMU as (default: nobody)
#
# The daemon's XDG directories (config c, runtime r, cache k, data d) live in $QB_LV_DIR/x;
# qemu.conf sets stdio_handler = "file" (no virtlogd). Only the libvirtd this script started is stopped, by PID.
# Needs root (to switch to the user), libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients.
set -euo pipefail
: "${QB_LV_DIR:?set QB_LV_DIR to the instance directory}"
LV_USER=${QB_LV_USER:-nobody}
DIR=$QB_LV_DIR
X=$DIR/x  # short: libvirt puts unix sockets below it (108-byte limit)
SOCK=$X/r/libvirt/libvirt-sock
URI="qemu:///session?socket=$SOCK"

die() { echo "libvirtd-session: $*" >&2; exit 1; }

as_user() { # as_user CMD...: CMD as $LV_USER with the instance's XDG environment
    setpriv --reuid="$LV_USER" --regid="$(id -g "$LV_USER")" --clear-groups \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$X/home" USER="$LV_USER" \
        XDG_CONFIG_HOME="$X/c" XDG_RUNTIME_DIR="$X/r" XDG_CACHE_HOME="$X/k" \
        XDG_DATA_HOME="$X/d" LIBVIRT_DEFAULT_URI="$URI" "$@"
}

alive() { [ -f "$DIR/libvirtd.pid" ] && kill -0 "$(cat "$DIR/libvirtd.pid")" 2>/dev/null; }

start() {
    [ "$(id -u)" = 0 ] || die "needs root (runs libvirtd as $LV_USER)"
    command -v libvirtd >/dev/null || die "no libvirtd (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)"
    command -v virsh >/dev/null || die "no virsh (apt-get install libvirt-clients)"
    id "$LV_USER" >/dev/null 2>&1 || die "no user $LV_USER"
    alive && die "already running (pid $(cat "$DIR/libvirtd.pid"))"
    mkdir -p "$X"/{c/libvirt,r,k,d,home}
    chmod 0700 "$X/r"
    cat > "$X/c/libvirt/qemu.conf" <<'EOF'
# written by libvirtd-session.sh
stdio_handler = "file"
EOF
    cat > "$X/c/libvirt/libvirtd.conf" <<'EOF'
# written by libvirtd-session.sh
log_outputs = "3:stderr"
EOF
    chown -R "$LV_USER:$(id -g "$LV_USER")" "$DIR"
    chmod 0755 "$DIR"
    # setsid: a terminal signal to the caller does not reach it; stop() ends it by PID.
    as_user setsid libvirtd --verbose </dev/null >"$DIR/libvirtd.log" 2>&1 &
    echo $! > "$DIR/libvirtd.pid"
    for _ in $(seq 300); do
        [ -S "$SOCK" ] && as_user virsh -q -c "$URI" version >/dev/null 2>&1 && break
        alive || { cat "$DIR/libvirtd.log" >&2; die "libvirtd exited"; }
        sleep 0.1
    done
    [ -S "$SOCK" ] || { cat "$DIR/libvirtd.log" >&2; die "no libvirtd socket within 30 s"; }
    echo "libvirtd-session: libvirtd $(libvirtd --version | awk '{print $NF}') as $LV_USER, pid $(cat "$DIR/libvirtd.pid"), uri $URI" >&2
}

stop() {
    [ -d "$DIR" ] || return 0
    if alive; then
        local d
        for d in $(as_user virsh -q -c "$URI" list --name 2>/dev/null); do
            as_user virsh -q -c "$URI" destroy "$d" >/dev/null 2>&1 || true
        done
        local pid; pid=$(cat "$DIR/libvirtd.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    # QEMU processes outlive libvirtd: end any left (started by this instance: their pid files)
    local f qpid
    for f in "$X"/r/libvirt/qemu/run/*.pid; do
        [ -f "$f" ] || continue
        qpid=$(cat "$f"); [ -n "$qpid" ] || continue
        kill "$qpid" 2>/dev/null && sleep 0.5 && kill -9 "$qpid" 2>/dev/null || true
    done
    rm -f "$DIR/libvirtd.pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    uri) echo "$URI" ;;
    virsh) shift; as_user virsh -c "$URI" "$@" ;;
    *) echo "usage: $0 start|stop|uri|virsh ARGS" >&2; exit 2 ;;
esac
