// Runs an awaitable on another executor (a link's strand, the worker pool) and resumes the
// caller on its own executor with the result. Works for value types without a default
// constructor (qb::Result<T>), which asio::co_spawn's use_awaitable completion needs.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <utility>

namespace qb::link {

template <typename T, typename Executor>
boost::asio::awaitable<T> RunOn(const Executor& executor, boost::asio::awaitable<T> op) {
  auto wrapped = [](boost::asio::awaitable<T> inner) -> boost::asio::awaitable<std::optional<T>> {
    co_return co_await std::move(inner);
  }(std::move(op));
  std::optional<T> result =
      co_await boost::asio::co_spawn(executor, std::move(wrapped), boost::asio::use_awaitable);
  co_return std::move(*result);
}

}  // namespace qb::link
