#include "host-daemon/arrays/purity/purity_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <set>
#include <thread>

#include "common/time_limits.h"
#include "host-daemon/arrays/purity/purity_names.h"

namespace qb::arrays::purity {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// Suffix used by Prepare()'s dry run (never created: /test only validates).
constexpr std::string_view kDryRunSuffix = "qb-prepare-test";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Join(const std::vector<std::string>& parts, char separator) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

const json::array* ItemsOf(const RestReply& reply) {
  if (!reply.body.is_object()) return nullptr;
  const auto* items = reply.body.as_object().if_contains("items");
  return items != nullptr && items->is_array() ? &items->as_array() : nullptr;
}

std::string StringField(const json::value& item, std::string_view key) {
  if (!item.is_object()) return "";
  const auto* v = item.as_object().if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : "";
}

bool BoolField(const json::value& item, std::string_view key) {
  if (!item.is_object()) return false;
  const auto* v = item.as_object().if_contains(key);
  return v != nullptr && v->is_bool() && v->as_bool();
}

std::chrono::system_clock::time_point CreatedOf(const json::value& item) {
  if (item.is_object()) {
    const auto* v = item.as_object().if_contains("created");
    if (v != nullptr && v->is_int64()) {
      return std::chrono::system_clock::time_point(std::chrono::milliseconds(v->as_int64()));
    }
  }
  return std::chrono::system_clock::now();
}

// "pg.suffix.vol" -> {"pg.suffix"}; "vol.suffix" -> nullopt.
std::optional<std::string> GroupSnapshotOf(const std::string& volume_snapshot) {
  const auto first = volume_snapshot.find('.');
  if (first == std::string::npos) return std::nullopt;
  const auto second = volume_snapshot.find('.', first + 1);
  if (second == std::string::npos) return std::nullopt;
  return volume_snapshot.substr(0, second);
}

Status StatusOf(const Result<RestReply>& reply, std::string_view what) {
  if (!reply.ok()) return reply.status().WithContext(what);
  if (!reply->ok()) return ErrorFromReply(*reply, what);
  return Status::Ok();
}

}  // namespace

PurityBackend::PurityBackend(PurityBackendOptions options, std::string api_token)
    : options_(std::move(options)), client_(options_.rest, std::move(api_token)) {}

Clock::time_point PurityBackend::DefaultDeadline() const {
  return Clock::now() + limits::kRequestTimeout;
}

Result<PurityBackend::ResolvedLun> PurityBackend::ResolveLun(const LunSpec& lun,
                                                             Clock::time_point deadline) {
  const std::string key = lun.volume + "\n" + lun.wwn;
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = resolved_.find(key); it != resolved_.end()) return it->second;
  }
  std::optional<std::string> serial;
  if (!lun.wwn.empty()) {
    serial = SerialFromLunId(lun.wwn);
    if (!serial) {
      return Error(
          Code::kInvalidArgument,
          fmt::format("WWN {} is not a FlashArray volume NAA (624a9370 + serial)", lun.wwn));
    }
  }
  std::string volume_name;
  if (auto from_volume = SerialFromLunId(lun.volume); from_volume) {
    if (serial && *serial != *from_volume) {
      return Error(Code::kConflict,
                   fmt::format("LUN {} and WWN {} name different volumes", lun.volume, lun.wwn));
    }
    serial = from_volume;
  } else if (lun.volume.find('/') != std::string::npos) {
    return Error(Code::kInvalidArgument,
                 fmt::format("{} is not a FlashArray device path (expected a by-id path with "
                             "NAA 624a9370…)",
                             lun.volume));
  } else {
    volume_name = lun.volume;
  }
  if (volume_name.empty() && !serial) {
    return Error(Code::kInvalidArgument, "LUN has neither a volume name nor a WWN");
  }

  RestRequest request{HttpMethod::kGet, "/volumes", {}, std::nullopt, true};
  if (!volume_name.empty()) {
    request.query = {{"names", volume_name}};
  } else {
    request.query = {{"filter", fmt::format("serial='{}'", *serial)}, {"destroyed", "false"}};
  }
  auto reply = client_.Call(request, deadline);
  const std::string what =
      fmt::format("resolve LUN {}", volume_name.empty() ? lun.wwn : volume_name);
  if (reply.ok() && IsNotFound(*reply)) {
    return Error(Code::kNotFound, fmt::format("{}: no such volume on the array", what));
  }
  QB_RETURN_IF_ERROR(StatusOf(reply, what));
  const auto* items = ItemsOf(*reply);
  const json::value* found = nullptr;
  if (items != nullptr) {
    for (const auto& item : *items) {
      if (!BoolField(item, "destroyed")) {
        found = &item;
        break;
      }
    }
  }
  if (found == nullptr) {
    return Error(Code::kNotFound,
                 fmt::format("{}: no such volume on the array (or destroyed)", what));
  }
  ResolvedLun resolved{StringField(*found, "name"), StringField(*found, "serial")};
  if (serial && Lower(resolved.serial) != Lower(*serial)) {
    return Error(Code::kConflict,
                 fmt::format("{}: volume {} has serial {}, but the LUN's WWN says {}", what,
                             resolved.volume, resolved.serial, *serial));
  }
  if (resolved.volume.empty()) return Error(Code::kProtocolError, what + ": volume without a name");
  std::lock_guard lock(cache_mutex_);
  resolved_[key] = resolved;
  return resolved;
}

