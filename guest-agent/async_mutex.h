// A mutex for coroutines on one executor: Lock() suspends instead of blocking the thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <memory>

namespace qb::agent {

// Not thread-safe: every call on the same (single-threaded) executor. FIFO.
class AsyncMutex {
 public:
  explicit AsyncMutex(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  // Releases the lock on destruction.
  class Guard {
   public:
    explicit Guard(AsyncMutex* m) : m_(m) {}
    Guard(Guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (m_) m_->Unlock();
    }

   private:
    AsyncMutex* m_;
  };

  // Waits until the lock is free and takes it. The mutex must outlive the Guard.
  boost::asio::awaitable<Guard> Lock() {
    if (!locked_) {
      locked_ = true;
      co_return Guard(this);
    }
    auto waiter = std::make_shared<Waiter>(ex_);
    waiters_.push_back(waiter);
    while (!waiter->granted) {
      co_await waiter->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    co_return Guard(this);
  }

  bool locked() const { return locked_; }

 private:
  struct Waiter {
    explicit Waiter(boost::asio::any_io_executor ex)
        : timer(ex, boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer timer;
    bool granted = false;
  };

  void Unlock() {
    if (waiters_.empty()) {
      locked_ = false;
      return;
    }
    auto next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;  // ownership passes directly; locked_ stays true
    next->timer.cancel();
  }

  boost::asio::any_io_executor ex_;
  bool locked_ = false;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace qb::agent
