#include "host-daemon/config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

namespace qb::config {
namespace {

using namespace std::chrono_literals;

// Collects the first error with file:line context; later lookups become no-ops once failed.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  bool ok() const { return error_.ok(); }
  const Status& error() const { return error_; }

  void Fail(const toml::source_region& where, std::string_view key, std::string_view message) {
    if (!error_.ok()) return;
    std::string text = source_;
    if (where.begin.line > 0) text += ":" + std::to_string(where.begin.line);
    text += ": ";
    if (!key.empty()) text += std::string(key) + ": ";
    text += message;
    error_ = Error(Code::kInvalidArgument, std::move(text));
  }

  // Every key of `table` must be in `allowed`.
  void OnlyKeys(const toml::table& table, std::string_view path,
                std::initializer_list<std::string_view> allowed) {
    for (const auto& [key, node] : table) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end()) {
        std::string expected;
        for (auto a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
        Fail(key.source(), Join(path, key.str()),
             "unknown key (expected one of: " + expected + ")");
        return;
      }
    }
  }

  static std::string Join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
  }

  // Typed optional lookups: absent leaves `out` unchanged; present with the wrong type fails.
  void String(const toml::table& table, std::string_view path, std::string_view key,
              std::string& out) {
    const toml::node* node = table.get(key);
    if (node == nullptr || !ok()) return;
    if (const auto* value = node->as_string()) {
      out = value->get();
    } else {
      Fail(node->source(), Join(path, key), "must be a string");
    }
  }

  void Integer(const toml::table& table, std::string_view path, std::string_view key, int64_t min,
               int64_t max, int64_t& out) {
    const toml::node* node = table.get(key);
    if (node == nullptr || !ok()) return;
    const auto* value = node->as_integer();
    if (value == nullptr) {
      Fail(node->source(), Join(path, key), "must be an integer");
    } else if (value->get() < min || value->get() > max) {
      Fail(node->source(), Join(path, key),
           "must be between " + std::to_string(min) + " and " + std::to_string(max));
    } else {
      out = value->get();
    }
  }

  const toml::table* Table(const toml::table& table, std::string_view path, std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr || !ok()) return nullptr;
    if (const auto* value = node->as_table()) return value;
    Fail(node->source(), Join(path, key), "must be a table");
    return nullptr;
  }

  const toml::array* Array(const toml::table& table, std::string_view path, std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr || !ok()) return nullptr;
    if (const auto* value = node->as_array()) return value;
    Fail(node->source(), Join(path, key), "must be an array");
    return nullptr;
  }

  void Required(const toml::table& table, std::string_view path, std::string_view key) {
    if (ok() && table.get(key) == nullptr) Fail(table.source(), Join(path, key), "is required");
  }

 private:
  std::string source_;
  Status error_;
};

bool IsAbsolutePath(std::string_view path) { return !path.empty() && path.front() == '/'; }

// Lower-case hex, separators (':', '-', ' ') removed; an "naa." / "0x" prefix dropped.
Result<std::string> NormaliseWwn(std::string_view text) {
  std::string wwn;
  std::string_view rest = text;
  for (std::string_view prefix : {"naa.", "NAA.", "0x", "0X"}) {
    if (rest.substr(0, prefix.size()) == prefix) rest.remove_prefix(prefix.size());
  }
  for (char c : rest) {
    if (c == ':' || c == '-' || c == ' ') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return Error(Code::kInvalidArgument, "wwn '" + std::string(text) + "' is not hexadecimal");
    }
    wwn.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return wwn;
}

bool IsKnownLogLevel(std::string_view level) {
  for (std::string_view known : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (level == known) return true;
  }
  return false;
}

