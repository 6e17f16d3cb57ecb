#!/bin/bash
# build-bench-initramfs.sh AGENT RECORDWRITER OUT: the rig's initramfs (tests/vm/build-initramfs.sh,
# with Debian's qemu-ga) plus a second cpio archive appended to it (the kernel unpacks both; a
# later file replaces an earlier one) that puts qb-bench-guest in front of the rig's responder and
# adds qb-floor (compiled here, static, from qb_floor.cc).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RIG=$HERE/../../tests/vm
[ $# -eq 3 ] || { echo "usage: $0 AGENT RECORDWRITER OUT" >&2; exit 2; }
AGENT=$1 WRITER=$2 OUT=$3
[ -x /usr/sbin/qemu-ga ] || { echo "build-bench-initramfs: no /usr/sbin/qemu-ga (apt-get install qemu-guest-agent)" >&2; exit 1; }
QB_VM_QGA=1 "$RIG/build-initramfs.sh" "$AGENT" "$OUT" "$WRITER" >&2
ST=$(mktemp -d "${TMPDIR:-/tmp}/qb-bench-overlay.XXXXXX")
trap 'rm -rf "$ST"' EXIT
mkdir -p "$ST/bin"
install -m 0755 "$RIG/qb-responder" "$ST/bin/qb-responder.orig"
install -m 0755 "$HERE/qb-bench-guest" "$ST/bin/qb-responder"
${CXX:-g++} -std=c++20 -O2 -Wall -Wextra -Werror -static -o "$ST/bin/qb-floor" "$HERE/qb_floor.cc"
strip "$ST/bin/qb-floor"
(cd "$ST" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -6 >> "$OUT"
echo "build-bench-initramfs: $OUT with the bench overlay" >&2
