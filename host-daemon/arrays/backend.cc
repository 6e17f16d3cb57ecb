#include "host-daemon/arrays/backend.h"

#include <algorithm>

namespace qb::arrays {
namespace {

constexpr std::size_t kMaxJobKeyLength = 64;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

Status ValidateJobKey(std::string_view job_key) {
  if (job_key.empty()) return Error(Code::kInvalidArgument, "job key is empty");
  if (job_key.size() > kMaxJobKeyLength) {
    return Error(Code::kInvalidArgument, "job key longer than 64 characters");
  }
  if (job_key.front() == '.') {
    return Error(Code::kInvalidArgument, "job key '" + std::string(job_key) + "' starts with '.'");
  }
  for (char c : job_key) {
    if (c == '-' || !IsNameChar(c)) {
      return Error(Code::kInvalidArgument, "job key '" + std::string(job_key) +
                                               "' contains a character outside [A-Za-z0-9_.]");
    }
  }
  return Status::Ok();
}

std::string SnapshotName(std::string_view job_key, std::string_view lun_label) {
  std::string name(kSnapshotPrefix);
  name.append(job_key);
  name.push_back('-');
  for (char c : lun_label) name.push_back(IsNameChar(c) ? c : '_');
  return name;
}

std::string JobKeyOfSnapshotName(std::string_view name) {
  if (name.substr(0, kSnapshotPrefix.size()) != kSnapshotPrefix) return "";
  const std::string_view rest = name.substr(kSnapshotPrefix.size());
  const std::size_t dash = rest.find('-');
  if (dash == std::string_view::npos || dash + 1 == rest.size()) return "";
  const std::string_view key = rest.substr(0, dash);
  if (!ValidateJobKey(key).ok()) return "";
  return std::string(key);
}

Status BackendSet::Add(std::unique_ptr<ArrayBackend> backend) {
  if (!backend) return Error(Code::kInvalidArgument, "null backend");
  const std::string name = backend->name();
  if (backends_.count(name) != 0) {
    return Error(Code::kConflict, "backend '" + name + "' registered twice");
  }
  backends_.emplace(name, std::move(backend));
  return Status::Ok();
}

ArrayBackend* BackendSet::Find(std::string_view name) const {
  auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : it->second.get();
}

std::vector<std::string> BackendSet::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, backend] : backends_) names.push_back(name);
  return names;
}

}  // namespace qb::arrays