void ReadDaemon(Reader& r, const toml::table& root, Config& config) {
  const toml::table* daemon = r.Table(root, "", "daemon");
  if (daemon == nullptr) return;
  r.OnlyKeys(*daemon, "daemon",
             {"control_socket", "control_socket_mode", "control_socket_group", "catalog",
              "worker_threads", "log_level"});
  DaemonSettings& d = config.daemon;
  r.String(*daemon, "daemon", "control_socket", d.control_socket);
  if (r.ok() && !IsAbsolutePath(d.control_socket)) {
    r.Fail(daemon->get("control_socket")->source(), "daemon.control_socket",
           "must be an absolute path");
  }
  if (const toml::node* mode = daemon->get("control_socket_mode"); mode != nullptr && r.ok()) {
    // 0o660 (TOML octal integer) or "0660".
    int64_t value = -1;
    if (const auto* i = mode->as_integer()) {
      value = i->get();
    } else if (const auto* s = mode->as_string()) {
      const std::string& text = s->get();
      unsigned parsed = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed, 8);
      if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) value = parsed;
    }
    if (value < 0 || value > 0777) {
      r.Fail(mode->source(), "daemon.control_socket_mode",
             "must be an octal mode such as 0o660 or \"0660\"");
    } else if ((value & 0007) != 0) {
      r.Fail(mode->source(), "daemon.control_socket_mode",
             "must not give access to others (the socket controls freezes)");
    } else {
      d.control_socket_mode = static_cast<uint32_t>(value);
    }
  }
  r.String(*daemon, "daemon", "control_socket_group", d.control_socket_group);
  r.String(*daemon, "daemon", "catalog", d.catalog_path);
  if (r.ok() && !IsAbsolutePath(d.catalog_path)) {
    r.Fail(daemon->get("catalog")->source(), "daemon.catalog", "must be an absolute path");
  }
  int64_t workers = d.worker_threads;
  r.Integer(*daemon, "daemon", "worker_threads", 1, 256, workers);
  d.worker_threads = static_cast<int>(workers);
  r.String(*daemon, "daemon", "log_level", d.log_level);
  if (r.ok() && !IsKnownLogLevel(d.log_level)) {
    r.Fail(daemon->get("log_level")->source(), "daemon.log_level",
           "must be one of trace, debug, info, warn, error, critical, off");
  }
}

void ReadPolicy(Reader& r, const toml::table& root, Config& config) {
  const toml::table* policy = r.Table(root, "", "policy");
  if (policy == nullptr) return;
  r.OnlyKeys(*policy, "policy", {"late_snapshot"});
  std::string late;
  r.String(*policy, "policy", "late_snapshot", late);
  if (!r.ok() || late.empty()) return;
  if (late == "remove") {
    config.late_snapshot_policy = LateSnapshotPolicy::kRemove;
  } else if (late == "crash-consistent") {
    config.late_snapshot_policy = LateSnapshotPolicy::kRecordCrashConsistent;
  } else {
    r.Fail(policy->get("late_snapshot")->source(), "policy.late_snapshot",
           "must be \"remove\" or \"crash-consistent\"");
  }
}

// The value kinds an rbd / purity key may hold; each is checked here, with its line, and
// handed to the backend's factory as a string (BackendSettings::extra).
enum class ExtraKind { kString, kAbsolutePath, kBoolean, kPort, kTimeoutMs };

struct ExtraKey {
  std::string_view name;
  ExtraKind kind;
};

// Reads every key of a [backends.NAME] table of type rbd / purity into b.extra: unknown keys,
// wrong types and bad values fail with the key's line.
void ReadExtraKeys(Reader& r, const toml::table& table, const std::string& path,
                   std::initializer_list<ExtraKey> keys, BackendSettings& b) {
  for (const auto& [key, node] : table) {
    if (!r.ok()) return;
    const std::string name(key.str());
    const std::string dotted = path + "." + name;
    if (name == "type") continue;
    const ExtraKey* spec = nullptr;
    for (const ExtraKey& k : keys) {
      if (k.name == name) spec = &k;
    }
    if (spec == nullptr) {
      std::string expected = "type";
      for (const ExtraKey& k : keys) expected += ", " + std::string(k.name);
      r.Fail(key.source(), dotted,
             "unknown key for type \"" + b.type + "\" (expected one of: " + expected + ")");
      return;
    }
    b.key_lines[name] = static_cast<int>(node.source().begin.line);
    switch (spec->kind) {
      case ExtraKind::kString:
      case ExtraKind::kAbsolutePath: {
        const auto* value = node.as_string();
        if (value == nullptr) {
          r.Fail(node.source(), dotted, "must be a string");
        } else if (value->get().empty()) {
          r.Fail(node.source(), dotted, "is empty");
        } else if (spec->kind == ExtraKind::kAbsolutePath && !IsAbsolutePath(value->get())) {
          r.Fail(node.source(), dotted, "must be an absolute path");
        } else {
          b.extra[name] = value->get();
        }
        break;
      }
      case ExtraKind::kBoolean:
        if (const auto* value = node.as_boolean()) {
          b.extra[name] = value->get() ? "true" : "false";
        } else {
          r.Fail(node.source(), dotted, "must be true or false");
        }
        break;
      case ExtraKind::kPort:
      case ExtraKind::kTimeoutMs: {
        const bool port = spec->kind == ExtraKind::kPort;
        const int64_t min = port ? 1 : 1000;
        const int64_t max = port ? 65535 : static_cast<int64_t>(limits::kMaxLease.count());
        int64_t value = 0;
        r.Integer(table, path, name, min, max, value);
        if (r.ok()) b.extra[name] = std::to_string(value);
        break;
      }
    }
  }
}

