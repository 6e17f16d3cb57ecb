// Freeze + thaw latency of N loop-mounted file systems (median of R rounds), and the thaw
// guard's lease accuracy. Not a test: a measuring tool for the closing note of issue 3.
//
//   quiesce-agent-bench --mounts /mnt/a,/mnt/b --rounds 50
//   quiesce-agent-bench --mounts /mnt/a --lease-ms 500 --lease-rounds 10
//
// The mount points must be test file systems (loop images), never the machine's own.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <thread>
#include <vector>

#include "guest-agent/linux/fs_freezer.h"
#include "guest-agent/linux/thaw_guard.h"

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return 0;
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"freeze/thaw latency and lease accuracy"};
  std::string mounts_arg;
  int rounds = 50;
  int lease_ms = 0;
  int lease_rounds = 10;
  app.add_option("--mounts", mounts_arg, "comma-separated mount points (loop test mounts)")
      ->required();
  app.add_option("--rounds", rounds, "freeze+thaw rounds");
  app.add_option("--lease-ms", lease_ms, "also measure guard lease accuracy with this lease");
  app.add_option("--lease-rounds", lease_rounds, "lease accuracy rounds");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> mounts;
  std::stringstream split(mounts_arg);
  for (std::string m; std::getline(split, m, ',');) mounts.push_back(m);

  auto set = qb::agent::FsFreezeSet::Open(mounts);
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().ToString().c_str());
    return 1;
  }
  std::vector<double> freeze_ms, thaw_ms;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = Clock::now();
    auto status = set->FreezeAll(nullptr);
    auto t1 = Clock::now();
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    auto outcomes = set->ThawAll();
    auto t2 = Clock::now();
    freeze_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    thaw_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  std::printf(
      "file systems=%zu rounds=%d freeze median=%.3f ms thaw median=%.3f ms "
      "(freeze max=%.3f thaw max=%.3f)\n",
      mounts.size(), rounds, Median(freeze_ms), Median(thaw_ms),
      *std::max_element(freeze_ms.begin(), freeze_ms.end()),
      *std::max_element(thaw_ms.begin(), thaw_ms.end()));

  // The thaw guard on the freeze path: forked per freeze (Start) vs a spare forked ahead of
  // time and only armed (what the agent does). Dismissed right away; nothing is frozen here.
  {
    std::vector<double> start_ms, arm_ms;
    for (int i = 0; i < rounds; ++i) {
      auto t0 = Clock::now();
      auto started = qb::agent::ThawGuard::Start(set->fds(), t0 + std::chrono::seconds(60));
      auto t1 = Clock::now();
      if (!started.ok()) return 1;
      started->Dismiss();
      auto spare = qb::agent::ThawGuard::Spawn();
      if (!spare.ok()) return 1;
      auto t2 = Clock::now();
      if (!spare->Arm(set->fds(), t2 + std::chrono::seconds(60)).ok()) return 1;
      auto t3 = Clock::now();
      spare->Dismiss();
      start_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      arm_ms.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
    }
    std::printf("thaw guard before FIFREEZE: fork+arm median=%.3f ms, arm a spare median=%.3f ms\n",
                Median(start_ms), Median(arm_ms));
  }

  if (lease_ms > 0) {
    // The guard thaws at the lease deadline; we observe it by polling FITHAW's view: a FIFREEZE
    // probe would refreeze, so watch for the guard's exit instead (it exits right after FITHAW).
    std::vector<double> late_ms;
    for (int i = 0; i < lease_rounds; ++i) {
      auto status = set->FreezeAll(nullptr);
      if (!status.ok()) return 1;
      auto deadline = Clock::now() + std::chrono::milliseconds(lease_ms);
      auto guard = qb::agent::ThawGuard::Start(set->fds(), deadline);
      if (!guard.ok()) return 1;
      bool thawed_by_guard = guard->ReleaseAndThawAfterLease();
      auto observed = Clock::now();
      auto outcomes = set->ThawAll();  // finds them thawed (EINVAL) if the guard did its job
      bool all_thawed = std::all_of(outcomes.begin(), outcomes.end(),
                                    [](const auto& o) { return !o.was_frozen; });
      if (!thawed_by_guard || !all_thawed) {
        std::fprintf(stderr, "guard did not thaw\n");
        return 1;
      }
      late_ms.push_back(std::chrono::duration<double, std::milli>(observed - deadline).count());
    }
    std::printf("lease=%d ms rounds=%d guard thaw after deadline: median=%.3f ms max=%.3f ms\n",
                lease_ms, lease_rounds, Median(late_ms),
                *std::max_element(late_ms.begin(), late_ms.end()));
  }
  return 0;
}
