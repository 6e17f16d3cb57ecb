// The array backend seam: everything the daemon asks of a storage array goes through
// ArrayBackend. Each implementation lives in its own folder beside this header (reflink/, exec/,
// testing/); main() builds a BackendSet and hands it to the job layer (no global registry).
//
// Threading: every method is BLOCKING and is called on the daemon's worker pool, never on the
// io thread. An implementation must be safe to call from several worker threads at once for
// different job keys; calls for the same job key are serialised by the job layer.
//
// Names: a snapshot's name derives ONLY from the job key and the LUN (SnapshotName()), so a
// daemon that restarts after a crash finds what an unfinished job created (FindByKey) instead of
// guessing. A create is never retried blindly: callers FindByKey first.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace qb::arrays {

// Every snapshot the product creates carries this prefix, so it can be told apart from an
// admin's own snapshots and found again after a crash.
inline constexpr std::string_view kSnapshotPrefix = "qb-";

// One LUN as the host sees it. Comes from the config or libvirt discovery, never from the guest.
struct LunSpec {
  std::string backend{};  // name of the backend that handles it (a BackendSet key)
  std::string volume{};   // reflink: absolute file path; exec: passed through to the script
  std::string wwn{};      // optional, lower-case hex without separators; empty when unknown
};

// A snapshot as the array knows it.
struct SnapshotRecord {
  std::string lun{};         // LunSpec::volume it was taken from
  std::string array_name{};  // the name / path / id on the array (reflink: snapshot file path)
  std::string job_key{};     // the job key it was created under (parsed back from the name)
  std::string backend{};     // backend name
  std::chrono::system_clock::time_point created{};
};

// What Prepare() learned before the freeze.
struct PrepareReport {
  // Human-readable warnings ("LUN /x has 12000 extent records, projected cut 0.45 s").
  std::vector<std::string> warnings{};
  // The backend's projection of how long Snapshot() of this group will take.
  std::chrono::milliseconds projected_cut{0};
  // Per LUN (volume) a cost figure the backend measured (reflink: extent records; 0 if n/a).
  std::vector<std::pair<std::string, uint64_t>> extent_counts{};
};

struct Capabilities {
  bool atomic_group = false;  // Snapshot() of several LUNs is one atomic cut on the array
  bool clone = false;         // Clone() works
  bool rollback = false;      // Rollback() works
};

// The interface. No fields; implementations own their state.
class ArrayBackend {
 public:
  virtual ~ArrayBackend() = default;

  // The name this backend is registered under ("reflink", "exec", ...). Stable for its life.
  virtual const std::string& name() const = 0;

  virtual Capabilities capabilities() const = 0;

  // Checks that `lun` exists and this backend can snapshot it.
  // OK: usable. kNotFound: no such volume. kUnsupported: exists but this backend cannot
  // snapshot it (e.g. reflink on a file system without reflink). kInvalidArgument: malformed.
  virtual Status Resolve(const LunSpec& lun) = 0;

  // Work done OUTSIDE the freeze: measures what the cut will cost and projects its duration.
  // `budget` is the time the snapshot call will be allowed inside the freeze.
  // Returns the report (with warnings when the projection is close to the budget).
  // kTimeout: the projected cut does not fit `budget` (refuse rather than overrun the lease);
  // the message names the LUN and the figures. Other codes as Resolve().
  virtual Result<PrepareReport> Prepare(const std::vector<LunSpec>& luns,
                                        std::chrono::milliseconds budget) = 0;

  // Takes one snapshot of every LUN in `luns`, named from `job_key` (SnapshotName()).
  // BLOCKING. All-or-nothing: on failure, whatever this call created is removed before it
  // returns (if even that fails, the code is kPartial and the message lists the leftovers,
  // which FindByKey will find). Returns by `deadline` where the backend can (a single array
  // call in flight may not be interruptible: each implementation documents its granularity);
  // kTimeout when the deadline passed before the group was complete.
  // `job_key` must be a valid key (ValidateJobKey()), else kInvalidArgument.
  // Records are returned in the order of `luns`.
  virtual Result<std::vector<SnapshotRecord>> Snapshot(
      const std::vector<LunSpec>& luns, const std::string& job_key,
      std::chrono::steady_clock::time_point deadline) = 0;

  // Finds the snapshots of `luns` created under `job_key` (e.g. by a job that outlived its
  // deadline or by a daemon that crashed). Returns those that exist (possibly none: an empty
  // vector is success). Never creates anything.
  virtual Result<std::vector<SnapshotRecord>> FindByKey(const std::vector<LunSpec>& luns,
                                                        const std::string& job_key) = 0;

  // Every product snapshot (kSnapshotPrefix) of `lun`, oldest first.
  virtual Result<std::vector<SnapshotRecord>> List(const LunSpec& lun) = 0;

  // Deletes one snapshot. A snapshot that no longer exists is success (idempotent).
  virtual Status Remove(const SnapshotRecord& snapshot) = 0;

  // Exposes `snapshot` as a new, writable volume named `new_name` (reflink: a file beside the
  // snapshot directory's LUN; exec: whatever the script does). Returns the new volume's
  // identifier (reflink: path). kUnsupported if !capabilities().clone; kConflict when
  // `new_name` already exists.
  virtual Result<std::string> Clone(const SnapshotRecord& snapshot,
                                    const std::string& new_name) = 0;

  // Reverts the LUN `snapshot.lun` to the content of `snapshot`. Destroys current LUN data.
  // The caller (job layer) refuses this while the VM runs; the backend does not check.
  // kUnsupported if !capabilities().rollback; kNotFound if the snapshot is gone.
  virtual Status Rollback(const SnapshotRecord& snapshot) = 0;
};

// A job key: 1..64 characters from [A-Za-z0-9_.], not starting with '.'. No '-': it separates the
// key from the LUN label in snapshot names, so a name parses back to exactly one key. Keys end
// up in file names and array object names, so nothing else is allowed.
// OK or kInvalidArgument naming the problem.
Status ValidateJobKey(std::string_view job_key);

// The snapshot name for `job_key` and a LUN label (reflink: the LUN file's basename; exec: the
// volume). Result: "qb-<job_key>-<lun_label>", with every character of the label outside
// [A-Za-z0-9_.-] replaced by '_'. Deterministic: same inputs, same name, across restarts.
// `job_key` must satisfy ValidateJobKey (asserted by callers, not here).
std::string SnapshotName(std::string_view job_key, std::string_view lun_label);

// The job key a product snapshot name was made from, or "" when `name` is not of the form
// SnapshotName(valid key, non-empty label).
std::string JobKeyOfSnapshotName(std::string_view name);

// Owns the backends main() built, by name. Not thread-safe for Add(); lookups after setup are
// safe from any thread (the set is not modified once the daemon runs).
class BackendSet {
 public:
  // Registers `backend` under backend->name(). kConflict if the name is taken;
  // kInvalidArgument if backend is null.
  Status Add(std::unique_ptr<ArrayBackend> backend);

  // The backend named `name`, or nullptr. The pointer lives as long as this set.
  ArrayBackend* Find(std::string_view name) const;

  // Registered names, sorted.
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, std::unique_ptr<ArrayBackend>, std::less<>> backends_;
};

}  // namespace qb::arrays
