#include "guest-agent/windows/vss/named_event_hold.h"

// clang-format off
#include <windows.h>
// clang-format on

#include <array>

namespace qb::agent::win {

namespace {

// Owns one kernel handle.
class Handle {
 public:
  Handle() = default;
  explicit Handle(HANDLE h) : h_(h) {}
  ~Handle() { Reset(); }
  Handle(Handle&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      Reset();
      h_ = o.h_;
      o.h_ = nullptr;
    }
    return *this;
  }
  HANDLE get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }
  void Reset() {
    if (h_) CloseHandle(h_);
    h_ = nullptr;
  }

 private:
  HANDLE h_ = nullptr;
};

constexpr std::array<HoldEnd, 3> kEnds = {HoldEnd::kCommitted, HoldEnd::kAborted,
                                          HoldEnd::kHoldLimit};

std::string Name(const std::string& prefix, const std::string& set, const char* what) {
  return set.empty() ? prefix + "." + what : prefix + "." + set + "." + what;
}

Handle Create(const std::string& name) {
  return Handle(CreateEventA(nullptr, TRUE, FALSE, name.c_str()));
}

Handle Open(const std::string& name) {
  return Handle(OpenEventA(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name.c_str()));
}

bool IsSet(const Handle& h) { return h && WaitForSingleObject(h.get(), 0) == WAIT_OBJECT_0; }

std::string EndName(HoldEnd end) { return std::string("end.") + HoldEndName(end); }

}  // namespace

struct NamedEventProviderLink::Events {
  Handle armed, holding, commit, abort;
  std::array<Handle, 3> ends;
  // Owned by the arming thread for the set's life: if the agent dies, the provider's wait sees
  // it abandoned and lets go at once instead of holding writes to its own limit.
  Handle alive;
  DWORD alive_owner = 0;
};

NamedEventProviderLink::NamedEventProviderLink(std::string prefix) : prefix_(std::move(prefix)) {}
NamedEventProviderLink::~NamedEventProviderLink() = default;

Status NamedEventProviderLink::Arm(const std::string& set_id) {
  if (set_id.empty()) return Error(Code::kInvalidArgument, "empty snapshot set id");
  auto e = std::make_unique<Events>();
  e->armed = Create(Name(prefix_, "", "armed"));
  e->holding = Create(Name(prefix_, set_id, "holding"));
  e->commit = Create(Name(prefix_, set_id, "commit"));
  e->abort = Create(Name(prefix_, set_id, "abort"));
  bool ok = e->armed && e->holding && e->commit && e->abort;
  for (std::size_t i = 0; i < kEnds.size(); ++i) {
    e->ends[i] = Create(Name(prefix_, set_id, EndName(kEnds[i]).c_str()));
    ok = ok && e->ends[i];
  }
  e->alive = Handle(CreateMutexA(nullptr, TRUE, Name(prefix_, set_id, "alive").c_str()));
  e->alive_owner = GetCurrentThreadId();
  ok = ok && e->alive;
  if (!ok) {
    return Error(Code::kIoError, "CreateEvent for the provider channel failed: error " +
                                     std::to_string(GetLastError()));
  }
  std::lock_guard lock(mu_);
  events_ = std::move(e);
  released_ = false;
  return Status::Ok();
}

bool NamedEventProviderLink::WaitHolding(std::chrono::milliseconds timeout) {
  HANDLE h = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!events_) return false;
    h = events_->holding.get();
  }
  return WaitForSingleObject(h, static_cast<DWORD>(timeout.count())) == WAIT_OBJECT_0;
}

void NamedEventProviderLink::Release(bool commit) {
  std::lock_guard lock(mu_);
  if (!events_ || released_) return;
  released_ = true;
  SetEvent(commit ? events_->commit.get() : events_->abort.get());
}

HoldEnd NamedEventProviderLink::hold_end() {
  std::lock_guard lock(mu_);
  if (!events_) return HoldEnd::kNotEnded;
  for (std::size_t i = 0; i < kEnds.size(); ++i) {
    if (IsSet(events_->ends[i])) return kEnds[i];
  }
  return HoldEnd::kNotEnded;
}

HoldEnd NamedEventProviderLink::WaitHoldEnd(std::chrono::milliseconds timeout) {
  HANDLE handles[3];
  {
    std::lock_guard lock(mu_);
    if (!events_ || !IsSet(events_->holding)) return HoldEnd::kNotEnded;
    for (std::size_t i = 0; i < kEnds.size(); ++i) handles[i] = events_->ends[i].get();
  }
  DWORD r = WaitForMultipleObjects(3, handles, FALSE, static_cast<DWORD>(timeout.count()));
  if (r >= WAIT_OBJECT_0 && r < WAIT_OBJECT_0 + 3) return kEnds[r - WAIT_OBJECT_0];
  return HoldEnd::kNotEnded;
}

void NamedEventProviderLink::Disarm() {
  std::lock_guard lock(mu_);
  if (events_ && events_->alive && events_->alive_owner == GetCurrentThreadId()) {
    ReleaseMutex(events_->alive.get());
  }
  events_.reset();
}

NamedEventHoldChannel::NamedEventHoldChannel(std::string prefix) : prefix_(std::move(prefix)) {}
NamedEventHoldChannel::~NamedEventHoldChannel() = default;

bool NamedEventHoldChannel::IsArmed(const std::string& set_id) {
  if (!Open(Name(prefix_, set_id, "holding"))) return false;
  std::lock_guard lock(mu_);
  set_id_ = set_id;
  return true;
}

bool NamedEventHoldChannel::AnyArmed() {
  return static_cast<bool>(Open(Name(prefix_, "", "armed")));
}

void NamedEventHoldChannel::SignalHolding() {
  std::string set;
  {
    std::lock_guard lock(mu_);
    set = set_id_;
  }
  Handle h = Open(Name(prefix_, set, "holding"));
  if (h) SetEvent(h.get());
}

ReleaseOrder NamedEventHoldChannel::WaitRelease(std::chrono::milliseconds limit) {
  std::string set;
  {
    std::lock_guard lock(mu_);
    set = set_id_;
  }
  Handle commit = Open(Name(prefix_, set, "commit"));
  Handle abort = Open(Name(prefix_, set, "abort"));
  Handle alive(OpenMutexA(SYNCHRONIZE, FALSE, Name(prefix_, set, "alive").c_str()));
  if (!commit || !abort || !alive) return ReleaseOrder::kAbort;  // the agent went away
  HANDLE handles[3] = {commit.get(), abort.get(), alive.get()};
  const DWORD r = WaitForMultipleObjects(3, handles, FALSE, static_cast<DWORD>(limit.count()));
  if (r == WAIT_OBJECT_0) return ReleaseOrder::kCommit;
  if (r == WAIT_OBJECT_0 + 1) return ReleaseOrder::kAbort;
  if (r == WAIT_OBJECT_0 + 2 || r == WAIT_ABANDONED_0 + 2) {
    // We own the agent's mutex: it died (abandoned) or let the set go without releasing us.
    ReleaseMutex(alive.get());
    return ReleaseOrder::kAbort;
  }
  return ReleaseOrder::kTimeout;
}

void NamedEventHoldChannel::SignalHoldEnded(HoldEnd end) {
  if (end == HoldEnd::kNotEnded) return;
  std::string set;
  {
    std::lock_guard lock(mu_);
    set = set_id_;
  }
  Handle h = Open(Name(prefix_, set, EndName(end).c_str()));
  if (h) SetEvent(h.get());
}

}  // namespace qb::agent::win