Status PurityBackend::Resolve(const LunSpec& lun) {
  {
    std::lock_guard lock(cache_mutex_);
    resolved_.erase(lun.volume + "\n" + lun.wwn);
  }
  return ResolveLun(lun, DefaultDeadline()).status();
}

Status PurityBackend::EnsureProtectionGroup(const std::string& group,
                                            const std::vector<std::string>& volumes,
                                            Clock::time_point deadline) {
  auto reply = client_.Call(
      {HttpMethod::kGet, "/protection-groups", {{"names", group}}, std::nullopt, true}, deadline);
  if (reply.ok() && IsNotFound(*reply)) {
    auto created = client_.Call(
        {HttpMethod::kPost, "/protection-groups", {{"names", group}}, std::nullopt, false},
        deadline);
    if (!(created.ok() && IsAlreadyExists(*created))) {
      QB_RETURN_IF_ERROR(StatusOf(created, "create protection group " + group));
    }
  } else {
    QB_RETURN_IF_ERROR(StatusOf(reply, "look up protection group " + group));
  }
  auto members = client_.Call({HttpMethod::kGet,
                               "/protection-groups/volumes",
                               {{"group_names", group}},
                               std::nullopt,
                               true},
                              deadline);
  QB_RETURN_IF_ERROR(StatusOf(members, "list members of " + group));
  std::set<std::string> present;
  if (const auto* items = ItemsOf(*members); items != nullptr) {
    for (const auto& item : *items) {
      if (!item.is_object()) continue;
      const auto* member = item.as_object().if_contains("member");
      if (member != nullptr) present.insert(Lower(StringField(*member, "name")));
    }
  }
  std::set<std::string> wanted;
  for (const auto& v : volumes) wanted.insert(Lower(v));
  std::vector<std::string> to_add, to_remove;
  for (const auto& v : volumes) {
    if (present.count(Lower(v)) == 0) to_add.push_back(v);
  }
  for (const auto& p : present) {
    if (wanted.count(p) == 0) to_remove.push_back(p);
  }
  if (!to_add.empty()) {
    QB_RETURN_IF_ERROR(
        StatusOf(client_.Call({HttpMethod::kPost,
                               "/protection-groups/volumes",
                               {{"group_names", group}, {"member_names", Join(to_add, ',')}},
                               std::nullopt,
                               true},
                              deadline),
                 "add volumes to " + group));
  }
  if (!to_remove.empty()) {
    QB_RETURN_IF_ERROR(
        StatusOf(client_.Call({HttpMethod::kDelete,
                               "/protection-groups/volumes",
                               {{"group_names", group}, {"member_names", Join(to_remove, ',')}},
                               std::nullopt,
                               true},
                              deadline),
                 "remove foreign volumes from " + group));
  }
  std::vector<std::string> sorted(wanted.begin(), wanted.end());
  std::lock_guard lock(cache_mutex_);
  groups_ready_[group] = sorted;
  return Status::Ok();
}

