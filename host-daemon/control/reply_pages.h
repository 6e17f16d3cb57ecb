// Pages of the list verbs (listJobs, listSnapshots): at most a page limit of entries and never
// more than kControlReplyByteBudget of encoded reply, so every reply the daemon sends decodes
// under the control codec's limits whatever the catalog holds.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "protocol/codec.h"
#include "protocol/control_messages.h"

namespace qb::control {

// The page size for a request's `limit`: the default when 0, capped at `max`.
inline std::uint32_t PageLimit(std::uint32_t requested, std::uint32_t default_limit,
                               std::uint32_t max) {
  return requested == 0 ? default_limit : std::min(requested, max);
}

// Keeps the first entries of `entries` (the list from `offset` on) that fit in `limit` and the
// byte budget, and marks `reply` (more / next_offset) when any are left. At least one entry is
// kept, so paging always advances (one entry is bounded far below the budget: a job's guest
// lists by kMaxJobWriterBytes + kMaxJobNotCoveredBytes).
template <typename T>
std::vector<T> TakePage(std::vector<T> entries, std::uint32_t offset, std::uint32_t limit,
                        proto::ControlReply& reply,
                        std::size_t budget = proto::kControlReplyByteBudget) {
  std::size_t bytes = 0, keep = 0;
  while (keep < entries.size() && keep < limit) {
    const std::size_t size = proto::EncodedReplyBytes(entries[keep]);
    if (keep > 0 && bytes + size > budget) break;
    bytes += size;
    ++keep;
  }
  if (keep < entries.size()) {
    reply.more = true;
    reply.next_offset = offset + static_cast<std::uint32_t>(keep);
    entries.resize(keep);
  }
  return entries;
}

}  // namespace qb::control
