// Expected failures as values. Exceptions are reserved for bugs and are caught at session
// boundaries (see DESIGN.md); everything a peer, the array or the OS can do wrong is a Status.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace qb {

// Stable codes: they cross process boundaries (control protocol, exit codes), so values are
// never renumbered; add new ones at the end.
enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,    // the caller asked for something malformed (usage, config typo)
  kNotFound = 2,           // unknown VM, snapshot, job, mount point
  kTimeout = 3,            // a deadline passed before the operation completed
  kUnsupported = 4,        // the backend / file system / platform cannot do this
  kGuestUnreachable = 5,   // no agent link, or it went away
  kArrayError = 6,         // the array (backend) reported a failure
  kBusy = 7,               // another job owns the VM, or the agent is in frozen mode
  kProtocolError = 8,      // a peer sent bytes that do not decode or violate the protocol
  kVersionMismatch = 9,    // incompatible protocol major version
  kIoError = 10,           // an OS call failed (errno in the message)
  kCancelled = 11,         // the operation was cancelled by its owner
  kInternal = 12,          // a bug; message says where
  kAlreadyFrozen = 13,     // someone else holds a freeze on this file system (EBUSY)
  kPermissionDenied = 14,  // not allowed (e.g. rollback while running, file mode)
  kConflict = 15,          // state conflict (image in another group, name collision)
  kPartial = 16,           // part of a group operation succeeded
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "timeout: array call exceeded 4.5s deadline"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context` ("freeze /mnt/a: ...").
  Status WithContext(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status Error(Code code, std::string message) { return Status(code, std::move(message)); }

// Either a value or a non-OK Status. Accessing value() of an error is a bug (asserts).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace qb

// Propagates a non-OK Status from an expression returning Status.
#define QB_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::qb::Status qb_status_ = (expr);        \
    if (!qb_status_.ok()) return qb_status_; \
  } while (0)
