#include "protocol/messages.h"

namespace qb::proto {

const char* FreezeModeName(FreezeMode mode) {
  switch (mode) {
    case FreezeMode::kFsfreeze:
      return "fsfreeze";
    case FreezeMode::kVssCopy:
      return "vss-copy";
    case FreezeMode::kVssFull:
      return "vss-full";
  }
  return "unknown";
}

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnknown:
      return "unknown";
    case ErrorCode::kBadRequest:
      return "bad-request";
    case ErrorCode::kVersionMismatch:
      return "version-mismatch";
    case ErrorCode::kBusy:
      return "busy";
    case ErrorCode::kUnknownJob:
      return "unknown-job";
    case ErrorCode::kFreezeFailed:
      return "freeze-failed";
    case ErrorCode::kHookFailed:
      return "hook-failed";
    case ErrorCode::kAlreadyFrozen:
      return "already-frozen";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kStaleSession:
      return "stale-session";
    case ErrorCode::kNotFound:
      return "not-found";
  }
  return "unknown";
}

namespace {
constexpr const char* kBodyNames[] = {
    "hello",  "helloReply",    "inventoryRequest", "inventory", "freeze", "frozen", "thaw",
    "thawed", "statusRequest", "status",           "ping",      "pong",   "error"};
static_assert(std::size(kBodyNames) == std::variant_size_v<AgentBody>);
}  // namespace

const char* BodyName(const AgentBody& body) { return kBodyNames[body.index()]; }

bool IsRequest(const AgentBody& body) {
  return std::holds_alternative<Hello>(body) || std::holds_alternative<InventoryRequest>(body) ||
         std::holds_alternative<Freeze>(body) || std::holds_alternative<Thaw>(body) ||
         std::holds_alternative<StatusRequest>(body) || std::holds_alternative<Ping>(body);
}

}  // namespace qb::proto