Result<PrepareReport> PurityBackend::Prepare(const std::vector<LunSpec>& luns,
                                             std::chrono::milliseconds budget) {
  if (luns.empty()) return Error(Code::kInvalidArgument, "Prepare: no LUNs");
  const auto deadline = DefaultDeadline();
  PrepareReport report;
  if (options_.rest.insecure_skip_verify) {
    report.warnings.push_back(
        "purity: TLS certificate verification is OFF (insecure_skip_verify); lab use only");
  }
  QB_RETURN_IF_ERROR(client_.EnsureSession(deadline));
  std::vector<std::string> volumes;
  for (const auto& lun : luns) {
    {
      std::lock_guard lock(cache_mutex_);
      resolved_.erase(lun.volume + "\n" + lun.wwn);
    }
    auto resolved = ResolveLun(lun, deadline);
    if (!resolved.ok()) return resolved.status();
    if (std::find(volumes.begin(), volumes.end(), resolved->volume) != volumes.end()) {
      return Error(Code::kInvalidArgument,
                   fmt::format("two LUNs resolve to the same volume {}", resolved->volume));
    }
    volumes.push_back(resolved->volume);
    report.extent_counts.emplace_back(lun.volume, 0);
  }
  RestRequest dry_run{HttpMethod::kPost, "", {}, json::object{{"suffix", kDryRunSuffix}}, true};
  if (volumes.size() > 1) {
    const std::string group = ProtectionGroupNameFor(volumes);
    QB_RETURN_IF_ERROR(EnsureProtectionGroup(group, volumes, deadline));
    dry_run.path = "/protection-group-snapshots/test";
    dry_run.query = {{"source_names", group}};
  } else {
    dry_run.path = "/volume-snapshots/test";
    dry_run.query = {{"source_names", volumes.front()}};
  }
  const auto started = Clock::now();
  if (options_.dry_run_in_prepare) {
    auto reply = client_.Call(dry_run, deadline);
    if (!reply.ok()) return reply.status().WithContext("dry run");
    if (reply->status == 404) {
      // REST answers a missing object with 400; 404 means the route itself is unknown.
      report.warnings.push_back("purity: the array has no " + dry_run.path +
                                " endpoint; dry run skipped");
    } else if (!reply->ok() && !IsAlreadyExists(*reply)) {
      return ErrorFromReply(*reply, "dry run " + dry_run.path);
    }
  } else {
    auto reply = client_.Call(
        {HttpMethod::kGet, "/volumes", {{"names", volumes.front()}}, std::nullopt, true}, deadline);
    QB_RETURN_IF_ERROR(StatusOf(reply, "round-trip probe"));
  }
  const auto round_trip =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  report.projected_cut =
      std::max<std::chrono::milliseconds>(2 * round_trip, std::chrono::milliseconds(1));
  if (report.projected_cut > budget) {
    return Error(
        Code::kTimeout,
        fmt::format("purity: projected snapshot call {} ms (2 x measured round trip {} ms) "
                    "does not fit the budget of {} ms",
                    report.projected_cut.count(), round_trip.count(), budget.count()));
  }
  if (report.projected_cut * 2 > budget) {
    report.warnings.push_back(
        fmt::format("purity: projected snapshot call {} ms is more than half the budget of {} ms",
                    report.projected_cut.count(), budget.count()));
  }
  return report;
}

Result<bool> PurityBackend::Exists(const std::string& path, const std::string& name,
                                   Clock::time_point deadline) {
  auto reply =
      client_.Call({HttpMethod::kGet, path, {{"names", name}}, std::nullopt, true}, deadline);
  if (reply.ok() && IsNotFound(*reply)) return false;
  QB_RETURN_IF_ERROR(StatusOf(reply, "look up " + name));
  if (const auto* items = ItemsOf(*reply); items != nullptr) {
    for (const auto& item : *items) {
      if (Lower(StringField(item, "name")) == Lower(name) && !BoolField(item, "destroyed"))
        return true;
    }
  }
  return false;
}

Status PurityBackend::CreateOnce(const RestRequest& request, const std::string& expected_name,
                                 const std::string& lookup_path, Clock::time_point deadline) {
  bool maybe_created = false;
  while (true) {
    auto reply = client_.Call(request, deadline);
    if (reply.ok() && reply->ok()) return Status::Ok();
    if (reply.ok() && IsAlreadyExists(*reply)) {
      if (maybe_created) return Status::Ok();  // an earlier attempt of this call landed
      return Error(Code::kConflict,
                   fmt::format("snapshot {} already exists on the array (destroyed names stay "
                               "taken until eradicated); a job key must never be reused",
                               expected_name));
    }
    const bool ambiguous =
        !reply.ok() || reply->status >= 500 || reply->status == 429 || reply->overloaded();
    if (!ambiguous) return ErrorFromReply(*reply, "create " + expected_name);
    if (!reply.ok() && reply.status().code() == Code::kTimeout) {
      return Error(Code::kTimeout,
                   fmt::format("create {}: no answer by the deadline; it may still land on the "
                               "array (FindByKey finds it)",
                               expected_name));
    }
    maybe_created = true;
    if (Clock::now() >= deadline) {
      return Error(Code::kTimeout, fmt::format("create {}: deadline passed", expected_name));
    }
    auto exists = Exists(lookup_path, expected_name, deadline);
    if (!exists.ok()) return exists.status().WithContext("after an unanswered create");
    if (*exists) return Status::Ok();
    const auto wait = std::max<std::chrono::milliseconds>(
        reply.ok() ? reply->retry_after.value_or(kOverloadDefaultBackoff) : kOverloadDefaultBackoff,
        kOverloadDefaultBackoff);
    if (Clock::now() + wait >= deadline) {
      if (!reply.ok()) return reply.status().WithContext("create " + expected_name);
      return ErrorFromReply(*reply, "create " + expected_name + " (retry would pass the deadline)");
    }
    std::this_thread::sleep_for(wait);
  }
}

