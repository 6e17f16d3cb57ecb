// qb-verify-records FILE [--json] [--min-sequence N]
//
// Checks a record file written by qb-recordwriter (usually inside a snapshot of the data LUN):
// every record whole, CRC valid, sequence contiguous from 1, nothing torn after the last one.
// Prints "records N last_sequence N ok" (or the faults), or one JSON line with --json.
// --min-sequence N additionally demands that the last valid sequence is at least N (the
// writer's last acknowledged record before a freeze).
// Exit status: 0 valid, 1 invalid, 2 usage or I/O error.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/vm/records.h"

int main(int argc, char** argv) {
  std::string path;
  bool json = false;
  std::uint64_t min_sequence = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--min-sequence" && i + 1 < argc) {
      min_sequence = std::strtoull(argv[++i], nullptr, 10);
    } else if (path.empty() && !arg.empty() && arg[0] != '-') {
      path = arg;
    } else {
      path.clear();
      break;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: qb-verify-records FILE [--json] [--min-sequence N]\n");
    return 2;
  }
  auto result = qb::vmtest::VerifyRecordFile(path);
  if (!result.ok()) {
    std::fprintf(stderr, "qb-verify-records: %s\n", result.status().ToString().c_str());
    return 2;
  }
  qb::vmtest::RecordFileReport report = std::move(result).value();
  if (min_sequence > report.last_sequence) {
    report.errors.push_back("last sequence " + std::to_string(report.last_sequence) +
                            " is below the required " + std::to_string(min_sequence));
  }
  if (json) {
    std::printf("%s\n", qb::vmtest::ReportToJson(path, report).c_str());
  } else {
    std::printf("records %" PRIu64 " last_sequence %" PRIu64 " %s\n", report.valid_records,
                report.last_sequence, report.ok() ? "ok" : "INVALID");
    for (const auto& e : report.errors) std::printf("  %s\n", e.c_str());
  }
  return report.ok() ? 0 : 1;
}
