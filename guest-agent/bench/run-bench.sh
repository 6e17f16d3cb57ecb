#!/bin/sh
# Measures freeze+thaw latency for 1 and 5 loop-mounted ext4 file systems (median of 50) and the
# thaw guard's lease accuracy, on test images in a mktemp dir (never the machine's own file
# systems). Needs root. Usage: run-bench.sh BUILD_DIR
set -eu
build=${1:?build dir}
bench="$build/guest-agent/quiesce-agent-bench"
dir=$(mktemp -d /tmp/qb-agent-bench.XXXXXX)
mounts=""
cleanup() {
  for m in $mounts; do fsfreeze --unfreeze "$m" 2>/dev/null || true; umount "$m" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
for i in 1 2 3 4 5; do
  truncate -s 64M "$dir/fs$i.img"
  # No lazy inode-table init: its background writes would be flushed by every freeze.
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dir/fs$i.img" >/dev/null
  mkdir "$dir/fs$i"
  mount -o loop "$dir/fs$i.img" "$dir/fs$i"
  mounts="$mounts $dir/fs$i"
  # Some data in the page cache so a freeze has something to flush.
  dd if=/dev/urandom of="$dir/fs$i/data" bs=1M count=4 status=none
done
sync  # start from clean file systems: the medians are back-to-back freezes of idle fs
"$bench" --mounts "$dir/fs1" --rounds 50
"$bench" --mounts "$dir/fs1,$dir/fs2,$dir/fs3,$dir/fs4,$dir/fs5" --rounds 50
"$bench" --mounts "$dir/fs1" --rounds 1 --lease-ms 1000 --lease-rounds 10