// [backends.NAME] type = "rbd": keys of arrays/rbd/rbd_config.h (RbdConfigFromSettings).
void ReadRbdBackend(Reader& r, const toml::table& table, const std::string& path,
                    BackendSettings& b) {
  if (table.get("pool") != nullptr) {
    r.Fail(table.get("pool")->source(), path + ".pool",
           "not a backend key: the pool is part of every LUN's volume (\"pool/image\")");
    return;
  }
  ReadExtraKeys(r, table, path,
                {{"conf", ExtraKind::kAbsolutePath},
                 {"cluster", ExtraKind::kString},
                 {"client_id", ExtraKind::kString},
                 {"keyring", ExtraKind::kAbsolutePath},
                 {"op_timeout_ms", ExtraKind::kTimeoutMs},
                 {"connect_timeout_ms", ExtraKind::kTimeoutMs}},
                b);
  if (r.ok()) {
    if (auto it = b.extra.find("client_id");
        it != b.extra.end() && it->second.rfind("client.", 0) == 0) {
      r.Fail(table.get("client_id")->source(), path + ".client_id",
             "must be the cephx user without the \"client.\" prefix");
    }
  }
}

// [backends.NAME] type = "purity": keys of arrays/purity/purity_factory.h. The API token
// itself never appears in the config, only where to read it from.
void ReadPurityBackend(Reader& r, const toml::table& table, const std::string& path,
                       BackendSettings& b) {
  ReadExtraKeys(r, table, path,
                {{"host", ExtraKind::kString},
                 {"port", ExtraKind::kPort},
                 {"ca_file", ExtraKind::kAbsolutePath},
                 {"insecure", ExtraKind::kBoolean},
                 {"api_version", ExtraKind::kString},
                 {"api_token_file", ExtraKind::kAbsolutePath},
                 {"api_token_credential", ExtraKind::kString},
                 {"eradicate_on_remove", ExtraKind::kBoolean},
                 {"dry_run", ExtraKind::kBoolean}},
                b);
  r.Required(table, path, "host");
  if (!r.ok()) return;
  const bool file = b.extra.count("api_token_file") != 0;
  const bool credential = b.extra.count("api_token_credential") != 0;
  if (file == credential) {
    r.Fail(file ? table.get("api_token_credential")->source() : table.source(),
           path + ".api_token_file",
           file ? "set only one of api_token_file and api_token_credential"
                : "is required (or api_token_credential): the API token is read from a "
                  "root-only file or a systemd credential");
    return;
  }
  if (auto it = b.extra.find("api_token_credential");
      it != b.extra.end() && it->second.find('/') != std::string::npos) {
    r.Fail(table.get("api_token_credential")->source(), path + ".api_token_credential",
           "must be a credential name (no '/')");
  }
  if (auto it = b.extra.find("api_version"); it != b.extra.end()) {
    const std::string& v = it->second;
    const bool digits = v.size() > 2 && std::all_of(v.begin() + 2, v.end(), [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c)) != 0;
                        });
    if (v.rfind("2.", 0) != 0 || !digits) {
      r.Fail(table.get("api_version")->source(), path + ".api_version",
             "must be a REST 2.x version such as \"2.21\"");
    }
  }
}

