// The freeze lease watchdog: a deadline kept on its own thread, independent of the io_context,
// so a stuck io thread (or a host that went silent) cannot keep the guest frozen. When the
// lease runs out, the callback (the agent's thaw) runs on the watchdog thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace qb::agent::win {

class FreezeLease {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts the watchdog thread (idle until Arm()).
  FreezeLease();
  // Stops the thread. A lease still armed is dropped WITHOUT running its callback: the owner
  // thaws on its own shutdown path first.
  ~FreezeLease();
  FreezeLease(const FreezeLease&) = delete;
  FreezeLease& operator=(const FreezeLease&) = delete;

  // Arms a lease ending at `deadline`; `on_expiry` runs once on the watchdog thread if End() is
  // not called before. Replaces an armed lease (whose callback then never runs).
  void Arm(Clock::time_point deadline, std::function<void()> on_expiry);

  // Ends the lease. True: it was still running, the callback will never run. False: it had
  // already expired (or was never armed); returns only after the callback has finished.
  bool End();

  // When the current / last lease expired (nullopt if it did not).
  std::optional<Clock::time_point> expired_at() const;

 private:
  void Run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool armed_ = false;
  bool running_callback_ = false;
  Clock::time_point deadline_;
  std::function<void()> on_expiry_;
  std::optional<Clock::time_point> expired_at_;
  std::thread thread_;
};

}  // namespace qb::agent::win
