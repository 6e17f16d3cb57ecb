// Runs blocking calls that cannot be cancelled (librbd's snapshot calls) so that the caller can
// stop waiting at a deadline while the call goes on to its own end.
//
// Why: inside a freeze the daemon must get an answer by the deadline and thaw the guest; librbd
// has no cancel, so a call stuck on a stopped OSD only ends when librados' op timeout fires.
// Each call gets a thread of its own; the caller waits for it until the deadline and is told
// kTimeout if it is still running. The call keeps whatever it captured alive, finishes (bounded
// by the librados op timeouts) and its thread is joined later.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace qb::arrays::rbd {

class AbandonableCalls {
 public:
  AbandonableCalls() = default;
  // Joins every call still running: blocks until they end (each is bounded by the librados op
  // timeouts its captures were configured with).
  ~AbandonableCalls();
  AbandonableCalls(const AbandonableCalls&) = delete;
  AbandonableCalls& operator=(const AbandonableCalls&) = delete;

  // Runs `call` on a new thread, tagged with `key`, and waits for it until `deadline`.
  // Returns the call's Status if it ended in time; otherwise kTimeout naming `what` (the call
  // goes on; WaitForKey() can wait for it). `call` must capture by value everything it touches
  // (it may outlive the caller's frame). Thread-safe.
  Status Run(const std::string& key, std::string_view what, std::function<Status()> call,
             std::chrono::steady_clock::time_point deadline);

  // Waits until no call tagged `key` is running, at most until `until`. True when none is.
  // Thread-safe.
  bool WaitForKey(const std::string& key, std::chrono::steady_clock::time_point until);

  // Number of calls still running (for tests).
  std::size_t Running() const;

 private:
  struct Call {
    std::string key;
    std::thread thread;
    bool done = false;  // guarded by mu_
    Status result;      // guarded by mu_
  };

  // Joins the threads of calls that ended. Never blocks on a running call.
  void ReapFinished();

  mutable std::mutex mu_;
  std::condition_variable ended_;
  std::list<std::shared_ptr<Call>> calls_;  // guarded by mu_
};

}  // namespace qb::arrays::rbd
