// Runs blocking calls (FIFREEZE, hooks, sysfs walks) on a worker thread and resumes the calling
// coroutine on its own executor (the io thread).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <type_traits>

namespace qb::agent {

namespace asio = boost::asio;

// Runs a copy of `work()` on `pool` and returns its result on the caller's executor. `work`
// must not throw. The pool must be joined before the io_context is destroyed.
// `work` is taken by reference and must be a named object in the caller: g++ 12 destroys some
// temporaries inside a co_await expression twice (see common brief), lambdas included.
template <typename F>
asio::awaitable<std::invoke_result_t<F>> RunOnWorker(asio::thread_pool& pool, const F& work) {
  using R = std::invoke_result_t<F>;
  struct State {
    explicit State(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    std::optional<R> result;
  };
  auto io = co_await asio::this_coro::executor;
  auto state = std::make_shared<State>(io);
  asio::post(pool, [state, io, work]() mutable {
    R value = work();
    asio::post(io, [state, value = std::move(value)]() mutable {
      state->result.emplace(std::move(value));
      state->done.cancel();
    });
  });
  while (!state->result) {
    co_await state->done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return std::move(*state->result);
}

}  // namespace qb::agent
