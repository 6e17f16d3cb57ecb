#include "host-daemon/arrays/reflink/reflink_backend.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/crash_point.h"
#include "common/unique_fd.h"

namespace qb::arrays::reflink {
namespace {

namespace fs = std::filesystem;
using std::chrono::microseconds;
using std::chrono::steady_clock;

constexpr std::string_view kDefaultSnapshotSubdir = ".qb-snapshots";

// FICLONE time measured on this machine's loop-mounted XFS (reference/README.md), as
// (extent records, microseconds). Not time limits: projections of a cost.
constexpr std::array<std::pair<uint64_t, int64_t>, 5> kMeasuredCloneTimes = {{
    {0, 200},
    {100, 500},
    {1'000, 5'000},
    {10'000, 400'000},
    {100'000, 4'500'000},
}};

// Projections above this share of the budget are reported as warnings.
constexpr int kWarnPercentOfBudget = 50;

std::string ErrnoText(int err) { return std::strerror(err); }

Status IoError(const std::string& what, int err) {
  return Error(Code::kIoError, what + ": " + ErrnoText(err));
}

bool IsNoReflinkErrno(int err) {
  return err == EOPNOTSUPP || err == ENOTTY || err == EINVAL || err == EXDEV || err == ENOSYS;
}

Status CloneError(const std::string& what, int err) {
  if (IsNoReflinkErrno(err)) {
    return Error(Code::kUnsupported, what + ": the file system cannot share extents (" +
                                         ErrnoText(err) +
                                         "); the reflink backend needs XFS with reflink=1 or "
                                         "btrfs, with the snapshot directory on the same file "
                                         "system as the LUN");
  }
  if (err == ENOSPC) return Error(Code::kArrayError, what + ": no space left");
  return IoError(what, err);
}

std::chrono::system_clock::time_point ModificationTime(const struct stat& st) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

class ReflinkBackend final : public ArrayBackend {
 public:
  explicit ReflinkBackend(ReflinkOptions options) : options_(std::move(options)) {}

  const std::string& name() const override { return options_.name; }

  Capabilities capabilities() const override {
    return {.atomic_group = false, .clone = true, .rollback = true};
  }

  Status Resolve(const LunSpec& lun) override {
    if (lun.volume.empty() || lun.volume.front() != '/') {
      return Error(Code::kInvalidArgument,
                   "reflink LUN '" + lun.volume + "' is not an absolute file path");
    }
    struct stat st {};
    if (::stat(lun.volume.c_str(), &st) != 0) {
      if (errno == ENOENT) return Error(Code::kNotFound, "LUN file " + lun.volume + " not found");
      return IoError("stat " + lun.volume, errno);
    }
    if (!S_ISREG(st.st_mode)) {
      return Error(Code::kUnsupported, "reflink LUN " + lun.volume +
                                           " is not a regular file (block devices need an "
                                           "array backend)");
    }
    const std::string dir = SnapshotDir(lun.volume);
    QB_RETURN_IF_ERROR(EnsureDirectory(dir));
    return ProbeReflink(lun.volume, dir, st);
  }

  Result<PrepareReport> Prepare(const std::vector<LunSpec>& luns,
                                std::chrono::milliseconds budget) override {
    PrepareReport report;
    microseconds total{0};
    for (const auto& lun : luns) {
      QB_RETURN_IF_ERROR(Resolve(lun));
      auto records = CountExtentRecords(lun.volume);
      if (!records.ok()) return records.status().WithContext("prepare " + lun.volume);
      const microseconds projected = ProjectCloneTime(*records);
      total += projected;
      report.extent_counts.emplace_back(lun.volume, *records);
      if (projected * 100 > budget * kWarnPercentOfBudget) {
        report.warnings.push_back("LUN " + lun.volume + " has " + std::to_string(*records) +
                                  " extent records; projected clone " +
                                  std::to_string(projected.count() / 1000) + " ms of a " +
                                  std::to_string(budget.count()) + " ms budget");
      }
    }
    report.projected_cut = std::chrono::ceil<std::chrono::milliseconds>(total);
    if (total > budget) {
      std::string detail;
      for (const auto& [volume, records] : report.extent_counts) {
        detail += " " + volume + "=" + std::to_string(records);
      }
      return Error(Code::kTimeout,
                   "projected reflink cut " + std::to_string(report.projected_cut.count()) +
                       " ms exceeds the budget of " + std::to_string(budget.count()) +
                       " ms (extent records:" + detail +
                       "); defragment or copy the LUN file to reduce its extents");
    }
    if (total * 100 > budget * kWarnPercentOfBudget && luns.size() > 1) {
      report.warnings.push_back("group projected cut " +
                                std::to_string(report.projected_cut.count()) + " ms of a " +
                                std::to_string(budget.count()) + " ms budget");
    }
    return report;
  }

  Result<std::vector<SnapshotRecord>> Snapshot(const std::vector<LunSpec>& luns,
                                               const std::string& job_key,
                                               steady_clock::time_point deadline) override {
    QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
    std::vector<SnapshotRecord> created;
    auto undo = [&](Status failure) -> Status {
      std::string leftovers;
      for (const auto& record : created) {
        if (::unlink(record.array_name.c_str()) != 0 && errno != ENOENT) {
          leftovers += " " + record.array_name;
        }
      }
      if (!leftovers.empty()) {
        return Error(Code::kPartial, failure.ToString() + "; could not remove:" + leftovers);
      }
      return failure;
    };
    std::vector<std::string> dirs;
    for (const auto& lun : luns) {
      if (steady_clock::now() >= deadline) {
        return undo(Error(Code::kTimeout, "reflink snapshot deadline passed after " +
                                              std::to_string(created.size()) + " of " +
                                              std::to_string(luns.size()) + " LUNs"));
      }
      const std::string dir = SnapshotDir(lun.volume);
      Status dir_ok = EnsureDirectory(dir);
      if (!dir_ok.ok()) return undo(dir_ok);
      const std::string target = SnapshotPath(lun.volume, job_key);
      auto record = CloneFile(lun.volume, target, "reflink");
      if (!record.ok()) return undo(record.status().WithContext("snapshot " + lun.volume));
      created.push_back(SnapshotRecord{.lun = lun.volume,
                                       .array_name = target,
                                       .job_key = job_key,
                                       .backend = options_.name,
                                       .created = *record});
      if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
    }
    // The snapshot names must survive a host crash: make the directory entries durable.
    for (const auto& dir : dirs) {
      Status synced = SyncDirectory(dir);
      if (!synced.ok()) return undo(synced);
    }
    return created;
  }

  Result<std::vector<SnapshotRecord>> FindByKey(const std::vector<LunSpec>& luns,
                                                const std::string& job_key) override {
    QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
    std::vector<SnapshotRecord> found;
    for (const auto& lun : luns) {
      const std::string path = SnapshotPath(lun.volume, job_key);
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;
        return IoError("stat " + path, errno);
      }
      found.push_back(SnapshotRecord{.lun = lun.volume,
                                     .array_name = path,
                                     .job_key = job_key,
                                     .backend = options_.name,
                                     .created = ModificationTime(st)});
    }
    return found;
  }

  Result<std::vector<SnapshotRecord>> List(const LunSpec& lun) override {
    const std::string dir = SnapshotDir(lun.volume);
    const std::string label = fs::path(lun.volume).filename().string();
    std::vector<SnapshotRecord> found;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory) return found;
      return Error(Code::kIoError, "list " + dir + ": " + ec.message());
    }
    for (const auto& entry : it) {
      const std::string file = entry.path().filename().string();
      const std::string key = JobKeyOfSnapshotName(file);
      if (key.empty() || file != SnapshotName(key, label)) continue;
      struct stat st {};
      if (::stat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      found.push_back(SnapshotRecord{.lun = lun.volume,
                                     .array_name = entry.path().string(),
                                     .job_key = key,
                                     .backend = options_.name,
                                     .created = ModificationTime(st)});
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return a.created != b.created ? a.created < b.created : a.array_name < b.array_name;
    });
    return found;
  }

