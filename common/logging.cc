#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace qb {

std::shared_ptr<spdlog::logger> SetupLogging(const std::string& name, const LogOptions& options) {
  std::vector<spdlog::sink_ptr> sinks;
  if (options.to_stderr) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (!options.file.empty()) {
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file));
  }
  auto logger = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
  auto level = spdlog::level::from_str(options.level);
  bool known = level != spdlog::level::off || options.level == "off";
  logger->set_level(known ? level : spdlog::level::info);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %n[%P] %l: %v");
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  if (!known) logger->warn("unknown log level '{}', using info", options.level);
  return logger;
}

void MemorySink::sink_it_(const spdlog::details::log_msg& msg) {
  if (capacity_ == 0) {
    ++dropped_;
    return;
  }
  if (lines_.size() == capacity_) {
    lines_.pop_front();
    ++dropped_;
  }
  lines_.emplace_back(msg);
}

std::vector<spdlog::details::log_msg_buffer> MemorySink::Drain(std::size_t* dropped) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<spdlog::details::log_msg_buffer> out(std::make_move_iterator(lines_.begin()),
                                                   std::make_move_iterator(lines_.end()));
  lines_.clear();
  if (dropped) *dropped = dropped_;
  dropped_ = 0;
  return out;
}

FrozenModeLog::FrozenModeLog(std::shared_ptr<spdlog::logger> logger, std::size_t capacity)
    : logger_(std::move(logger)), memory_(std::make_shared<MemorySink>(capacity)) {
  saved_ = logger_->sinks();
  logger_->sinks() = {memory_};
}

FrozenModeLog::~FrozenModeLog() { Release(); }

void FrozenModeLog::Release() {
  if (released_) return;
  released_ = true;
  logger_->sinks() = saved_;
  std::size_t dropped = 0;
  auto lines = memory_->Drain(&dropped);
  if (dropped > 0) logger_->warn("{} log lines dropped while frozen", dropped);
  for (const auto& record : lines) {
    for (auto& sink : saved_) {
      if (sink->should_log(record.level)) sink->log(record);
    }
  }
  for (auto& sink : saved_) sink->flush();
}

}  // namespace qb
