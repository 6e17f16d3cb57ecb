# Sourced by build.sh / ci.sh / a developer shell: a Wine prefix with one persistent wineserver
# whose background services do not hold the caller's pipes open (they would keep ctest's output
# pipe open and each test would wait for them).
#
#   . packaging/windows/wine-session.sh [CACHE_DIR]     then run ctest; qb_wine_stop when done.
# The caller owns the server: qb_wine_stop ends it (wineserver -k acts on this prefix only).
qb_wine_cache=${1:-${QB_WIN_CACHE:-/var/tmp/qb-win}}
export WINEPREFIX=$qb_wine_cache/wineprefix
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="  # no Mono / Gecko install dialogs
mkdir -p "$qb_wine_cache"
qb_wine_start() {
  local t0
  t0=$(date +%s.%N)
  wineboot -i </dev/null >/dev/null 2>&1
  wineserver -w
  wineserver -p </dev/null >/dev/null 2>&1
  wine cmd /c exit </dev/null >/dev/null 2>&1
  awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "wine-session: prefix %s ready in %.1fs\n", ENVIRON["WINEPREFIX"], e - s }'
}
qb_wine_stop() {
  wineserver -k >/dev/null 2>&1 || true
}
