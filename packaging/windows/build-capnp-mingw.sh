#!/bin/bash
# Builds the Cap'n Proto runtime (kj + capnp, lite mode, static) for x86_64 mingw-w64 from
# Debian's own source package, so the Windows agent links the same version as the host's
# `capnp` schema compiler (Debian 12: 0.9.2).
#
#   packaging/windows/build-capnp-mingw.sh [CACHE_DIR]     (default /var/tmp/qb-win)
#
# Result: CACHE_DIR/capnp/{include,lib}. Cached: a stamp holds the hash of this script, the
# patches and the toolchain file; a rerun with the same inputs does nothing.
# The system's apt configuration is left alone: the deb-src entry for the configured mirror
# lives in a private apt state under CACHE_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${1:-/var/tmp/qb-win}
prefix=$cache/capnp
toolchain=$root/cmake/toolchain-mingw64.cmake
stamp_file=$prefix/.qb-stamp

inputs_hash=$(cat "$0" "$here"/capnp-patches/*.patch "$toolchain" | sha256sum | cut -c1-16)
version=$(dpkg-query -W -f='${Version}' capnproto 2>/dev/null || true)
if [ -z "$version" ]; then
  echo "build-capnp-mingw: the host capnproto package is not installed" >&2
  exit 1
fi
want="$version $inputs_hash"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ]; then
  echo "build-capnp-mingw: cached ($want) in $prefix"
  exit 0
fi

start=$(date +%s.%N)
mkdir -p "$cache"
work=$(mktemp -d "$cache/capnp-work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Private apt state with one deb-src line for the mirror the system already uses.
mirror=$( (cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true) |
  sed -nE 's;^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)(https?://[^[:space:]]+).*;\3;p' |
  grep -v security | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb-src $mirror $codename main" >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root")
apt-get -q "${apt_opts[@]}" update >"$work/apt-update.log" 2>&1 ||
  { cat "$work/apt-update.log"; exit 1; }
(cd "$work" && apt-get -q "${apt_opts[@]}" source "capnproto=$version" >apt-source.log 2>&1) ||
  { cat "$work/apt-source.log"; exit 1; }
src=$(find "$work" -maxdepth 1 -type d -name 'capnproto-*' | head -1)
fetched=$(date +%s.%N)

for p in "$here"/capnp-patches/*.patch; do
  patch -d "$src" -p1 --forward --quiet <"$p"
done

cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DCAPNP_LITE=ON -DEXTERNAL_CAPNP=ON -DBUILD_TESTING=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" >"$work/configure.log" 2>&1 ||
  { tail -30 "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 >"$work/build.log" 2>&1 ||
  { grep -E 'error|FAILED' "$work/build.log" | cut -c1-300 | head -20; exit 1; }
rm -rf "$prefix"
cmake --install "$work/build" >"$work/install.log" 2>&1 || { tail -20 "$work/install.log"; exit 1; }
echo "$want" >"$stamp_file"
end=$(date +%s.%N)
awk -v v="$version" -v p="$prefix" -v s="$start" -v f="$fetched" -v e="$end" 'BEGIN {
  printf "build-capnp-mingw: capnproto %s for mingw in %s (fetch %.1fs, build %.1fs)\n", v, p, f - s, e - f }'
