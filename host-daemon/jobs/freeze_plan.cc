#include "host-daemon/jobs/freeze_plan.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace qb::jobs {

std::string NormalizeWwn(const std::string& wwn) {
  std::string s;
  for (char c : wwn) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* prefix : {"0x", "naa."}) {
    if (s.rfind(prefix, 0) == 0) s = s.substr(std::char_traits<char>::length(prefix));
  }
  std::erase_if(s, [](char c) { return c == ':' || c == '-' || c == ' '; });
  return s;
}

Result<FreezePlan> PlanFreeze(const GuestSpec& spec, const proto::Inventory& inventory,
                              bool allow_partial) {
  FreezePlan plan;
  std::set<std::string> snapshotted_disks;
  for (const auto& lun : spec.luns) {
    bool matched = false;
    const auto lun_wwn = NormalizeWwn(lun.wwn);
    for (const auto& disk : inventory.disks) {
      bool by_wwn = !lun_wwn.empty() && NormalizeWwn(disk.wwn) == lun_wwn;
      auto mapped = spec.disk_map.find(disk.name);
      bool by_map = mapped != spec.disk_map.end() && mapped->second == lun.volume;
      if (by_wwn || by_map) {
        snapshotted_disks.insert(disk.name);
        matched = true;
      }
    }
    if (!matched) {
      return Error(Code::kInvalidArgument,
                   "guest " + spec.name + ": LUN " + lun.backend + ":" + lun.volume +
                       (lun_wwn.empty() ? std::string(" (no wwn)") : " (wwn " + lun_wwn + ")") +
                       " matches no disk in the guest's inventory; set its wwn or a disk mapping");
    }
  }
  for (const auto& volume : inventory.volumes) {
    if (volume.disk_names.empty()) continue;  // tmpfs and the like: nothing on any disk
    auto on_luns =
        std::count_if(volume.disk_names.begin(), volume.disk_names.end(),
                      [&](const std::string& d) { return snapshotted_disks.contains(d); });
    if (on_luns == 0) {
      plan.not_covered.push_back(volume.name);
      continue;
    }
    if (!volume.freezable) {
      return Error(Code::kUnsupported, "guest " + spec.name + ": volume " + volume.name + " (" +
                                           volume.fs_type +
                                           ") lies on a snapshotted LUN but cannot be frozen");
    }
    if (static_cast<std::size_t>(on_luns) != volume.disk_names.size()) {
      if (!allow_partial) {
        return Error(Code::kInvalidArgument,
                     "guest " + spec.name + ": volume " + volume.name +
                         " spans snapshotted and other disks; use --allow-partial to accept");
      }
      plan.partial.push_back(volume.name);
      plan.warnings.push_back("volume " + volume.name +
                              " spans snapshotted and other disks: only part of it is captured");
    }
    plan.freeze_volumes.push_back(volume.name);
  }
  if (plan.freeze_volumes.empty()) {
    return Error(Code::kInvalidArgument,
                 "guest " + spec.name + ": no volume of the guest lies on the snapshotted LUNs");
  }
  return plan;
}

}  // namespace qb::jobs
