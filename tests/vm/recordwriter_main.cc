// qb-recordwriter DIR [--count N] [--status FILE]
//
// The guest workload: appends fixed-size records (tests/vm/records.h) to DIR/records.bin and
// fsyncs each before writing the next, so every record it has acknowledged is durable. If the
// file exists, its valid prefix is kept (anything after it is cut off) and numbering resumes.
//
// Reports "QB-RECORDS: acked SEQ" on stdout every kAckReportInterval and when it stops. With
// --status, the last acknowledged sequence is also kept in FILE (rewritten in place after every
// fsync) so a freeze responder in the guest can say which records were durable before a freeze.
// Stops after N records with --count, else on SIGTERM/SIGINT. Exit status 0 unless an I/O
// call failed.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/unique_fd.h"
#include "tests/vm/records.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

std::uint64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

int Fail(const char* what, const std::string& path) {
  std::fprintf(stderr, "qb-recordwriter: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
  return 1;
}

bool WriteAll(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void WriteStatus(int fd, std::uint64_t sequence) {
  char line[32];
  const int n = std::snprintf(line, sizeof line, "%20" PRIu64 "\n", sequence);
  // Fixed width, rewritten in place: a reader never sees a half-shortened number.
  if (::pwrite(fd, line, static_cast<std::size_t>(n), 0) < 0) {
    std::fprintf(stderr, "qb-recordwriter: status write: %s\n", std::strerror(errno));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  std::string status_path;
  std::uint64_t count = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--count" && i + 1 < argc) {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--status" && i + 1 < argc) {
      status_path = argv[++i];
    } else if (dir.empty() && !arg.empty() && arg[0] != '-') {
      dir = arg;
    } else {
      dir.clear();
      break;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: qb-recordwriter DIR [--count N] [--status FILE]\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  const std::string path = dir + "/" + qb::vmtest::kRecordFileName;
  std::uint64_t sequence = 0;
  {
    // Resume after the valid prefix of an existing file; cut off anything after it.
    auto existing = qb::vmtest::VerifyRecordFile(path);
    if (existing.ok()) {
      sequence = existing->last_sequence;
      if (!existing->ok()) {
        std::printf("QB-RECORDS: resuming after %" PRIu64 " valid records (%s)\n", sequence,
                    existing->errors.front().c_str());
      }
      if (::truncate(path.c_str(), static_cast<off_t>(sequence * qb::vmtest::kRecordSize)) != 0) {
        return Fail("truncate", path);
      }
    }
  }
  qb::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) return Fail("open", path);
  qb::UniqueFd status_fd;
  if (!status_path.empty()) {
    status_fd.Reset(::open(status_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!status_fd) return Fail("open", status_path);
    WriteStatus(status_fd.get(), sequence);
  }
  // The directory entry must be durable too, or a snapshot may hold no file at all.
  {
    qb::UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd || ::fsync(dir_fd.get()) != 0) return Fail("fsync", dir);
  }
  std::printf("QB-RECORDS: writing %s from sequence %" PRIu64 "\n", path.c_str(), sequence + 1);
  std::fflush(stdout);

  std::array<std::uint8_t, qb::vmtest::kRecordSize> record{};
  auto next_report = std::chrono::steady_clock::now() + qb::vmtest::kAckReportInterval;
  int rc = 0;
  while (!g_stop && (count == 0 || sequence < count)) {
    qb::vmtest::EncodeRecord(sequence + 1, RealtimeNs(), record);
    if (!WriteAll(fd.get(), record.data(), record.size())) {
      if (errno == EINTR && g_stop) break;
      rc = Fail("write", path);
      break;
    }
    if (::fsync(fd.get()) != 0) {
      rc = Fail("fsync", path);
      break;
    }
    ++sequence;
    if (status_fd) WriteStatus(status_fd.get(), sequence);
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_report) {
      std::printf("QB-RECORDS: acked %" PRIu64 "\n", sequence);
      std::fflush(stdout);
      next_report = now + qb::vmtest::kAckReportInterval;
    }
  }
  std::printf("QB-RECORDS: stopped, acked %" PRIu64 "\n", sequence);
  std::fflush(stdout);
  return rc;
}
