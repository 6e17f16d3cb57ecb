// PurityBackend: ArrayBackend for Pure Storage FlashArray over REST 2.x (see rest_client.h).
//
// LUN identity. A LunSpec names its FlashArray volume in one of two ways:
//   - by WWN (LunSpec::wwn, as libvirt's <wwn> or the guest's VPD 0x83 NAA "624a9370<serial>"),
//     or a host path in LunSpec::volume such as /dev/disk/by-id/wwn-0x624a9370… or
//     …/dm-uuid-mpath-3624a9370…: the volume is found by its serial (GET /volumes
//     filter=serial='…');
//   - by array volume name in LunSpec::volume (no '/'): GET /volumes names=…; when a WWN is also
//     given it must match the volume's serial (kConflict otherwise: wrong LUN).
// Resolved names are cached per LunSpec so Snapshot() inside the freeze makes no lookups.
//
// Snapshot names (never reused; a destroyed snapshot keeps its name until eradicated):
//   one LUN:   "<volume>.<suffix>"                (POST /volume-snapshots)
//   several:   "<pgroup>.<suffix>.<volume>"       (POST /protection-group-snapshots, one atomic
//                                                  cut of every member volume)
// with suffix = SuffixForJobKey(job_key) and pgroup = ProtectionGroupNameFor(volumes).
// SnapshotRecord::array_name is that full volume-snapshot name.
//
// Freeze-window cost (REST requests inside Snapshot(), after Prepare() of the same LUNs on a
// live session): 1 for one LUN, 1 for a group of any size. A create is never re-sent blindly:
// after a timeout, a dropped answer or a 5xx/429 the backend first looks the name up.
//
// Threading: every method blocks; safe from several worker threads (the REST client serialises
// requests on its one connection; the name cache has its own mutex).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "host-daemon/arrays/backend.h"
#include "host-daemon/arrays/purity/rest_client.h"

namespace qb::arrays::purity {

struct PurityBackendOptions {
  std::string name = "purity";  // BackendSet key
  RestClientOptions rest;
  // Remove(): after destroying, also eradicate (DELETE) so the space and name are freed at once.
  // Off by default: a destroyed snapshot stays recoverable for the array's eradication delay.
  bool eradicate_on_remove = false;
  // Prepare(): dry-run the create with the /test endpoint. An array without it (404) only
  // yields a warning.
  bool dry_run_in_prepare = true;
};

class PurityBackend final : public ArrayBackend {
 public:
  // `api_token` comes from LoadApiTokenFile / LoadApiTokenCredential; it is never logged.
  PurityBackend(PurityBackendOptions options, std::string api_token);

  const std::string& name() const override { return options_.name; }
  Capabilities capabilities() const override { return {true, true, true}; }

  // Looks the volume up on the array (see the header comment). OK, kNotFound (no such volume or
  // it is destroyed), kInvalidArgument (neither a FlashArray WWN nor a volume name), kConflict
  // (the name and WWN disagree), or the REST client's transport errors.
  Status Resolve(const LunSpec& lun) override;

  // Outside the freeze: logs in, resolves every LUN, for several LUNs creates / corrects the
  // protection group so it holds exactly these volumes, then dry-runs the create via /test and
  // projects the cut time as twice the measured round trip of that request (the snapshot call is
  // one request of the same kind). kTimeout when the projection does not fit `budget`.
  // extent_counts: not applicable on an array (0 per LUN).
  Result<PrepareReport> Prepare(const std::vector<LunSpec>& luns,
                                std::chrono::milliseconds budget) override;

  // See ArrayBackend::Snapshot. Granularity: every REST request stops at `deadline`; a request
  // whose answer did not arrive by then may still land on the array (kTimeout is returned and a
  // later FindByKey finds it). kConflict when the name exists before this call created anything
  // (a job key used twice). Groups are atomic on the array, so there is never a partial group.
  Result<std::vector<SnapshotRecord>> Snapshot(
      const std::vector<LunSpec>& luns, const std::string& job_key,
      std::chrono::steady_clock::time_point deadline) override;

  // Looks up the names Snapshot() would have used (both the single-volume and the group form,
  // so it also works when the LUN set changed); destroyed snapshots count as gone.
  Result<std::vector<SnapshotRecord>> FindByKey(const std::vector<LunSpec>& luns,
                                                const std::string& job_key) override;

  // Every non-destroyed snapshot of the LUN's volume whose suffix carries the product prefix,
  // oldest first. job_key is "" for a hashed (long-key) suffix.
  Result<std::vector<SnapshotRecord>> List(const LunSpec& lun) override;

  // Destroys the snapshot; for a protection-group member this destroys the whole group
  // snapshot (the array keeps group cuts whole), so removing every record of a job is
  // idempotent. Eradicates too when eradicate_on_remove. Missing = success.
  Status Remove(const SnapshotRecord& snapshot) override;

  // POST /volumes names=new_name with source = the snapshot: a new writable volume (connect it
  // to a backup host to read it). Returns new_name. kConflict if new_name exists.
  Result<std::string> Clone(const SnapshotRecord& snapshot, const std::string& new_name) override;

  // POST /volumes overwrite=true, source = the snapshot, onto the LUN's volume.
  Status Rollback(const SnapshotRecord& snapshot) override;

  // HTTP requests sent so far (for the freeze-window cost figures).
  uint64_t requests_sent() const { return client_.requests_sent(); }

 private:
  struct ResolvedLun {
    std::string volume;  // array volume name
    std::string serial;
  };

  Result<ResolvedLun> ResolveLun(const LunSpec& lun,
                                 std::chrono::steady_clock::time_point deadline);
  Status EnsureProtectionGroup(const std::string& group, const std::vector<std::string>& volumes,
                               std::chrono::steady_clock::time_point deadline);
  // Creates once; on an ambiguous failure looks `expected_name` up before any retry.
  Status CreateOnce(const RestRequest& request, const std::string& expected_name,
                    const std::string& lookup_path, std::chrono::steady_clock::time_point deadline);
  Result<bool> Exists(const std::string& path, const std::string& name,
                      std::chrono::steady_clock::time_point deadline);
  Result<std::vector<SnapshotRecord>> SnapshotsOfVolume(
      const LunSpec& lun, const std::string& volume,
      std::chrono::steady_clock::time_point deadline);
  std::chrono::steady_clock::time_point DefaultDeadline() const;

  PurityBackendOptions options_;
  RestClient client_;
  std::mutex cache_mutex_;
  std::map<std::string, ResolvedLun> resolved_;                   // key: volume + '\n' + wwn
  std::map<std::string, std::vector<std::string>> groups_ready_;  // group -> members as checked
};

}  // namespace qb::arrays::purity
