#include "host-daemon/arrays/purity/purity_factory.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace qb::arrays::purity {
namespace {

Result<bool> ParseBool(const std::string& key, const std::string& value) {
  if (value == "true") return true;
  if (value == "false") return false;
  return Error(Code::kInvalidArgument,
               fmt::format("purity: {} must be true or false, not '{}'", key, value));
}

}  // namespace

Result<std::unique_ptr<PurityBackend>> CreatePurityBackend(
    const std::string& name, const std::map<std::string, std::string>& settings) {
  static constexpr std::array<std::string_view, 9> kKnown = {"host",
                                                             "port",
                                                             "ca_file",
                                                             "insecure",
                                                             "api_version",
                                                             "api_token_file",
                                                             "api_token_credential",
                                                             "eradicate_on_remove",
                                                             "dry_run"};
  for (const auto& [key, value] : settings) {
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
      return Error(Code::kInvalidArgument,
                   fmt::format("backends.{}: unknown key '{}' for a purity backend", name, key));
    }
  }
  auto get = [&](const char* key) {
    auto it = settings.find(key);
    return it == settings.end() ? std::string() : it->second;
  };
  PurityBackendOptions options;
  options.name = name;
  options.rest.host = get("host");
  if (options.rest.host.empty()) {
    return Error(Code::kInvalidArgument, fmt::format("backends.{}: 'host' is required", name));
  }
  if (const std::string port = get("port"); !port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return Error(Code::kInvalidArgument, fmt::format("backends.{}: bad port '{}'", name, port));
    }
    options.rest.port = static_cast<uint16_t>(value);
  }
  options.rest.ca_file = get("ca_file");
  options.rest.api_version = get("api_version");
  for (const auto& [key, field] :
       {std::pair<const char*, bool*>{"insecure", &options.rest.insecure_skip_verify},
        {"eradicate_on_remove", &options.eradicate_on_remove},
        {"dry_run", &options.dry_run_in_prepare}}) {
    if (const std::string value = get(key); !value.empty()) {
      auto parsed = ParseBool(fmt::format("backends.{}.{}", name, key), value);
      if (!parsed.ok()) return parsed.status();
      *field = *parsed;
    }
  }
  const std::string token_file = get("api_token_file");
  const std::string credential = get("api_token_credential");
  if (token_file.empty() == credential.empty()) {
    return Error(
        Code::kInvalidArgument,
        fmt::format("backends.{}: set exactly one of api_token_file, api_token_credential", name));
  }
  auto token =
      token_file.empty() ? LoadApiTokenCredential(credential) : LoadApiTokenFile(token_file);
  if (!token.ok()) return token.status().WithContext("backends." + name);
  return std::make_unique<PurityBackend>(std::move(options), std::move(token).value());
}

}  // namespace qb::arrays::purity
