// reflink_bench DIR [EXTENTS...]: on the reflink file system mounted at DIR, builds files with
// the given numbers of extent records (every other 4 KiB block written) and reports the
// FICLONE time of each, through the reflink backend's own Snapshot(). Prints one line per size:
// "extents=<counted> clone_ms=<median of 5>". Writes only under DIR/qb-bench (removed after).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "host-daemon/arrays/reflink/reflink_backend.h"

int main(int argc, char** argv) {
  using namespace qb::arrays;
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: reflink_bench DIR [EXTENTS...]\n");
    return 2;
  }
  const fs::path work = fs::path(argv[1]) / "qb-bench";
  fs::create_directories(work);
  std::vector<long> sizes;
  for (int i = 2; i < argc; ++i) sizes.push_back(std::atol(argv[i]));
  if (sizes.empty()) sizes = {100, 1000, 10000};
  auto backend = reflink::MakeReflinkBackend({});
  int run = 0;
  for (long extents : sizes) {
    const std::string lun = (work / ("lun" + std::to_string(extents) + ".raw")).string();
    {
      qb::UniqueFd fd(::open(lun.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
      const std::string block(4096, 'x');
      for (long i = 0; i < extents; ++i) {
        if (::pwrite(fd.get(), block.data(), block.size(), 2 * i * 4096) != 4096) return 1;
      }
      ::fsync(fd.get());
    }
    auto counted = reflink::CountExtentRecords(lun);
    std::vector<double> times;
    for (int r = 0; r < 5; ++r) {
      const std::string key = "bench" + std::to_string(run++);
      const auto t0 = std::chrono::steady_clock::now();
      auto made = backend->Snapshot({{"reflink", lun, ""}}, key,
                                    std::chrono::steady_clock::now() + std::chrono::hours(1));
      const auto t1 = std::chrono::steady_clock::now();
      if (!made.ok()) {
        std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
        return 1;
      }
      times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      (void)backend->Remove(made->front());
    }
    std::sort(times.begin(), times.end());
    std::printf("extents=%llu clone_ms=%.2f (min %.2f max %.2f) projected_ms=%.2f\n",
                counted.ok() ? static_cast<unsigned long long>(*counted) : 0ULL, times[2],
                times.front(), times.back(),
                reflink::ProjectCloneTime(counted.ok() ? *counted : 0).count() / 1000.0);
    fs::remove(lun);
  }
  fs::remove_all(work);
  return 0;
}
