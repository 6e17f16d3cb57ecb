// Logging setup shared by the agent, the daemon and the tools.
//
// The agent must write nothing to any guest file system while it holds a freeze (a write to a
// frozen file system blocks, and the agent would deadlock against itself). FrozenModeLog lets it
// divert the process logger to memory for the frozen window and replay the lines afterwards.
#pragma once

#include <spdlog/details/log_msg_buffer.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace qb {

struct LogOptions {
  std::string level = "info";  // trace|debug|info|warn|error|critical|off
  std::string file;            // empty: stderr only
  bool to_stderr = true;
};

// Creates the process logger from `options` and makes it spdlog's default. Returns the logger.
// An unknown level name falls back to "info" and says so on the logger.
std::shared_ptr<spdlog::logger> SetupLogging(const std::string& name, const LogOptions& options);

// A bounded in-memory sink. Keeps at most `capacity` formatted lines; when full, the oldest are
// dropped and counted. Thread-safe (spdlog's mutex sink base).
class MemorySink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit MemorySink(std::size_t capacity) : capacity_(capacity) {}

  // Moves the buffered records out (original time and level kept) and resets the drop counter.
  std::vector<spdlog::details::log_msg_buffer> Drain(std::size_t* dropped = nullptr);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  std::size_t capacity_;
  std::deque<spdlog::details::log_msg_buffer> lines_;
  std::size_t dropped_ = 0;
};

// While alive, `logger` writes only to memory; on destruction (or Release()) its original sinks
// are restored and the buffered lines are written to them, prefixed by a count of lines dropped.
// Must be created and destroyed on the same thread; the logger may be used from any thread.
class FrozenModeLog {
 public:
  FrozenModeLog(std::shared_ptr<spdlog::logger> logger, std::size_t capacity = 4096);
  ~FrozenModeLog();
  FrozenModeLog(const FrozenModeLog&) = delete;
  FrozenModeLog& operator=(const FrozenModeLog&) = delete;

  void Release();

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<MemorySink> memory_;
  std::vector<spdlog::sink_ptr> saved_;
  bool released_ = false;
};

}  // namespace qb
