#include "host-daemon/arrays/configured_backends_rbd.h"

namespace qb::arrays {

Result<std::unique_ptr<ArrayBackend>> MakeConfiguredRbdBackend(
    const config::BackendSettings& settings) {
  return Error(Code::kUnsupported,
               "backends." + settings.name +
                   ": type \"rbd\" is not built into this quiesced (built without librbd / "
                   "librados: install librbd-dev librados-dev and rebuild)");
}

}  // namespace qb::arrays
