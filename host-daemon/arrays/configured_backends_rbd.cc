#include "host-daemon/arrays/configured_backends_rbd.h"

#include "host-daemon/arrays/rbd/rbd_backend.h"
#include "host-daemon/arrays/rbd/rbd_config.h"

namespace qb::arrays {

Result<std::unique_ptr<ArrayBackend>> MakeConfiguredRbdBackend(
    const config::BackendSettings& settings) {
  auto rbd_config = rbd::RbdConfigFromSettings(settings.name, settings.extra);
  if (!rbd_config.ok()) return rbd_config.status();
  return std::unique_ptr<ArrayBackend>(
      std::make_unique<rbd::RbdBackend>(std::move(rbd_config).value()));
}

}  // namespace qb::arrays
