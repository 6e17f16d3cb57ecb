#include "host-daemon/link/reply_check.h"

#include <set>

#include "protocol/codec.h"

namespace qb::link {
namespace {

template <typename Body>
Result<Body> Expect(const proto::AgentMessage& reply, const char* wanted) {
  if (const auto* error = std::get_if<proto::ErrorReply>(&reply.body))
    return StatusFromAgentError(*error);
  if (const auto* body = std::get_if<Body>(&reply.body)) return *body;
  return Error(Code::kProtocolError, std::string("agent answered ") + proto::BodyName(reply.body) +
                                         " where " + wanted + " was expected");
}

}  // namespace

Status StatusFromAgentError(const proto::ErrorReply& error) {
  Code code = Code::kInternal;
  switch (error.code) {
    case proto::ErrorCode::kBadRequest:
      code = Code::kInvalidArgument;
      break;
    case proto::ErrorCode::kVersionMismatch:
      code = Code::kVersionMismatch;
      break;
    case proto::ErrorCode::kBusy:
      code = Code::kBusy;
      break;
    case proto::ErrorCode::kUnknownJob:
      code = Code::kNotFound;
      break;
    case proto::ErrorCode::kFreezeFailed:
      code = Code::kIoError;
      break;
    case proto::ErrorCode::kHookFailed:
      code = Code::kIoError;
      break;
    case proto::ErrorCode::kAlreadyFrozen:
      code = Code::kAlreadyFrozen;
      break;
    case proto::ErrorCode::kUnsupported:
      code = Code::kUnsupported;
      break;
    case proto::ErrorCode::kStaleSession:
      code = Code::kProtocolError;
      break;
    case proto::ErrorCode::kNotFound:
      code = Code::kNotFound;
      break;
    case proto::ErrorCode::kInternal:
    case proto::ErrorCode::kUnknown:
      code = Code::kInternal;
      break;
  }
  return Error(code,
               std::string("agent: ") + proto::ErrorCodeName(error.code) + ": " + error.message);
}

Result<proto::Frozen> CheckFrozen(const proto::AgentMessage& reply, const proto::Freeze& request) {
  auto frozen = Expect<proto::Frozen>(reply, "frozen");
  if (!frozen.ok()) return frozen;
  if (frozen->job_id != request.job_id) {
    return Error(Code::kProtocolError, "agent answered Frozen for job '" + frozen->job_id +
                                           "' instead of '" + request.job_id + "'");
  }
  std::set<std::string> asked(request.volumes.begin(), request.volumes.end());
  std::set<std::string> seen;
  auto account = [&](const std::string& volume) -> Status {
    if (!request.all_volumes && !asked.contains(volume))
      return Error(Code::kProtocolError, "agent reports volume '" + volume + "' not asked for");
    if (!seen.insert(volume).second)
      return Error(Code::kProtocolError, "agent reports volume '" + volume + "' twice");
    return Status::Ok();
  };
  for (const auto& v : frozen->frozen_volumes) QB_RETURN_IF_ERROR(account(v));
  for (const auto& s : frozen->skipped_volumes) QB_RETURN_IF_ERROR(account(s.volume));
  if (!request.all_volumes && seen.size() != asked.size())
    return Error(Code::kProtocolError, "agent's Frozen leaves requested volumes unaccounted for");
  if (request.lease_ms != 0 && frozen->lease_granted_ms > request.lease_ms) {
    return Error(Code::kProtocolError,
                 "agent granted a lease of " + std::to_string(frozen->lease_granted_ms) +
                     " ms, longer than the " + std::to_string(request.lease_ms) + " ms asked for");
  }
  return frozen;
}

Result<proto::Thawed> CheckThawed(const proto::AgentMessage& reply, const proto::Thaw& request,
                                  const std::vector<std::string>& frozen_volumes) {
  auto thawed = Expect<proto::Thawed>(reply, "thawed");
  if (!thawed.ok()) return thawed;
  if (thawed->job_id != request.job_id) {
    return Error(Code::kProtocolError, "agent answered Thawed for job '" + thawed->job_id +
                                           "' instead of '" + request.job_id + "'");
  }
  if (!frozen_volumes.empty()) {
    std::set<std::string> known(frozen_volumes.begin(), frozen_volumes.end());
    for (const auto& v : thawed->thawed_volumes) {
      if (!known.contains(v))
        return Error(Code::kProtocolError, "agent thawed volume '" + v + "' it never froze");
    }
  }
  if (thawed->held_whole_window && (thawed->lease_expired || !thawed->not_held_reason.empty())) {
    return Error(Code::kProtocolError,
                 "agent's Thawed claims the freeze held but also reports it did not");
  }
  return thawed;
}

Result<proto::HelloReply> CheckHelloReply(const proto::AgentMessage& reply) {
  auto hello = Expect<proto::HelloReply>(reply, "hello reply");
  if (!hello.ok()) return hello;
  QB_RETURN_IF_ERROR(proto::CheckProtocolVersion(hello->protocol_major, hello->protocol_minor));
  return hello;
}

Result<proto::Inventory> CheckInventory(const proto::AgentMessage& reply) {
  auto inventory = Expect<proto::Inventory>(reply, "inventory");
  if (!inventory.ok()) return inventory;
  std::set<std::string> disks;
  for (const auto& d : inventory->disks) {
    if (!disks.insert(d.name).second)
      return Error(Code::kProtocolError, "inventory lists disk '" + d.name + "' twice");
  }
  std::set<std::string> volumes;
  for (const auto& v : inventory->volumes) {
    if (!volumes.insert(v.name).second)
      return Error(Code::kProtocolError, "inventory lists volume '" + v.name + "' twice");
    for (const auto& d : v.disk_names) {
      if (!disks.contains(d)) {
        return Error(Code::kProtocolError,
                     "inventory volume '" + v.name + "' lies on unlisted disk '" + d + "'");
      }
    }
  }
  return inventory;
}

Result<proto::AgentStatus> CheckStatus(const proto::AgentMessage& reply) {
  return Expect<proto::AgentStatus>(reply, "status");
}

}  // namespace qb::link
