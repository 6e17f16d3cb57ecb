// Drives one coroutine to completion on a test's io_context (which keeps its other work, such
// as lease timers, for later runs).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>

namespace qb::agent::testing {

template <typename T>
T RunCoro(boost::asio::io_context& io, boost::asio::awaitable<T> work) {
  std::optional<T> out;
  boost::asio::co_spawn(
      io,
      [&out, work = std::move(work)]() mutable -> boost::asio::awaitable<void> {
        out.emplace(co_await std::move(work));
      },
      boost::asio::detached);
  io.restart();
  while (!out) io.run_one();
  return std::move(*out);
}

// Runs `io` until `done()` holds or `limit` passes; returns done().
inline bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
                     std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(20));
    io.restart();
  }
  return done();
}

}  // namespace qb::agent::testing
