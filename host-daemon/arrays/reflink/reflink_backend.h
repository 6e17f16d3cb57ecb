// The `reflink` backend: LUNs are raw image files on a file system that shares extents
// (XFS with reflink=1, btrfs); a snapshot is an FICLONE of the LUN file into a snapshot
// directory, copy-on-write and independent of the file's size.
//
// Group semantics: FICLONE is atomic per file, NOT across files. A group of LUNs is cloned one
// after another; the guest's freeze is what makes the set consistent (nothing writes while the
// clones run). Without a freeze the files of a group are each crash-consistent, at slightly
// different instants. capabilities().atomic_group is therefore false.
//
// Cost: FICLONE time grows with the number of extent records of the file, not its size
// (measured here: ~0.5 ms at 100 records, ~5 ms at 1k, ~0.4 s at 10k, ~4.5 s at 100k). Prepare
// counts the records with FS_IOC_FIEMAP and refuses a group whose projected cut exceeds the
// budget. Every snapshot fragments the source further, so the count grows over time.
//
// Deadline: Snapshot checks the deadline before each file. One FICLONE in flight cannot be
// interrupted (the kernel call runs to completion), so a call can overrun its deadline by at
// most one file's clone time, which Prepare projected.
//
// Layout: the snapshot of LUN /d/lun.raw for job K is <snapshot_dir>/qb-K-lun.raw, where
// snapshot_dir defaults to /d/.qb-snapshots (same file system as the LUN: FICLONE cannot cross
// file systems). With one configured snapshot_dir shared by several LUN directories, two LUNs
// with the same basename would collide; Snapshot refuses that with kConflict rather than
// overwrite. A snapshot (and an exposed clone) is cloned into an unnamed O_TMPFILE, fsync'ed,
// then linked to its name: a crash at any step leaves either the whole file under its name or
// no name at all, never a partial file to mistake for a snapshot. Snapshot files are created
// mode 0600 (they hold a whole disk's data); Resolve() creates a missing snapshot directory
// (mode 0700) and probes it with a one-block clone into an unnamed O_TMPFILE, so an
// unsupported file system (one without O_TMPFILE included) is found before any freeze.
// Each clone and the directory are fsync'ed inside Snapshot(): the names must survive a host
// crash for FindByKey() to work (reflink_bench's figures include them).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "host-daemon/arrays/backend.h"

namespace qb::arrays::reflink {

struct ReflinkOptions {
  std::string name = "reflink";  // the backend's registered name
  std::string snapshot_dir;      // absolute; empty: "<dir of each LUN>/.qb-snapshots"
};

// Builds the backend. Never fails: problems with the directory show at Resolve().
std::unique_ptr<ArrayBackend> MakeReflinkBackend(const ReflinkOptions& options);

// Extent records of `path` as FS_IOC_FIEMAP reports them (walking every record, not just the
// first batch). kIoError with errno text; kUnsupported when the file system has no FIEMAP.
Result<uint64_t> CountExtentRecords(const std::string& path);

// Projected FICLONE time of one file with `extent_records` records: interpolated (piecewise
// linear) between the figures measured on this machine's XFS, extrapolated linearly beyond.
std::chrono::microseconds ProjectCloneTime(uint64_t extent_records);

}  // namespace qb::arrays::reflink
