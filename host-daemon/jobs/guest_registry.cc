#include "host-daemon/jobs/guest_registry.h"

namespace qb::jobs {

Status GuestRegistry::Add(Guest guest) {
  if (!guest.link) return Error(Code::kInvalidArgument, "guest " + guest.spec.name + ": no link");
  auto name = guest.spec.name;
  if (!guests_.emplace(name, std::move(guest)).second)
    return Error(Code::kConflict, "guest " + name + " is already registered");
  return Status::Ok();
}

Guest* GuestRegistry::Find(const std::string& name) {
  auto it = guests_.find(name);
  return it == guests_.end() ? nullptr : &it->second;
}

void GuestRegistry::Remove(const std::string& name) {
  auto it = guests_.find(name);
  if (it == guests_.end()) return;
  it->second.link->Stop();
  guests_.erase(it);
}

std::optional<Guest> GuestRegistry::Detach(const std::string& name) {
  auto it = guests_.find(name);
  if (it == guests_.end()) return std::nullopt;
  Guest guest = std::move(it->second);
  guests_.erase(it);
  return guest;
}

std::vector<Guest*> GuestRegistry::All() {
  std::vector<Guest*> out;
  for (auto& [name, guest] : guests_) out.push_back(&guest);
  return out;
}

void GuestRegistry::StopAll() {
  for (auto& [name, guest] : guests_) guest.link->Stop();
}

}  // namespace qb::jobs