  Status Remove(const SnapshotRecord& snapshot) override {
    QB_RETURN_IF_ERROR(CheckOwnSnapshot(snapshot));
    if (::unlink(snapshot.array_name.c_str()) != 0 && errno != ENOENT) {
      return IoError("remove " + snapshot.array_name, errno);
    }
    return Status::Ok();
  }

  Result<std::string> Clone(const SnapshotRecord& snapshot, const std::string& new_name) override {
    QB_RETURN_IF_ERROR(CheckOwnSnapshot(snapshot));
    if (new_name.empty() || new_name.find('\0') != std::string::npos) {
      return Error(Code::kInvalidArgument, "clone needs a name");
    }
    const fs::path target = new_name.front() == '/'
                                ? fs::path(new_name)
                                : fs::path(snapshot.lun).parent_path() / new_name;
    if (new_name.front() != '/' && new_name.find('/') != std::string::npos) {
      return Error(Code::kInvalidArgument,
                   "clone name '" + new_name + "' must be a file name or an absolute path");
    }
    auto made = CloneFile(snapshot.array_name, target.string(), "expose");
    if (!made.ok()) return made.status().WithContext("clone " + snapshot.array_name);
    QB_RETURN_IF_ERROR(SyncDirectory(target.parent_path().string()));
    return target.string();
  }

