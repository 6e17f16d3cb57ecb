#include "guest-agent/windows/service_lifecycle.h"

#include <gtest/gtest.h>

#include <vector>

namespace qb::agent::win {
namespace {

struct Report {
  ServiceState state;
  bool accepts_stop;
  std::uint32_t exit_code;
  std::chrono::milliseconds wait_hint;
};

class RecordingSink final : public ServiceStatusSink {
 public:
  void Report(ServiceState state, bool accepts_stop, std::uint32_t exit_code,
              std::chrono::milliseconds wait_hint) override {
    reports.push_back({state, accepts_stop, exit_code, wait_hint});
  }
  std::vector<win::Report> reports;
};

TEST(ServiceLifecycle, StartRunStopReportsEveryStateOnce) {
  RecordingSink sink;
  int stops = 0;
  ServiceLifecycle lc(sink, [&] { ++stops; });
  lc.Starting();
  lc.Running();
  EXPECT_TRUE(lc.OnControl(ServiceControl::kStop));
  lc.Stopped(0);
  ASSERT_EQ(sink.reports.size(), 4u);
  EXPECT_EQ(sink.reports[0].state, ServiceState::kStartPending);
  EXPECT_FALSE(sink.reports[0].accepts_stop);
  EXPECT_GT(sink.reports[0].wait_hint.count(), 0);
  EXPECT_EQ(sink.reports[1].state, ServiceState::kRunning);
  EXPECT_TRUE(sink.reports[1].accepts_stop);
  EXPECT_EQ(sink.reports[2].state, ServiceState::kStopPending);
  EXPECT_FALSE(sink.reports[2].accepts_stop);
  EXPECT_EQ(sink.reports[3].state, ServiceState::kStopped);
  EXPECT_EQ(stops, 1);
}

TEST(ServiceLifecycle, RepeatedStopsAndShutdownAskOnce) {
  RecordingSink sink;
  int stops = 0;
  ServiceLifecycle lc(sink, [&] { ++stops; });
  lc.Starting();
  lc.Running();
  lc.OnControl(ServiceControl::kStop);
  lc.OnControl(ServiceControl::kShutdown);
  lc.OnControl(ServiceControl::kPreshutdown);
  EXPECT_EQ(stops, 1);
  EXPECT_EQ(lc.state(), ServiceState::kStopPending);
}

TEST(ServiceLifecycle, StopDuringStartWinsOverRunning) {
  RecordingSink sink;
  int stops = 0;
  ServiceLifecycle lc(sink, [&] { ++stops; });
  lc.Starting();
  lc.OnControl(ServiceControl::kStop);
  lc.Running();
  EXPECT_EQ(lc.state(), ServiceState::kStopPending);
  EXPECT_EQ(stops, 1);
}

TEST(ServiceLifecycle, InterrogateReReportsAndUnknownIsNotHandled) {
  RecordingSink sink;
  ServiceLifecycle lc(sink, [] {});
  lc.Starting();
  lc.Running();
  EXPECT_TRUE(lc.OnControl(ServiceControl::kInterrogate));
  ASSERT_EQ(sink.reports.size(), 3u);
  EXPECT_EQ(sink.reports[2].state, ServiceState::kRunning);
  EXPECT_FALSE(lc.OnControl(ServiceControl::kOther));
  EXPECT_EQ(sink.reports.size(), 3u);
}

TEST(ServiceLifecycle, FailureExitCodeReachesTheScm) {
  RecordingSink sink;
  ServiceLifecycle lc(sink, [] {});
  lc.Starting();
  lc.Stopped(1066);  // ERROR_SERVICE_SPECIFIC_ERROR
  EXPECT_EQ(sink.reports.back().state, ServiceState::kStopped);
  EXPECT_EQ(sink.reports.back().exit_code, 1066u);
}

}  // namespace
}  // namespace qb::agent::win