void ReadBackends(Reader& r, const toml::table& root, Config& config) {
  const toml::table* backends = r.Table(root, "", "backends");
  if (backends == nullptr) return;
  for (const auto& [key, node] : *backends) {
    if (!r.ok()) return;
    const std::string path = "backends." + std::string(key.str());
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      r.Fail(node.source(), path, "must be a table");
      return;
    }
    BackendSettings b;
    b.name = std::string(key.str());
    b.line = static_cast<int>(table->source().begin.line);
    b.type = b.name;
    r.String(*table, path, "type", b.type);
    if (b.type == "reflink") {
      r.OnlyKeys(*table, path, {"type", "snapshot_dir"});
      r.String(*table, path, "snapshot_dir", b.snapshot_dir);
      if (r.ok() && !b.snapshot_dir.empty() && !IsAbsolutePath(b.snapshot_dir)) {
        r.Fail(table->get("snapshot_dir")->source(), path + ".snapshot_dir",
               "must be an absolute path");
      }
    } else if (b.type == "exec") {
      r.OnlyKeys(*table, path, {"type", "script", "timeout_ms"});
      r.Required(*table, path, "script");
      r.String(*table, path, "script", b.script);
      if (r.ok() && !IsAbsolutePath(b.script)) {
        r.Fail(table->get("script")->source(), path + ".script", "must be an absolute path");
      }
      int64_t timeout = b.timeout.count();
      r.Integer(*table, path, "timeout_ms", 1, 3'600'000, timeout);
      b.timeout = std::chrono::milliseconds(timeout);
    } else if (b.type == "rbd") {
      ReadRbdBackend(r, *table, path, b);
    } else if (b.type == "purity") {
      ReadPurityBackend(r, *table, path, b);
    } else {
      const toml::node* where = table->get("type");
      r.Fail(where != nullptr ? where->source() : key.source(), path + ".type",
             "unknown backend type '" + b.type + "' (reflink, exec, rbd, purity)");
    }
    config.backends.push_back(std::move(b));
  }
}

void ReadLuns(Reader& r, const toml::array& luns, const std::string& path, const Config& config,
              std::vector<LunSettings>& out) {
  for (std::size_t i = 0; i < luns.size() && r.ok(); ++i) {
    const std::string item = path + "[" + std::to_string(i) + "]";
    const toml::table* lun = luns.get(i)->as_table();
    if (lun == nullptr) {
      r.Fail(luns.get(i)->source(), item, "must be a table { backend = ..., volume = ... }");
      return;
    }
    r.OnlyKeys(*lun, item, {"backend", "volume", "wwn", "disk"});
    r.Required(*lun, item, "backend");
    r.Required(*lun, item, "volume");
    LunSettings settings;
    r.String(*lun, item, "backend", settings.backend);
    r.String(*lun, item, "volume", settings.volume);
    std::string wwn;
    r.String(*lun, item, "wwn", wwn);
    if (!r.ok()) return;
    if (settings.volume.empty()) r.Fail(lun->get("volume")->source(), item + ".volume", "is empty");
    auto normalised = NormaliseWwn(wwn);
    if (!normalised.ok()) {
      r.Fail(lun->get("wwn")->source(), item + ".wwn", normalised.status().message());
      return;
    }
    settings.wwn = *normalised;
    r.String(*lun, item, "disk", settings.disk);
    if (!r.ok()) return;
    if (const toml::node* disk = lun->get("disk")) {
      const bool bad_char = std::any_of(settings.disk.begin(), settings.disk.end(), [](char c) {
        return c == '/' || std::isspace(static_cast<unsigned char>(c)) != 0;
      });
      if (settings.disk.empty() || bad_char) {
        r.Fail(disk->source(), item + ".disk",
               "must be the guest's block device name as its inventory reports it (\"vdb\", "
               "\"loop3\"), without /dev/");
        return;
      }
      for (const LunSettings& other : out) {
        if (other.disk == settings.disk) {
          r.Fail(disk->source(), item + ".disk",
                 "disk '" + settings.disk + "' is mapped to two LUNs of this guest");
          return;
        }
      }
    }
    if (config.FindBackend(settings.backend) == nullptr) {
      r.Fail(lun->get("backend")->source(), item + ".backend",
             "no backend named '" + settings.backend + "' in [backends]");
      return;
    }
    out.push_back(std::move(settings));
  }
}

