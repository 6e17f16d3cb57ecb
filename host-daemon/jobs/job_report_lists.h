// The guest-reported lists of a job report (writer / hook results, not-covered volumes):
// what the daemon keeps of them, bounded in count and bytes whatever the guests send, and how
// the writer results are stored in the catalog.
//
// Bounds (protocol/control_messages.h): kMaxJobWriters / kMaxJobWriterBytes and
// kMaxJobNotCovered / kMaxJobNotCoveredBytes for the whole job, kMaxGuestFieldBytes per
// field. What does not fit is counted in JobReport::writers_truncated / not_covered_truncated,
// never stored, never shown as a made-up entry. Texts are kept as the codec delivered them
// (valid UTF-8, cut at character boundaries); escaping is the sinks' job (common/guest_text.h).
#pragma once

#include <string>
#include <vector>

#include "protocol/control_messages.h"
#include "protocol/messages.h"

namespace qb::jobs {

// Adds to `report` the writer results `vm`'s agent sent in one message: Frozen
// (`message_phase` kFreeze) or Thawed (kThaw). A result's own phase ("freeze" / "thaw") wins
// over `message_phase`. One entry per (vm, name, phase): agents before the fix of issue 12
// item 9 repeat their freeze results in Thawed; the repeats are dropped, not counted.
void AddWriterResults(proto::JobReport& report, const std::string& vm,
                      const std::vector<proto::WriterResult>& results,
                      proto::WriterPhase message_phase);

// Adds `vm`'s volumes that are not covered by the job's LUNs ("vm:volume" in the report).
void AddNotCovered(proto::JobReport& report, const std::string& vm,
                   const std::vector<std::string>& volumes);

// A bounded copy of a guest text for messages and errors (kMaxGuestFieldBytes).
std::string GuestField(const std::string& text);

// The writer results of `report` (writer_details, writers_truncated) as the JSON text stored
// in the catalog's writer_results column: {"writers":[{"vm","name","phase","ok","state"}...],
// "truncated":N}.
std::string WritersToCatalogJson(const proto::JobReport& report);

// Fills report.writers, writer_details and writers_truncated from a writer_results column:
// the format above, or the older plain array of "vm: name: state" strings (phase unknown).
// Text that does not parse gives no writers.
void WritersFromCatalogJson(const std::string& json, proto::JobReport& report);

}  // namespace qb::jobs
