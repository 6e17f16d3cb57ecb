#include "guest-agent/agent_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace qb::agent {
namespace {

Status Bad(const std::string& key, const std::string& why) {
  return Error(Code::kInvalidArgument, key + ": " + why);
}

Status CheckKeys(const toml::table& table, const std::string& prefix,
                 const std::set<std::string>& known) {
  for (const auto& [key, value] : table) {
    std::string name(key.str());
    if (!known.count(name)) return Bad(prefix + name, "unknown key");
  }
  return Status::Ok();
}

Status GetBool(const toml::table& t, const std::string& section, const char* key, bool* out) {
  const toml::node* node = t.get(key);
  if (!node) return Status::Ok();
  if (!node->is_boolean()) return Bad(section + "." + key, "must be true or false");
  *out = node->as_boolean()->get();
  return Status::Ok();
}

Status GetString(const toml::table& t, const std::string& section, const char* key,
                 std::string* out) {
  const toml::node* node = t.get(key);
  if (!node) return Status::Ok();
  if (!node->is_string()) return Bad(section + "." + key, "must be a string");
  *out = node->as_string()->get();
  return Status::Ok();
}

Status GetInteger(const toml::table& t, const std::string& section, const char* key,
                  std::int64_t min, std::int64_t max, std::int64_t* out) {
  const toml::node* node = t.get(key);
  if (!node) return Status::Ok();
  if (!node->is_integer()) return Bad(section + "." + key, "must be an integer");
  std::int64_t value = node->as_integer()->get();
  if (value < min || value > max) {
    return Bad(section + "." + key,
               "must be in " + std::to_string(min) + ".." + std::to_string(max));
  }
  *out = value;
  return Status::Ok();
}

Status GetMs(const toml::table& t, const std::string& section, const char* key,
             std::chrono::milliseconds max, std::chrono::milliseconds* out) {
  std::int64_t value = out->count();
  QB_RETURN_IF_ERROR(GetInteger(t, section, key, 1, max.count(), &value));
  *out = std::chrono::milliseconds(value);
  return Status::Ok();
}

const toml::table* Section(const toml::table& root, const char* name, Status* status) {
  const toml::node* node = root.get(name);
  if (!node) return nullptr;
  if (!node->is_table()) {
    *status = Bad(name, "must be a table ([" + std::string(name) + "])");
    return nullptr;
  }
  return node->as_table();
}

}  // namespace

Result<AgentConfig> ParseAgentConfig(const std::string& toml_text) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << "line " << e.source().begin.line << ": " << e.description();
    return Error(Code::kInvalidArgument, "config syntax: " + where.str());
  }
  AgentConfig config;
  QB_RETURN_IF_ERROR(CheckKeys(root, "", {"transport", "freeze", "hooks", "log"}));
  Status status;
  if (const auto* t = Section(root, "transport", &status)) {
    QB_RETURN_IF_ERROR(CheckKeys(
        *t, "transport.", {"virtio_serial", "port_name", "vsock", "vsock_port", "unix_path"}));
    QB_RETURN_IF_ERROR(GetBool(*t, "transport", "virtio_serial", &config.virtio_serial));
    QB_RETURN_IF_ERROR(GetString(*t, "transport", "port_name", &config.port_name));
    QB_RETURN_IF_ERROR(GetBool(*t, "transport", "vsock", &config.vsock));
    std::int64_t port = config.vsock_port;
    QB_RETURN_IF_ERROR(GetInteger(*t, "transport", "vsock_port", 1, 0xfffffffe, &port));
    config.vsock_port = static_cast<unsigned>(port);
    QB_RETURN_IF_ERROR(GetString(*t, "transport", "unix_path", &config.unix_path));
  }
  QB_RETURN_IF_ERROR(status);
  if (const auto* t = Section(root, "freeze", &status)) {
    QB_RETURN_IF_ERROR(CheckKeys(*t, "freeze.", {"default_lease_ms", "lease_cap_ms", "run_dir"}));
    QB_RETURN_IF_ERROR(
        GetMs(*t, "freeze", "default_lease_ms", limits::kMaxLease, &config.default_lease));
    QB_RETURN_IF_ERROR(GetMs(*t, "freeze", "lease_cap_ms", limits::kMaxLease, &config.lease_cap));
    // A smaller cap also lowers the default unless the default was set explicitly.
    if (!t->get("default_lease_ms")) {
      config.default_lease = std::min(config.default_lease, config.lease_cap);
    }
    QB_RETURN_IF_ERROR(GetString(*t, "freeze", "run_dir", &config.run_dir));
  }
  QB_RETURN_IF_ERROR(status);
  if (const auto* t = Section(root, "hooks", &status)) {
    QB_RETURN_IF_ERROR(CheckKeys(*t, "hooks.", {"dir", "timeout_ms"}));
    QB_RETURN_IF_ERROR(GetString(*t, "hooks", "dir", &config.hooks_dir));
    // A hook runs before FIFREEZE or after FITHAW, outside the lease; still bounded.
    QB_RETURN_IF_ERROR(
        GetMs(*t, "hooks", "timeout_ms", limits::kVssWriterFreezeLimit * 10, &config.hook_timeout));
  }
  QB_RETURN_IF_ERROR(status);
  if (const auto* t = Section(root, "log", &status)) {
    QB_RETURN_IF_ERROR(CheckKeys(*t, "log.", {"level", "file"}));
    QB_RETURN_IF_ERROR(GetString(*t, "log", "level", &config.log_level));
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (!kLevels.count(config.log_level)) {
      return Bad("log.level", "must be one of trace, debug, info, warn, error, critical, off");
    }
    QB_RETURN_IF_ERROR(GetString(*t, "log", "file", &config.log_file));
  }
  QB_RETURN_IF_ERROR(status);
  if (config.default_lease > config.lease_cap) {
    return Bad("freeze.default_lease_ms", "must not exceed freeze.lease_cap_ms");
  }
  return config;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kNotFound, "cannot read config " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto config = ParseAgentConfig(buffer.str());
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

}  // namespace qb::agent
