#include "host-daemon/arrays/rbd/abandonable_calls.h"

#include <algorithm>
#include <exception>
#include <system_error>
#include <vector>

namespace qb::arrays::rbd {

AbandonableCalls::~AbandonableCalls() {
  std::list<std::shared_ptr<Call>> calls;
  {
    std::lock_guard lock(mu_);
    calls.swap(calls_);
  }
  for (auto& call : calls) call->thread.join();
}

Status AbandonableCalls::Run(const std::string& key, std::string_view what,
                             std::function<Status()> call,
                             std::chrono::steady_clock::time_point deadline) {
  ReapFinished();
  auto entry = std::make_shared<Call>();
  entry->key = key;
  try {
    // The thread only touches `entry` under mu_, so starting it before it is listed is safe.
    entry->thread = std::thread([this, entry, call = std::move(call)] {
      Status result;
      try {
        result = call();
      } catch (const std::exception& e) {
        result = Error(Code::kInternal, std::string("exception in array call: ") + e.what());
      }
      {
        std::lock_guard lock(mu_);
        entry->result = std::move(result);
        entry->done = true;
      }
      ended_.notify_all();
    });
  } catch (const std::system_error& e) {
    return Error(Code::kInternal,
                 std::string("cannot start a thread for ") + std::string(what) + ": " + e.what());
  }
  std::unique_lock lock(mu_);
  calls_.push_back(entry);
  if (ended_.wait_until(lock, deadline, [&] { return entry->done; })) {
    return entry->result;
  }
  return Error(Code::kTimeout, std::string(what) +
                                   " did not finish by its deadline; it is still running and "
                                   "what it creates can be found by its job key");
}

bool AbandonableCalls::WaitForKey(const std::string& key,
                                  std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mu_);
  return ended_.wait_until(lock, until, [&] {
    return std::none_of(calls_.begin(), calls_.end(),
                        [&](const auto& call) { return call->key == key && !call->done; });
  });
}

std::size_t AbandonableCalls::Running() const {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(
      std::count_if(calls_.begin(), calls_.end(), [](const auto& call) { return !call->done; }));
}

void AbandonableCalls::ReapFinished() {
  std::vector<std::shared_ptr<Call>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = calls_.begin(); it != calls_.end();) {
      if ((*it)->done) {
        finished.push_back(*it);
        it = calls_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& call : finished) call->thread.join();
}

}  // namespace qb::arrays::rbd
