// Small RAII helpers for the daemon tests: a temp dir removed on destruction, and an
// io_context running on its own thread (the daemon's single io thread in miniature).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

namespace qb::testing {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "qb-daemon-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

class IoThread {
 public:
  IoThread() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    work_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

  // Runs an awaitable on the io thread and waits for its result.
  template <typename T>
  T Run(boost::asio::awaitable<T> op) {
    return Spawn(std::move(op)).get();
  }
  // Starts an awaitable on the io thread; the future holds its result.
  template <typename T>
  std::future<T> Spawn(boost::asio::awaitable<T> op) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    boost::asio::co_spawn(
        io_,
        [](boost::asio::awaitable<T> inner,
           std::shared_ptr<std::promise<T>> p) -> boost::asio::awaitable<void> {
          if constexpr (std::is_void_v<T>) {
            co_await std::move(inner);
            p->set_value();
          } else {
            p->set_value(co_await std::move(inner));
          }
        }(std::move(op), promise),
        boost::asio::detached);
    return future;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

// Polls `predicate` every few milliseconds until it holds or `timeout` passes.
template <typename Predicate>
bool Eventually(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

}  // namespace qb::testing
