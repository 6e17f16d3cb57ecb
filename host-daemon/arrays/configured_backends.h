// Builds the backends of quiesced.toml's [backends] that live in this tree's arrays/ folder
// (reflink, exec) into a BackendSet. Called by main(); no global registry.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "host-daemon/arrays/backend.h"
#include "host-daemon/config/config.h"

namespace qb::arrays {

// Adds one backend per [backends.NAME] entry of type "reflink" or "exec" to `set`.
// Entries of other types (rbd, purity) are skipped and their names appended to `skipped`
// (may be null) so main() can build them with their own factories.
// Errors: an exec script that fails its capabilities probe (the exec factory's Status, with
// the backend name), or kConflict for a name already in `set`. BLOCKING (runs exec scripts).
Status AddConfiguredBackends(const config::Config& config, BackendSet& set,
                             std::vector<std::string>* skipped);

}  // namespace qb::arrays
