// Measures snapshot latency through RbdBackend on the fixture's single-node cluster: median of
// 20 single-image snapshots and of 20 group snapshots (2 images), each the whole Snapshot()
// call a daemon makes inside the freeze. Prints the figures; asserts only that every call
// succeeded (no timed assertions: the machine is shared and noisy).
#include <gtest/gtest.h>

#include <algorithm>

#include "host-daemon/arrays/rbd/rbd_backend.h"
#include "host-daemon/arrays/rbd/test_cluster.h"

namespace qb::arrays::rbd {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRounds = 20;

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::vector<double> TimeSnapshots(RbdBackend& backend, const std::vector<LunSpec>& luns,
                                  const std::string& key_prefix) {
  std::vector<double> ms;
  for (int i = 0; i < kRounds; ++i) {
    const std::string key = key_prefix + std::to_string(i);
    const auto start = Clock::now();
    Result<std::vector<SnapshotRecord>> records =
        backend.Snapshot(luns, key, start + limits::kDefaultLease);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    EXPECT_TRUE(records.ok()) << records.status().ToString();
  }
  return ms;
}

TEST(RbdLatencyBench, SnapshotAndGroupSnapshotMedians) {
  Result<std::unique_ptr<testing::TestCluster>> cluster = testing::TestCluster::Connect();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  for (const char* name : {"bench-single", "bench-g1", "bench-g2"}) {
    ASSERT_TRUE((*cluster)->CreateImage(name).ok());
    ASSERT_TRUE((*cluster)->Write(name, 0, std::string(1 << 20, 'x')).ok());
  }
  const LunSpec single{"rbd", "rbd/bench-single", ""};
  const std::vector<LunSpec> group{{"rbd", "rbd/bench-g1", ""}, {"rbd", "rbd/bench-g2", ""}};
  {
    RbdBackend backend(testing::ClusterConfig());
    const auto prepare_start = Clock::now();
    ASSERT_TRUE(backend.Prepare({single}, limits::kDefaultLease).ok());
    ASSERT_TRUE(backend.Prepare(group, limits::kDefaultLease).ok());
    const double prepare_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - prepare_start).count();

    const std::vector<double> one = TimeSnapshots(backend, {single}, "b");
    const std::vector<double> two = TimeSnapshots(backend, group, "g");
    const auto find_start = Clock::now();
    Result<std::vector<SnapshotRecord>> found = backend.FindByKey(group, "g7");
    const double find_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - find_start).count();
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->size(), 2u);
    // The bare librbd calls on the same images, to show what the backend adds (the group
    // membership check before and the completeness check after the cut).
    std::vector<double> raw_one, raw_two;
    Result<std::shared_ptr<RbdImage>> image =
        RbdImage::Open(std::shared_ptr<IoCtx>(&(*cluster)->pool(), [](IoCtx*) {}), "bench-single",
                       RbdImage::Mode::kReadWrite);
    ASSERT_TRUE(image.ok());
    for (int i = 0; i < kRounds; ++i) {
      const std::string name = "raw" + std::to_string(i);
      auto start = Clock::now();
      EXPECT_EQ(rbd_snap_create2((*image)->get(), name.c_str(), RBD_SNAP_CREATE_SKIP_QUIESCE,
                                 [](uint64_t, uint64_t, void*) { return 0; }, nullptr),
                0);
      raw_one.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      start = Clock::now();
      EXPECT_EQ(rbd_group_snap_create2((*cluster)->pool().get(), "qb-bench-g1", name.c_str(),
                                       RBD_SNAP_CREATE_SKIP_QUIESCE),
                0);
      raw_two.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    image->reset();
    std::printf(
        "bare librbd, median of %d: rbd_snap_create2 %.2f ms; rbd_group_snap_create2 "
        "(2 images) %.2f ms\n",
        kRounds, Median(raw_one), Median(raw_two));
    std::printf(
        "rbd backend, median of %d: snapshot (1 image) %.2f ms [min %.2f max %.2f]; "
        "group snapshot (2 images) %.2f ms [min %.2f max %.2f]; first connect + 2 Prepare "
        "%.1f ms; FindByKey(2 images) %.1f ms\n",
        kRounds, Median(one), *std::min_element(one.begin(), one.end()),
        *std::max_element(one.begin(), one.end()), Median(two),
        *std::min_element(two.begin(), two.end()), *std::max_element(two.begin(), two.end()),
        prepare_ms, find_ms);
  }
}

}  // namespace
}  // namespace qb::arrays::rbd
