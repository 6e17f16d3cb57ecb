#include "host-daemon/jobs/job_report_lists.h"

#include <boost/json.hpp>
#include <string_view>

#include "common/guest_text.h"

namespace qb::jobs {
namespace {

namespace json = boost::json;

proto::WriterPhase PhaseOf(const std::string& text, proto::WriterPhase fallback) {
  if (text == "freeze") return proto::WriterPhase::kFreeze;
  if (text == "thaw") return proto::WriterPhase::kThaw;
  return fallback;
}

std::string WriterLine(const proto::WriterInfo& w) {
  return w.vm + ": " + w.name + " [" + proto::WriterPhaseName(w.phase) + "]: " + w.state;
}

std::size_t BytesOf(const proto::WriterInfo& w) {
  // The typed entry and its text line both travel in the report.
  return 2 * (w.vm.size() + w.name.size() + w.state.size()) + 32;
}

}  // namespace

std::string GuestField(const std::string& text) {
  return TruncateUtf8(text, proto::kMaxGuestFieldBytes);
}

void AddWriterResults(proto::JobReport& report, const std::string& vm,
                      const std::vector<proto::WriterResult>& results,
                      proto::WriterPhase message_phase) {
  std::size_t bytes = 0;
  for (const auto& w : report.writer_details) bytes += BytesOf(w);
  for (const auto& r : results) {
    proto::WriterInfo w{vm, GuestField(r.name), PhaseOf(r.phase, message_phase), r.ok,
                        GuestField(r.state)};
    bool repeat = false;
    for (const auto& kept : report.writer_details) {
      if (kept.vm == w.vm && kept.name == w.name && kept.phase == w.phase) {
        repeat = true;
        break;
      }
    }
    if (repeat) continue;
    const std::size_t size = BytesOf(w);
    if (report.writer_details.size() >= proto::kMaxJobWriters ||
        bytes + size > proto::kMaxJobWriterBytes) {
      ++report.writers_truncated;
      continue;
    }
    bytes += size;
    report.writers.push_back(WriterLine(w));
    report.writer_details.push_back(std::move(w));
  }
}

void AddNotCovered(proto::JobReport& report, const std::string& vm,
                   const std::vector<std::string>& volumes) {
  std::size_t bytes = 0;
  for (const auto& v : report.not_covered) bytes += v.size() + 16;
  for (const auto& volume : volumes) {
    std::string entry = vm + ":" + GuestField(volume);
    if (report.not_covered.size() >= proto::kMaxJobNotCovered ||
        bytes + entry.size() + 16 > proto::kMaxJobNotCoveredBytes) {
      ++report.not_covered_truncated;
      continue;
    }
    bytes += entry.size() + 16;
    report.not_covered.push_back(std::move(entry));
  }
}

std::string WritersToCatalogJson(const proto::JobReport& report) {
  json::array writers;
  for (const auto& w : report.writer_details) {
    writers.push_back(json::object{{"vm", w.vm},
                                   {"name", w.name},
                                   {"phase", proto::WriterPhaseName(w.phase)},
                                   {"ok", w.ok},
                                   {"state", w.state}});
  }
  return json::serialize(
      json::object{{"writers", std::move(writers)}, {"truncated", report.writers_truncated}});
}

void WritersFromCatalogJson(const std::string& text, proto::JobReport& report) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return;
  auto str = [](const json::object& o, std::string_view key) -> std::string {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  if (const auto* array = doc.if_array()) {  // the older format: "vm: name: state" strings
    for (const auto& v : *array)
      if (v.is_string()) report.writers.emplace_back(v.get_string());
    return;
  }
  const auto* o = doc.if_object();
  if (!o) return;
  if (const auto* n = o->if_contains("truncated"); n && n->is_int64() && n->get_int64() >= 0)
    report.writers_truncated = static_cast<std::uint32_t>(n->get_int64());
  const auto* writers = o->if_contains("writers");
  if (!writers || !writers->is_array()) return;
  for (const auto& v : writers->get_array()) {
    const auto* w = v.if_object();
    if (!w) continue;
    const auto* ok = w->if_contains("ok");
    proto::WriterInfo info{str(*w, "vm"), str(*w, "name"),
                           PhaseOf(str(*w, "phase"), proto::WriterPhase::kUnknown),
                           ok && ok->is_bool() && ok->get_bool(), str(*w, "state")};
    report.writers.push_back(WriterLine(info));
    report.writer_details.push_back(std::move(info));
  }
}

}  // namespace qb::jobs
