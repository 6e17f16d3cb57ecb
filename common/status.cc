#include "common/status.h"

namespace qb {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid-argument";
    case Code::kNotFound:
      return "not-found";
    case Code::kTimeout:
      return "timeout";
    case Code::kUnsupported:
      return "unsupported";
    case Code::kGuestUnreachable:
      return "guest-unreachable";
    case Code::kArrayError:
      return "array-error";
    case Code::kBusy:
      return "busy";
    case Code::kProtocolError:
      return "protocol-error";
    case Code::kVersionMismatch:
      return "version-mismatch";
    case Code::kIoError:
      return "io-error";
    case Code::kCancelled:
      return "cancelled";
    case Code::kInternal:
      return "internal";
    case Code::kAlreadyFrozen:
      return "already-frozen";
    case Code::kPermissionDenied:
      return "permission-denied";
    case Code::kConflict:
      return "conflict";
    case Code::kPartial:
      return "partial";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

}  // namespace qb
