#include "host-daemon/arrays/configured_backends.h"

#include <string>

#include "host-daemon/arrays/configured_backends_rbd.h"
#include "host-daemon/arrays/exec/exec_backend.h"
#include "host-daemon/arrays/purity/purity_factory.h"
#include "host-daemon/arrays/reflink/reflink_backend.h"

namespace qb::arrays {
namespace {

// The line of the key a factory's message is about: a key of the table it names, the token
// source for token trouble, else the table's own line.
int LineOf(const config::BackendSettings& settings, const std::string& message) {
  if (message.find("token") != std::string::npos) {
    for (const char* key : {"api_token_file", "api_token_credential"}) {
      if (auto it = settings.key_lines.find(key); it != settings.key_lines.end()) return it->second;
    }
  }
  int line = settings.line;
  std::size_t best = 0;
  for (const auto& [key, key_line] : settings.key_lines) {
    if (key.size() > best && message.find(key) != std::string::npos) {
      best = key.size();
      line = key_line;
    }
  }
  return line;
}

// "SOURCE:LINE: backends.NAME: message" with the factory's code.
Status InConfig(const config::Config& config, const config::BackendSettings& settings,
                const Status& status) {
  const std::string prefix = "backends." + settings.name;
  std::string text = config.source_name;
  if (const int line = LineOf(settings, status.message()); line > 0) {
    text += ":" + std::to_string(line);
  }
  text += ": ";
  if (status.message().rfind(prefix, 0) != 0) text += prefix + ": ";
  text += status.message();
  return Error(status.code(), std::move(text));
}

Result<std::unique_ptr<ArrayBackend>> MakeBackend(const config::BackendSettings& settings) {
  if (settings.type == "reflink") {
    return std::unique_ptr<ArrayBackend>(reflink::MakeReflinkBackend(
        {.name = settings.name, .snapshot_dir = settings.snapshot_dir}));
  }
  if (settings.type == "exec") {
    return exec::MakeExecBackend(
        {.name = settings.name, .script = settings.script, .timeout = settings.timeout});
  }
  if (settings.type == "rbd") return MakeConfiguredRbdBackend(settings);
  if (settings.type == "purity") {
    auto backend = purity::CreatePurityBackend(settings.name, settings.extra);
    if (!backend.ok()) return backend.status();
    return std::unique_ptr<ArrayBackend>(std::move(backend).value());
  }
  return Error(Code::kUnsupported, "type \"" + settings.type + "\" is not built into quiesced");
}

}  // namespace

Status AddConfiguredBackends(const config::Config& config, BackendSet& set) {
  for (const auto& settings : config.backends) {
    auto backend = MakeBackend(settings);
    if (!backend.ok()) return InConfig(config, settings, backend.status());
    if (Status added = set.Add(std::move(backend).value()); !added.ok()) {
      return InConfig(config, settings, added);
    }
  }
  return Status::Ok();
}

}  // namespace qb::arrays
