// The real provider catalog (COM+ catalog + IVssAdmin). Not run here: COM+ is not registered
// under Wine; registration logic is tested against FakeProviderCatalog.
#pragma once

#include <memory>

#include "guest-agent/windows/vss/provider_registration.h"

namespace qb::agent::win {

std::unique_ptr<ProviderCatalog> MakeComPlusProviderCatalog();

}  // namespace qb::agent::win
