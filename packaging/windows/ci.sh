#!/bin/bash
# Windows CI, everything in one go (.ci/run may call it): Debian packages, mingw toolchain +
# Cap'n Proto (cached in QB_WIN_CACHE), cross build, Wine tests, MSI build and an
# install / service start / stop / uninstall round under Wine.
#
#   packaging/windows/ci.sh
# Environment as build.sh (QB_WIN_CACHE, QB_WIN_BUILD, QB_WIN_JOBS).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export QB_WIN_CACHE=${QB_WIN_CACHE:-/var/tmp/qb-win}
build=${QB_WIN_BUILD:-$root/build-win}
export QB_WIN_BUILD=$build
start=$(date +%s.%N)
stamp() { awk -v s="$start" -v e="$(date +%s.%N)" -v m="$*" 'BEGIN { printf "=== [%.1fs] %s\n", e - s, m }'; }

stamp "packages"
"$root/packaging/install-build-deps"

stamp "cross build"
"$here/build.sh"

stamp "Wine session"
# shellcheck source=wine-session.sh
. "$here/wine-session.sh" "$QB_WIN_CACHE"
trap qb_wine_stop EXIT
qb_wine_start

stamp "Wine tests (label windows)"
(cd "$build" && ctest -L windows -j2 --output-on-failure --timeout 120) |
  grep -E 'tests passed|tests failed|Total Test time|\*\*\*'

stamp "Wine tests (common, protocol)"
# Under Wine: no AF_UNIX socketpair (the MessageStream / AgentClient tests use one; the named
# pipe tests above cover the same streams on Windows handles).
(cd "$build" && ctest -LE windows -j2 --output-on-failure --timeout 120 \
  -E '^(MessageStream|AgentClient)\.') |
  grep -E 'tests passed|tests failed|Total Test time|\*\*\*'

stamp "MSI install / service / uninstall under Wine"
msi=$(ls "$build"/quiesce-agent-*-x64.msi)
winmsi="Z:${msi//\//\\}"
installed="$WINEPREFIX/drive_c/Program Files/quiesce-bridge"
log="$WINEPREFIX/drive_c/ProgramData/quiesce-bridge/agent.log"
service_state() { wine sc query quiesce-agent </dev/null 2>/dev/null | tr -d '\r' | awk '/STATE/ { print $4 }'; }
wait_state() {
  for _ in $(seq 1 100); do
    [ "$(service_state)" = "$1" ] && return 0
    sleep 0.1
  done
  echo "service never reached $1 (now: $(service_state))"
  return 1
}
wine msiexec /x "$winmsi" /qn </dev/null >/dev/null 2>&1 || true  # leftovers of an earlier run
rm -f "$log"
wine msiexec /i "$winmsi" /qn </dev/null >/dev/null 2>&1
[ -f "$installed/quiesce-agent.exe" ] && [ -f "$installed/qb-vss-provider.dll" ] ||
  { echo "MSI did not install the files"; exit 1; }
wait_state RUNNING
for _ in $(seq 1 50); do grep -q "quiesce-agent serving" "$log" 2>/dev/null && break; sleep 0.1; done
grep -q "quiesce-agent serving" "$log" || { echo "service never served"; cat "$log"; exit 1; }
wine sc stop quiesce-agent </dev/null >/dev/null 2>&1
wait_state STOPPED
grep -q "quiesce-agent stopped" "$log" || { echo "service did not stop cleanly"; cat "$log"; exit 1; }
wine sc start quiesce-agent </dev/null >/dev/null 2>&1
wait_state RUNNING
wine msiexec /x "$winmsi" /qn </dev/null >/dev/null 2>&1
[ ! -e "$installed/quiesce-agent.exe" ] || { echo "uninstall left the exe behind"; exit 1; }
[ -z "$(service_state)" ] || { echo "uninstall left the service behind"; exit 1; }
echo "MSI: installed, service ran, stopped, restarted, uninstalled"

stamp "Windows CI passed"
