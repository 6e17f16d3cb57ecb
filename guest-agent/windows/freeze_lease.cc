#include "guest-agent/windows/freeze_lease.h"

namespace qb::agent::win {

FreezeLease::FreezeLease() : thread_([this] { Run(); }) {}

FreezeLease::~FreezeLease() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    armed_ = false;
    cv_.notify_all();
  }
  thread_.join();
}

void FreezeLease::Arm(Clock::time_point deadline, std::function<void()> on_expiry) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !running_callback_; });
  armed_ = true;
  deadline_ = deadline;
  on_expiry_ = std::move(on_expiry);
  expired_at_.reset();
  cv_.notify_all();
}

bool FreezeLease::End() {
  std::unique_lock lock(mu_);
  if (armed_) {
    armed_ = false;
    on_expiry_ = nullptr;
    cv_.notify_all();
    return true;
  }
  cv_.wait(lock, [&] { return !running_callback_; });
  return false;
}

std::optional<FreezeLease::Clock::time_point> FreezeLease::expired_at() const {
  std::lock_guard lock(mu_);
  return expired_at_;
}

void FreezeLease::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (!armed_) {
      cv_.wait(lock);
      continue;
    }
    const auto deadline = deadline_;
    if (cv_.wait_until(lock, deadline, [&] { return stop_ || !armed_ || deadline_ != deadline; })) {
      continue;  // ended, re-armed or stopping
    }
    armed_ = false;
    expired_at_ = Clock::now();
    running_callback_ = true;
    auto callback = std::move(on_expiry_);
    on_expiry_ = nullptr;
    lock.unlock();
    if (callback) callback();
    lock.lock();
    running_callback_ = false;
    cv_.notify_all();
  }
}

}  // namespace qb::agent::win
