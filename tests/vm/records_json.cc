// JSON output of the verifier; a file of its own so the static guest workload does not link
// Boost.JSON.
#include <boost/json.hpp>

#include "tests/vm/records.h"

namespace qb::vmtest {

std::string ReportToJson(const std::string& path, const RecordFileReport& report) {
  boost::json::array errors;
  for (const auto& e : report.errors) errors.emplace_back(e);
  boost::json::object o;
  o["file"] = path;
  o["ok"] = report.ok();
  o["bytes"] = report.file_bytes;
  o["records"] = report.valid_records;
  o["last_sequence"] = report.last_sequence;
  o["last_timestamp_ns"] = report.last_timestamp_ns;
  o["tail_bytes"] = report.tail_bytes;
  o["errors"] = std::move(errors);
  return boost::json::serialize(o);
}

}  // namespace qb::vmtest