void ReadGuests(Reader& r, const toml::table& root, Config& config) {
  const toml::array* guests = r.Array(root, "", "guests");
  if (guests == nullptr) return;
  for (std::size_t i = 0; i < guests->size() && r.ok(); ++i) {
    const std::string path = "guests[" + std::to_string(i) + "]";
    const toml::table* guest = guests->get(i)->as_table();
    if (guest == nullptr) {
      r.Fail(guests->get(i)->source(), path, "must be a table ([[guests]])");
      return;
    }
    r.OnlyKeys(*guest, path, {"name", "agent", "luns"});
    r.Required(*guest, path, "name");
    r.Required(*guest, path, "agent");
    GuestSettings settings;
    r.String(*guest, path, "name", settings.name);
    std::string agent;
    r.String(*guest, path, "agent", agent);
    if (!r.ok()) return;
    if (settings.name.empty()) {
      r.Fail(guest->get("name")->source(), path + ".name", "is empty");
      return;
    }
    if (config.FindGuest(settings.name) != nullptr) {
      r.Fail(guest->get("name")->source(), path + ".name",
             "guest '" + settings.name + "' is defined twice");
      return;
    }
    auto endpoint = ParseAgentEndpoint(agent);
    if (!endpoint.ok()) {
      r.Fail(guest->get("agent")->source(), path + ".agent", endpoint.status().message());
      return;
    }
    settings.agent = *endpoint;
    if (const toml::array* luns = r.Array(*guest, path, "luns")) {
      ReadLuns(r, *luns, path + ".luns", config, settings.luns);
    }
    config.guests.push_back(std::move(settings));
  }
}

void ReadGroups(Reader& r, const toml::table& root, Config& config) {
  const toml::table* groups = r.Table(root, "", "groups");
  if (groups == nullptr) return;
  for (const auto& [key, node] : *groups) {
    if (!r.ok()) return;
    const std::string path = "groups." + std::string(key.str());
    const toml::array* members = node.as_array();
    if (members == nullptr) {
      r.Fail(node.source(), path, "must be an array of VM names");
      return;
    }
    GroupSettings group{.name = std::string(key.str()), .vms = {}};
    for (const auto& member : *members) {
      const auto* name = member.as_string();
      if (name == nullptr || name->get().empty()) {
        r.Fail(member.source(), path, "members must be non-empty strings");
        return;
      }
      if (std::find(group.vms.begin(), group.vms.end(), name->get()) != group.vms.end()) {
        r.Fail(member.source(), path, "lists '" + name->get() + "' twice");
        return;
      }
      group.vms.push_back(name->get());
    }
    if (group.vms.empty()) {
      r.Fail(node.source(), path, "is empty");
      return;
    }
    config.groups.push_back(std::move(group));
  }
}

void ReadRetention(Reader& r, const toml::table& root, Config& config) {
  const toml::table* retention = r.Table(root, "", "retention");
  if (retention == nullptr) return;
  for (const auto& [key, node] : *retention) {
    if (!r.ok()) return;
    const std::string path = "retention." + std::string(key.str());
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      r.Fail(node.source(), path, "must be a table { keep_last = N, max_age = \"7d\" }");
      return;
    }
    r.OnlyKeys(*table, path, {"keep_last", "max_age"});
    RetentionSettings rule{.target = std::string(key.str()), .keep_last = {}, .max_age = {}};
    if (table->get("keep_last") != nullptr) {
      int64_t keep = 0;
      r.Integer(*table, path, "keep_last", 0, 1'000'000, keep);
      rule.keep_last = static_cast<uint32_t>(keep);
    }
    if (const toml::node* age = table->get("max_age"); age != nullptr && r.ok()) {
      Result<std::chrono::seconds> parsed = Error(Code::kInvalidArgument, "must be a duration");
      if (const auto* s = age->as_string()) parsed = ParseAge(s->get());
      if (const auto* i = age->as_integer(); i != nullptr && i->get() > 0) {
        parsed = std::chrono::seconds(i->get());
      }
      if (!parsed.ok()) {
        r.Fail(age->source(), path + ".max_age",
               parsed.status().message() + " (e.g. \"36h\", \"7d\", or seconds)");
        return;
      }
      rule.max_age = *parsed;
    }
    if (r.ok() && !rule.keep_last && !rule.max_age) {
      r.Fail(node.source(), path, "needs keep_last and/or max_age");
      return;
    }
    config.retention.push_back(std::move(rule));
  }
}

