// The rbd part of AddConfiguredBackends, split off by file because librbd is optional: CMake
// compiles configured_backends_rbd.cc when librbd / librados are found, and
// configured_backends_no_rbd.cc (which refuses type = "rbd") otherwise.
#pragma once

#include <memory>

#include "common/status.h"
#include "host-daemon/arrays/backend.h"
#include "host-daemon/config/config.h"

namespace qb::arrays {

// An RbdBackend for one [backends.NAME] table of type "rbd". kInvalidArgument naming the key
// (RbdConfigFromSettings); kUnsupported without librbd. Does not connect.
Result<std::unique_ptr<ArrayBackend>> MakeConfiguredRbdBackend(
    const config::BackendSettings& settings);

}  // namespace qb::arrays
