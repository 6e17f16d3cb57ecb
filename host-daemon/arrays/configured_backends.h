// Builds the array backends quiesced.toml's [backends] names (reflink, exec, rbd, purity) into a
// BackendSet. Called by main(); no global registry.
#pragma once

#include "common/status.h"
#include "host-daemon/arrays/backend.h"
#include "host-daemon/config/config.h"

namespace qb::arrays {

// Adds one backend per [backends.NAME] entry to `set`. Does not contact any array (the rbd
// backend connects on first use, the purity backend logs in on first use).
// Errors, each "SOURCE:LINE: backends.NAME...: problem" (LINE: the key the problem concerns,
// else the table's), so they read like the config parser's own:
//   - an exec script that fails its capabilities probe;
//   - an rbd table RbdConfigFromSettings rejects, or kUnsupported when this daemon was built
//     without librbd;
//   - a purity API token that cannot be loaded (missing, group/world-readable, empty);
//   - kConflict for a name already in `set`.
// BLOCKING (runs exec scripts, reads token files): call before the io_context runs.
Status AddConfiguredBackends(const config::Config& config, BackendSet& set);

}  // namespace qb::arrays