void ReadLibvirt(Reader& r, const toml::table& root, Config& config) {
  const toml::table* libvirt = r.Table(root, "", "libvirt");
  if (libvirt == nullptr) return;
  LibvirtSettings& l = config.libvirt;
  l.enabled = true;
  r.OnlyKeys(*libvirt, "libvirt", {"uri", "agent_port", "agent_vsock_port", "lun_rules"});
  int64_t vsock_port = l.agent_vsock_port;
  r.Integer(*libvirt, "libvirt", "agent_vsock_port", 1, 0xfffffffe, vsock_port);
  l.agent_vsock_port = static_cast<uint32_t>(vsock_port);
  r.String(*libvirt, "libvirt", "uri", l.uri);
  r.String(*libvirt, "libvirt", "agent_port", l.agent_port);
  if (r.ok() && l.uri.empty()) r.Fail(libvirt->get("uri")->source(), "libvirt.uri", "is empty");
  if (r.ok() && l.agent_port.empty()) {
    r.Fail(libvirt->get("agent_port")->source(), "libvirt.agent_port", "is empty");
  }
  const toml::array* rules = r.Array(*libvirt, "libvirt", "lun_rules");
  if (rules == nullptr) return;
  for (std::size_t i = 0; i < rules->size() && r.ok(); ++i) {
    const std::string path = "libvirt.lun_rules[" + std::to_string(i) + "]";
    const toml::table* rule = rules->get(i)->as_table();
    if (rule == nullptr) {
      r.Fail(rules->get(i)->source(), path, "must be a table");
      return;
    }
    r.OnlyKeys(*rule, path, {"disk", "protocol", "source_prefix", "backend"});
    r.Required(*rule, path, "disk");
    r.Required(*rule, path, "backend");
    LunMappingRule mapping;
    r.String(*rule, path, "disk", mapping.disk_type);
    r.String(*rule, path, "protocol", mapping.protocol);
    r.String(*rule, path, "source_prefix", mapping.source_prefix);
    r.String(*rule, path, "backend", mapping.backend);
    if (!r.ok()) return;
    if (mapping.disk_type != "block" && mapping.disk_type != "file" &&
        mapping.disk_type != "network") {
      r.Fail(rule->get("disk")->source(), path + ".disk",
             "must be \"block\", \"file\" or \"network\"");
      return;
    }
    if (!mapping.protocol.empty() && mapping.disk_type != "network") {
      r.Fail(rule->get("protocol")->source(), path + ".protocol",
             "only applies to disk = \"network\"");
      return;
    }
    if (config.FindBackend(mapping.backend) == nullptr) {
      r.Fail(rule->get("backend")->source(), path + ".backend",
             "no backend named '" + mapping.backend + "' in [backends]");
      return;
    }
    l.lun_rules.push_back(std::move(mapping));
  }
}

}  // namespace

std::string AgentEndpoint::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  return "vsock:" + std::to_string(cid) + ":" + std::to_string(port);
}

