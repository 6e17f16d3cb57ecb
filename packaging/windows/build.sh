#!/bin/bash
# The whole Windows cross build: Cap'n Proto for mingw (cached), configure, build the agent,
# its provider DLL and the Wine tests, stage stripped binaries, build the MSI with wixl.
#
#   packaging/windows/build.sh            (run packaging/install-build-deps first)
# Environment: QB_WIN_CACHE (default /var/tmp/qb-win: toolchain cache, never in git),
#              QB_WIN_BUILD (default <repo>/build-win), QB_WIN_JOBS (default 2).
# Output: $QB_WIN_BUILD/quiesce-agent-<version>-x64.msi
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${QB_WIN_CACHE:-/var/tmp/qb-win}
build=${QB_WIN_BUILD:-$root/build-win}
jobs=${QB_WIN_JOBS:-2}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

for tool in x86_64-w64-mingw32-g++-posix capnp wixl cmake ninja; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool missing: run packaging/install-build-deps" >&2; exit 1; }
done

t0=$(now)
"$here/build-capnp-mingw.sh" "$cache"
t1=$(now)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-mingw64.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQB_WIN_DEPS="$cache" "${launcher[@]}" >"$build.configure.log" 2>&1 ||
  { tail -30 "$build.configure.log"; exit 1; }
if ! cmake --build "$build" -j"$jobs" >"$build.build.log" 2>&1; then
  grep -E 'error|FAILED' "$build.build.log" | cut -c1-300 | head -20
  exit 1
fi
t2=$(now)

version=$(sed -nE 's/^project\(quiesce-bridge VERSION ([0-9.]+).*/\1/p' "$root/CMakeLists.txt")
stage=$build/stage
rm -rf "$stage" && mkdir -p "$stage"
cp "$build/guest-agent/windows/quiesce-agent.exe" "$build/guest-agent/windows/vss/qb-vss-provider.dll" "$stage/"
x86_64-w64-mingw32-strip "$stage"/*
msi=$build/quiesce-agent-$version-x64.msi
# wixl resolves Source= relative to the working directory (absolute paths are refused).
(cd "$build" && wixl -a x64 -D Version="$version" -D StageDir=stage -o "$msi" \
  "$here/quiesce-agent.wxs" 2>&1 | grep -v -E '^$|GLib' || true)
[ -f "$msi" ] || { echo "build.sh: wixl produced no MSI" >&2; exit 1; }
t3=$(now)

echo "build.sh: capnp $(secs "$t0" "$t1")s, agent build $(secs "$t1" "$t2")s, MSI $(secs "$t2" "$t3")s"
ls -l "$stage"/* "$msi" | awk '{ print "build.sh:", $5, $NF }'