Result<std::vector<SnapshotRecord>> PurityBackend::Snapshot(const std::vector<LunSpec>& luns,
                                                            const std::string& job_key,
                                                            Clock::time_point deadline) {
  QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
  if (luns.empty()) return Error(Code::kInvalidArgument, "Snapshot: no LUNs");
  const std::string suffix = SuffixForJobKey(job_key);
  std::vector<std::string> volumes;
  for (const auto& lun : luns) {
    auto resolved = ResolveLun(lun, deadline);
    if (!resolved.ok()) return resolved.status();
    if (std::find(volumes.begin(), volumes.end(), resolved->volume) != volumes.end()) {
      return Error(Code::kInvalidArgument,
                   fmt::format("two LUNs resolve to the same volume {}", resolved->volume));
    }
    volumes.push_back(resolved->volume);
  }
  std::vector<SnapshotRecord> records;
  const json::value body = json::object{{"suffix", suffix}};
  if (volumes.size() == 1) {
    const std::string name = volumes.front() + "." + suffix;
    QB_RETURN_IF_ERROR(CreateOnce(
        {HttpMethod::kPost, "/volume-snapshots", {{"source_names", volumes.front()}}, body, false},
        name, "/volume-snapshots", deadline));
    records.push_back(
        {luns.front().volume, name, job_key, options_.name, std::chrono::system_clock::now()});
    return records;
  }
  const std::string group = ProtectionGroupNameFor(volumes);
  bool group_ready = false;
  {
    std::vector<std::string> wanted;
    for (const auto& v : volumes) wanted.push_back(Lower(v));
    std::sort(wanted.begin(), wanted.end());
    std::lock_guard lock(cache_mutex_);
    auto it = groups_ready_.find(group);
    group_ready = it != groups_ready_.end() && it->second == wanted;
  }
  // Not prepared: this costs up to four more requests inside the freeze window.
  if (!group_ready) QB_RETURN_IF_ERROR(EnsureProtectionGroup(group, volumes, deadline));
  const std::string group_snapshot = group + "." + suffix;
  QB_RETURN_IF_ERROR(CreateOnce(
      {HttpMethod::kPost, "/protection-group-snapshots", {{"source_names", group}}, body, false},
      group_snapshot, "/protection-group-snapshots", deadline));
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < luns.size(); ++i) {
    records.push_back(
        {luns[i].volume, group_snapshot + "." + volumes[i], job_key, options_.name, now});
  }
  return records;
}

Result<std::vector<SnapshotRecord>> PurityBackend::SnapshotsOfVolume(const LunSpec& lun,
                                                                     const std::string& volume,
                                                                     Clock::time_point deadline) {
  auto reply = client_.Call({HttpMethod::kGet,
                             "/volume-snapshots",
                             {{"source_names", volume}, {"destroyed", "false"}},
                             std::nullopt,
                             true},
                            deadline);
  QB_RETURN_IF_ERROR(StatusOf(reply, "list snapshots of " + volume));
  std::vector<SnapshotRecord> out;
  const auto* items = ItemsOf(*reply);
  if (items == nullptr) return out;
  const std::string single_prefix = Lower(volume) + ".";
  const std::string group_tail = "." + Lower(volume);
  for (const auto& item : *items) {
    if (BoolField(item, "destroyed")) continue;
    const std::string name = StringField(item, "name");
    const std::string lower = Lower(name);
    std::string suffix;
    if (lower.rfind(single_prefix, 0) == 0 &&
        lower.find('.', single_prefix.size()) == std::string::npos) {
      suffix = name.substr(single_prefix.size());
    } else if (lower.size() > group_tail.size() &&
               lower.compare(lower.size() - group_tail.size(), group_tail.size(), group_tail) ==
                   0) {
      const std::string head = name.substr(0, name.size() - group_tail.size());  // pg.suffix
      const auto dot = head.find('.');
      if (dot == std::string::npos || head.find('.', dot + 1) != std::string::npos) continue;
      suffix = head.substr(dot + 1);
    } else {
      continue;
    }
    if (suffix.rfind(kSnapshotPrefix, 0) != 0) continue;
    out.push_back({lun.volume, name, JobKeyOfSuffix(suffix), options_.name, CreatedOf(item)});
  }
  std::stable_sort(out.begin(), out.end(), [](const SnapshotRecord& a, const SnapshotRecord& b) {
    return a.created < b.created;
  });
  return out;
}

