// Builds a PurityBackend from a config section's keys ([backends.<name>] with type = "purity";
// the config parser hands non-core keys over as strings, BackendSettings::extra). main() calls
// this; nothing here is global.
//
// Keys:
//   host                  management address (IP or DNS name)          required
//   port                  default 443
//   ca_file               PEM bundle that signs the array's certificate (default: system store)
//   insecure              "true" disables certificate verification (labs only; Prepare warns)
//   api_version           pin "2.N" (default: the highest 2.x the array offers)
//   api_token_file        root-only file holding the API token          one of these two
//   api_token_credential  systemd credential name ($CREDENTIALS_DIRECTORY/<name>)
//   eradicate_on_remove   "true": Remove() also eradicates
//   dry_run               "false": Prepare() skips the /test dry run
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "host-daemon/arrays/purity/purity_backend.h"

namespace qb::arrays::purity {

// kInvalidArgument naming the key for an unknown key, a missing host / token source, a bad
// port or boolean; the token loaders' errors (kPermissionDenied for a group/world-readable
// token file, kNotFound) otherwise. Does not contact the array.
Result<std::unique_ptr<PurityBackend>> CreatePurityBackend(
    const std::string& name, const std::map<std::string, std::string>& settings);

}  // namespace qb::arrays::purity
