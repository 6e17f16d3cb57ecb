#include "host-daemon/arrays/rbd/rbd_config.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace qb::arrays::rbd {
namespace {

// Whole milliseconds between 1 s (librados' granularity) and the longest lease.
Status ParseTimeout(const std::string& key, const std::string& value,
                    std::chrono::milliseconds* out) {
  int64_t ms = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  const std::chrono::milliseconds parsed(ms);
  if (ec != std::errc() || end != value.data() + value.size() || parsed < std::chrono::seconds(1) ||
      parsed > limits::kMaxLease) {
    return Error(Code::kInvalidArgument,
                 key + ": '" + value + "' is not a whole number of milliseconds from 1000 to " +
                     std::to_string(limits::kMaxLease.count()));
  }
  *out = parsed;
  return Status::Ok();
}

Status AbsolutePath(const std::string& key, const std::string& value, std::string* out) {
  if (value.empty() || value.front() != '/') {
    return Error(Code::kInvalidArgument, key + ": must be an absolute path");
  }
  *out = value;
  return Status::Ok();
}

std::string Octal(mode_t mode) {
  char text[16];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

Result<std::string> CheckKeyringFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::string();
    return Error(Code::kIoError, "keyring " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Code::kPermissionDenied, "keyring " + path + " is not a regular file");
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return Error(Code::kPermissionDenied, "keyring " + path + " is owned by uid " +
                                              std::to_string(st.st_uid) +
                                              ", not root (or the daemon's user)");
  }
  if ((st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) != 0) {
    return Error(Code::kPermissionDenied, "keyring " + path + " (mode " + Octal(st.st_mode) +
                                              ") is readable or writable by others or writable "
                                              "by its group; chmod 0600 (or 0640 root:ceph) it");
  }
  if ((st.st_mode & S_IRGRP) != 0) {
    return "keyring " + path + " (mode " + Octal(st.st_mode) + ") is readable by group " +
           std::to_string(st.st_gid) + ": every member can read the cephx secret";
  }
  return std::string();
}

Result<RbdConfig> RbdConfigFromSettings(const std::string& name,
                                        const std::map<std::string, std::string>& settings) {
  RbdConfig config;
  config.name = name;
  const std::string where = "backends." + name + ".";
  for (const auto& [key, value] : settings) {
    Status status;
    if (key == "type") {
      if (value != "rbd") status = Error(Code::kInvalidArgument, "type: must be \"rbd\"");
    } else if (key == "conf") {
      status = AbsolutePath(key, value, &config.conf_path);
    } else if (key == "keyring") {
      status = AbsolutePath(key, value, &config.keyring_path);
    } else if (key == "client_id") {
      if (value.empty() || value.rfind("client.", 0) == 0) {
        status = Error(Code::kInvalidArgument,
                       "client_id: must be the cephx user without the \"client.\" prefix");
      } else {
        config.client_id = value;
      }
    } else if (key == "cluster") {
      if (value.empty() || value.find('/') != std::string::npos) {
        status = Error(Code::kInvalidArgument, "cluster: must be a cluster name such as \"ceph\"");
      } else {
        config.cluster = value;
      }
    } else if (key == "pool") {
      status = Error(Code::kInvalidArgument,
                     "pool: not a backend key; the pool is part of every LUN's volume "
                     "(\"pool/image\")");
    } else if (key == "op_timeout_ms") {
      status = ParseTimeout(key, value, &config.op_timeout);
    } else if (key == "connect_timeout_ms") {
      status = ParseTimeout(key, value, &config.connect_timeout);
    } else {
      status = Error(Code::kInvalidArgument,
                     key +
                         ": unknown key (conf, client_id, keyring, op_timeout_ms, "
                         "connect_timeout_ms)");
    }
    if (!status.ok()) return Error(status.code(), where + status.message());
  }
  if (!config.keyring_path.empty()) {
    auto checked = CheckKeyringFile(config.keyring_path);
    if (!checked.ok())
      return Error(checked.status().code(), where + "keyring: " + checked.status().message());
    if (!checked->empty()) spdlog::warn("{}keyring: {}", where, *checked);
  }
  return config;
}

}  // namespace qb::arrays::rbd