  Status Rollback(const SnapshotRecord& snapshot) override {
    QB_RETURN_IF_ERROR(CheckOwnSnapshot(snapshot));
    UniqueFd source(::open(snapshot.array_name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!source) {
      if (errno == ENOENT) {
        return Error(Code::kNotFound, "snapshot " + snapshot.array_name + " is gone");
      }
      return IoError("open " + snapshot.array_name, errno);
    }
    // In place, so the LUN keeps its inode, owner, mode and security labels.
    UniqueFd lun(::open(snapshot.lun.c_str(), O_WRONLY | O_CLOEXEC));
    if (!lun) return IoError("open " + snapshot.lun, errno);
    struct stat st {};
    if (::fstat(source.get(), &st) != 0) return IoError("stat " + snapshot.array_name, errno);
    if (::ftruncate(lun.get(), st.st_size) != 0) return IoError("truncate " + snapshot.lun, errno);
    if (::ioctl(lun.get(), FICLONE, source.get()) != 0) {
      return CloneError("rollback " + snapshot.lun, errno);
    }
    if (::fsync(lun.get()) != 0) return IoError("fsync " + snapshot.lun, errno);
    return Status::Ok();
  }

 private:
  std::string SnapshotDir(const std::string& volume) const {
    if (!options_.snapshot_dir.empty()) return options_.snapshot_dir;
    return (fs::path(volume).parent_path() / kDefaultSnapshotSubdir).string();
  }

  std::string SnapshotPath(const std::string& volume, const std::string& job_key) const {
    return (fs::path(SnapshotDir(volume)) /
            SnapshotName(job_key, fs::path(volume).filename().string()))
        .string();
  }

  // Refuses to touch a file that is not one of ours, whatever a catalog row says.
  Status CheckOwnSnapshot(const SnapshotRecord& snapshot) const {
    const fs::path path(snapshot.array_name);
    const std::string file = path.filename().string();
    if (!path.is_absolute() || JobKeyOfSnapshotName(file).empty() ||
        path.parent_path() != fs::path(SnapshotDir(snapshot.lun))) {
      return Error(Code::kInvalidArgument,
                   "'" + snapshot.array_name + "' is not a reflink snapshot of " + snapshot.lun);
    }
    return Status::Ok();
  }

  static Status EnsureDirectory(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return IoError("mkdir " + dir, errno);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return IoError("stat " + dir, errno);
    if (!S_ISDIR(st.st_mode)) {
      return Error(Code::kInvalidArgument, "snapshot directory " + dir + " is not a directory");
    }
    return Status::Ok();
  }

  static Status SyncDirectory(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return IoError("open " + dir, errno);
    if (::fsync(fd.get()) != 0) return IoError("fsync " + dir, errno);
    return Status::Ok();
  }

  // Clones one block of `volume` into an unnamed temporary file in `dir`: proves the file
  // system shares extents and the directory is on the same one, without writing a name.
  static Status ProbeReflink(const std::string& volume, const std::string& dir,
                             const struct stat& st) {
    UniqueFd source(::open(volume.c_str(), O_RDONLY | O_CLOEXEC));
    if (!source) return IoError("open " + volume, errno);
    UniqueFd probe(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!probe) {
      if (errno == EOPNOTSUPP || errno == EISDIR) {
        return Error(Code::kUnsupported, "snapshot directory " + dir +
                                             " is on a file system without O_TMPFILE, so "
                                             "without reflink");
      }
      return IoError("probe in " + dir, errno);
    }
    const uint64_t block = static_cast<uint64_t>(st.st_blksize > 0 ? st.st_blksize : 4096);
    file_clone_range range{};
    range.src_fd = source.get();
    range.src_offset = 0;
    range.src_length = static_cast<uint64_t>(st.st_size) >= block ? block : 0;
    range.dest_offset = 0;
    if (::ioctl(probe.get(), FICLONERANGE, &range) != 0) {
      return CloneError("reflink probe of " + volume + " into " + dir, errno);
    }
    return Status::Ok();
  }

  // FICLONE `source_path` into a new file `target` (mode 0600) that gets its name only once
  // it is whole: the clone goes into an unnamed O_TMPFILE in the target's directory, is
  // fsync'ed, then linked to `target`. linkat never replaces an existing name (kConflict, so
  // "never overwrite" holds), and a kill at any step before it leaves no name at all: the
  // kernel frees the unnamed file, so nothing partial can be found by key or listed. No
  // fallback is needed for file systems without O_TMPFILE: Resolve()'s probe refuses them
  // (every file system that shares extents has it). `stage` names the crash points
  // ("<stage>.after-create", "<stage>.after-clone", "<stage>.after-link").
  // Returns the new file's modification time.
  static Result<std::chrono::system_clock::time_point> CloneFile(const std::string& source_path,
                                                                 const std::string& target,
                                                                 std::string_view stage) {
    UniqueFd source(::open(source_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!source) {
      if (errno == ENOENT) return Error(Code::kNotFound, source_path + " not found");
      return IoError("open " + source_path, errno);
    }
    const std::string dir = fs::path(target).parent_path().string();
    if (::access(target.c_str(), F_OK) == 0) return Exists(target);
    UniqueFd dest(::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
    if (!dest) {
      if (errno == EOPNOTSUPP || errno == EISDIR) {
        return Error(Code::kUnsupported, dir +
                                             " is on a file system without O_TMPFILE, so "
                                             "without reflink");
      }
      return IoError("create in " + dir, errno);
    }
    CrashPoint(std::string(stage) + ".after-create");
    if (::ioctl(dest.get(), FICLONE, source.get()) != 0) {
      return CloneError("FICLONE " + source_path + " -> " + target, errno);
    }
    CrashPoint(std::string(stage) + ".after-clone");
    if (::fsync(dest.get()) != 0) return IoError("fsync " + target, errno);
    struct stat st {};
    if (::fstat(dest.get(), &st) != 0) return IoError("stat " + target, errno);
    // Naming an O_TMPFILE through /proc needs no capability (AT_EMPTY_PATH would).
    const std::string unnamed = "/proc/self/fd/" + std::to_string(dest.get());
    if (::linkat(AT_FDCWD, unnamed.c_str(), AT_FDCWD, target.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno == EEXIST) return Exists(target);
      return IoError("link " + target, errno);
    }
    CrashPoint(std::string(stage) + ".after-link");
    return ModificationTime(st);
  }

  static Status Exists(const std::string& target) {
    return Error(Code::kConflict, target +
                                      " already exists (never overwritten: find it by key "
                                      "instead of creating it again)");
  }

  const ReflinkOptions options_;
};

}  // namespace

std::unique_ptr<ArrayBackend> MakeReflinkBackend(const ReflinkOptions& options) {
  return std::make_unique<ReflinkBackend>(options);
}

Result<uint64_t> CountExtentRecords(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error(Code::kNotFound, path + " not found");
    return IoError("open " + path, errno);
  }
  constexpr uint32_t kBatch = 512;
  std::vector<unsigned char> buffer(sizeof(fiemap) + kBatch * sizeof(fiemap_extent));
  uint64_t records = 0;
  uint64_t start = 0;
  for (;;) {
    std::fill(buffer.begin(), buffer.end(), 0);
    auto* map = reinterpret_cast<fiemap*>(buffer.data());
    map->fm_start = start;
    map->fm_length = FIEMAP_MAX_OFFSET - start;
    map->fm_extent_count = kBatch;
    if (::ioctl(fd.get(), FS_IOC_FIEMAP, map) != 0) {
      if (errno == EOPNOTSUPP || errno == ENOTTY) {
        return Error(Code::kUnsupported, path + ": file system has no FIEMAP");
      }
      return IoError("FIEMAP " + path, errno);
    }
    if (map->fm_mapped_extents == 0) break;
    records += map->fm_mapped_extents;
    const fiemap_extent& last = map->fm_extents[map->fm_mapped_extents - 1];
    if ((last.fe_flags & FIEMAP_EXTENT_LAST) != 0) break;
    const uint64_t next = last.fe_logical + last.fe_length;
    if (next <= start) break;  // no progress: never loop forever on a confused file system
    start = next;
  }
  return records;
}

microseconds ProjectCloneTime(uint64_t extent_records) {
  for (std::size_t i = 1; i < kMeasuredCloneTimes.size(); ++i) {
    const auto [x1, y1] = kMeasuredCloneTimes[i];
    if (extent_records <= x1) {
      const auto [x0, y0] = kMeasuredCloneTimes[i - 1];
      const double share = static_cast<double>(extent_records - x0) / static_cast<double>(x1 - x0);
      return microseconds(y0 + static_cast<int64_t>(share * static_cast<double>(y1 - y0)));
    }
  }
  const auto [x0, y0] = kMeasuredCloneTimes[kMeasuredCloneTimes.size() - 2];
  const auto [x1, y1] = kMeasuredCloneTimes.back();
  const double slope = static_cast<double>(y1 - y0) / static_cast<double>(x1 - x0);
  return microseconds(y1 + static_cast<int64_t>(slope * static_cast<double>(extent_records - x1)));
}

}  // namespace qb::arrays::reflink
