#include "host-daemon/arrays/configured_backends.h"

#include "host-daemon/arrays/exec/exec_backend.h"
#include "host-daemon/arrays/reflink/reflink_backend.h"

namespace qb::arrays {

Status AddConfiguredBackends(const config::Config& config, BackendSet& set,
                             std::vector<std::string>* skipped) {
  for (const auto& settings : config.backends) {
    if (settings.type == "reflink") {
      QB_RETURN_IF_ERROR(set.Add(reflink::MakeReflinkBackend(
          {.name = settings.name, .snapshot_dir = settings.snapshot_dir})));
    } else if (settings.type == "exec") {
      auto backend = exec::MakeExecBackend(
          {.name = settings.name, .script = settings.script, .timeout = settings.timeout});
      if (!backend.ok()) return backend.status().WithContext("backend " + settings.name);
      QB_RETURN_IF_ERROR(set.Add(std::move(backend).value()));
    } else if (skipped != nullptr) {
      skipped->push_back(settings.name);
    }
  }
  return Status::Ok();
}

}  // namespace qb::arrays