Result<AgentEndpoint> ParseAgentEndpoint(std::string_view text) {
  AgentEndpoint endpoint;
  if (text.substr(0, 5) == "unix:") {
    endpoint.kind = AgentEndpoint::Kind::kUnix;
    endpoint.path = std::string(text.substr(5));
    if (!IsAbsolutePath(endpoint.path)) {
      return Error(Code::kInvalidArgument,
                   "agent endpoint '" + std::string(text) + "': unix socket path must be absolute");
    }
    if (endpoint.path.size() >= 108) {  // sizeof(sockaddr_un::sun_path)
      return Error(Code::kInvalidArgument, "agent endpoint '" + std::string(text) +
                                               "': unix socket path longer than 107 bytes");
    }
    return endpoint;
  }
  if (text.substr(0, 6) == "vsock:") {
    const std::string_view rest = text.substr(6);
    const std::size_t colon = rest.find(':');
    auto parse = [](std::string_view digits, uint32_t& out) {
      if (digits.empty()) return false;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
      return ec == std::errc() && end == digits.data() + digits.size();
    };
    endpoint.kind = AgentEndpoint::Kind::kVsock;
    if (colon == std::string_view::npos || !parse(rest.substr(0, colon), endpoint.cid) ||
        !parse(rest.substr(colon + 1), endpoint.port)) {
      return Error(Code::kInvalidArgument,
                   "agent endpoint '" + std::string(text) + "': expected vsock:CID:PORT");
    }
    if (endpoint.cid <= 2 || endpoint.cid == 0xffffffffu) {
      return Error(Code::kInvalidArgument, "agent endpoint '" + std::string(text) + "': CID " +
                                               std::to_string(endpoint.cid) +
                                               " is reserved (guests have CID >= 3)");
    }
    if (endpoint.port == 0xffffffffu) {
      return Error(Code::kInvalidArgument,
                   "agent endpoint '" + std::string(text) + "': port out of range");
    }
    return endpoint;
  }
  return Error(Code::kInvalidArgument,
               "agent endpoint '" + std::string(text) + "': expected unix:/path or vsock:CID:PORT");
}

Result<std::chrono::seconds> ParseAge(std::string_view text) {
  if (text.empty()) return Error(Code::kInvalidArgument, "empty duration");
  int64_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (ec != std::errc() || count <= 0) {
    return Error(Code::kInvalidArgument, "'" + std::string(text) + "' is not a positive duration");
  }
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  int64_t seconds_per_unit = 0;
  if (unit.empty() || unit == "s") {
    seconds_per_unit = 1;
  } else if (unit == "m") {
    seconds_per_unit = 60;
  } else if (unit == "h") {
    seconds_per_unit = 3600;
  } else if (unit == "d") {
    seconds_per_unit = 86400;
  } else if (unit == "w") {
    seconds_per_unit = 7 * 86400;
  } else {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(text) + "': unknown unit (use s, m, h, d or w)");
  }
  return std::chrono::seconds(count * seconds_per_unit);
}

const BackendSettings* Config::FindBackend(std::string_view name) const {
  for (const auto& b : backends) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

const GuestSettings* Config::FindGuest(std::string_view name) const {
  for (const auto& g : guests) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

const GroupSettings* Config::FindGroup(std::string_view name) const {
  for (const auto& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

const RetentionSettings* Config::FindRetention(std::string_view vm_or_group) const {
  const RetentionSettings* fallback = nullptr;
  for (const auto& rule : retention) {
    if (rule.target == vm_or_group) return &rule;
    if (rule.target == "*") fallback = &rule;
  }
  return fallback;
}

Result<Config> ParseConfig(std::string_view toml_text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& error) {
    std::ostringstream text;
    text << source_name << ":" << error.source().begin.line << ": " << error.description();
    return Error(Code::kInvalidArgument, text.str());
  }
  Reader r(source_name);
  Config config;
  config.source_name = std::string(source_name);
  r.OnlyKeys(root, "",
             {"daemon", "policy", "backends", "guests", "groups", "retention", "libvirt"});
  ReadDaemon(r, root, config);
  ReadPolicy(r, root, config);
  ReadBackends(r, root, config);  // before anything that names a backend
  ReadGuests(r, root, config);
  ReadGroups(r, root, config);
  ReadRetention(r, root, config);
  ReadLibvirt(r, root, config);
  if (!r.ok()) return r.error();
  for (const auto& group : config.groups) {
    if (config.FindGuest(group.name) != nullptr) {
      return Error(Code::kInvalidArgument, std::string(source_name) + ": groups." + group.name +
                                               ": a guest has the same name");
    }
  }
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return Error(Code::kNotFound, "config file " + path + " does not exist");
    }
    return Error(Code::kIoError, "cannot read config file " + path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace qb::config