Result<std::vector<SnapshotRecord>> PurityBackend::FindByKey(const std::vector<LunSpec>& luns,
                                                             const std::string& job_key) {
  QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
  const auto deadline = DefaultDeadline();
  const std::string suffix = Lower(SuffixForJobKey(job_key));
  std::vector<SnapshotRecord> found;
  for (const auto& lun : luns) {
    auto resolved = ResolveLun(lun, deadline);
    if (!resolved.ok()) return resolved.status();
    auto snapshots = SnapshotsOfVolume(lun, resolved->volume, deadline);
    if (!snapshots.ok()) return snapshots.status();
    for (auto& record : *snapshots) {
      const std::string lower = Lower(record.array_name);
      const bool single = lower == Lower(resolved->volume) + "." + suffix;
      const bool member = lower.find("." + suffix + ".") != std::string::npos &&
                          GroupSnapshotOf(record.array_name).has_value();
      if (!single && !member) continue;
      record.job_key = job_key;  // also right for a hashed suffix
      found.push_back(std::move(record));
    }
  }
  return found;
}

Result<std::vector<SnapshotRecord>> PurityBackend::List(const LunSpec& lun) {
  const auto deadline = DefaultDeadline();
  auto resolved = ResolveLun(lun, deadline);
  if (!resolved.ok()) return resolved.status();
  return SnapshotsOfVolume(lun, resolved->volume, deadline);
}

Status PurityBackend::Remove(const SnapshotRecord& snapshot) {
  const auto deadline = DefaultDeadline();
  std::string path = "/volume-snapshots";
  std::string name = snapshot.array_name;
  if (auto group_snapshot = GroupSnapshotOf(name); group_snapshot) {
    path = "/protection-group-snapshots";
    name = *group_snapshot;
  }
  auto destroyed = client_.Call(
      {HttpMethod::kPatch, path, {{"names", name}}, json::object{{"destroyed", true}}, true},
      deadline);
  if (destroyed.ok() && IsNotFound(*destroyed)) return Status::Ok();
  QB_RETURN_IF_ERROR(StatusOf(destroyed, "destroy " + name));
  if (!options_.eradicate_on_remove) return Status::Ok();
  auto eradicated =
      client_.Call({HttpMethod::kDelete, path, {{"names", name}}, std::nullopt, true}, deadline);
  if (eradicated.ok() && IsNotFound(*eradicated)) return Status::Ok();
  return StatusOf(eradicated, "eradicate " + name);
}

Result<std::string> PurityBackend::Clone(const SnapshotRecord& snapshot,
                                         const std::string& new_name) {
  if (new_name.empty() || new_name.find_first_of("./ ") != std::string::npos) {
    return Error(Code::kInvalidArgument, fmt::format("invalid volume name '{}'", new_name));
  }
  auto reply = client_.Call({HttpMethod::kPost,
                             "/volumes",
                             {{"names", new_name}},
                             json::object{{"source", json::object{{"name", snapshot.array_name}}}},
                             false},
                            DefaultDeadline());
  QB_RETURN_IF_ERROR(
      StatusOf(reply, fmt::format("copy {} to new volume {}", snapshot.array_name, new_name)));
  return new_name;
}

Status PurityBackend::Rollback(const SnapshotRecord& snapshot) {
  const auto deadline = DefaultDeadline();
  auto resolved = ResolveLun(LunSpec{options_.name, snapshot.lun, ""}, deadline);
  if (!resolved.ok()) return resolved.status();
  auto reply = client_.Call({HttpMethod::kPost,
                             "/volumes",
                             {{"names", resolved->volume}, {"overwrite", "true"}},
                             json::object{{"source", json::object{{"name", snapshot.array_name}}}},
                             true},
                            deadline);
  return StatusOf(reply,
                  fmt::format("overwrite {} from {}", resolved->volume, snapshot.array_name));
}

}  // namespace qb::arrays::purity
