#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

namespace qb {
namespace {

TEST(FrozenModeLog, DivertsToMemoryAndReplaysInOrder) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  // An explicit "\n" line end: spdlog's default is "\r\n" on Windows, where this test also runs.
  sink->set_formatter(
      std::make_unique<spdlog::pattern_formatter>("%l %v", spdlog::pattern_time_type::local, "\n"));
  auto logger = std::make_shared<spdlog::logger>("t", sink);
  logger->info("before");
  {
    FrozenModeLog frozen(logger);
    logger->info("while frozen 1");
    logger->warn("while frozen 2");
    EXPECT_EQ(out.str(), "info before\n") << "nothing may reach the real sink while frozen";
  }
  logger->info("after");
  EXPECT_EQ(out.str(), "info before\ninfo while frozen 1\nwarning while frozen 2\ninfo after\n");
}

TEST(FrozenModeLog, BoundedAndCountsDrops) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_pattern("%v");
  auto logger = std::make_shared<spdlog::logger>("t", sink);
  {
    FrozenModeLog frozen(logger, 2);
    for (int i = 0; i < 5; ++i) logger->info("line {}", i);
  }
  EXPECT_NE(out.str().find("3 log lines dropped"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("line 4"), std::string::npos);
  EXPECT_EQ(out.str().find("line 0"), std::string::npos);
}

}  // namespace
}  // namespace qb
