// FakeFlashArray: a FAKE Pure Storage FlashArray REST 2.x endpoint for tests. It is NOT a
// FlashArray and was not checked against one: it was written from Pure's published REST 2.x
// OpenAPI documents (see README.md in this folder) as an independent reading of routes, fields
// and error shapes, and it implements only what the purity backend uses.
//
// HTTPS on 127.0.0.1 (ephemeral port) with a certificate the test provides; one thread per
// connection with blocking I/O (it is a test fixture, not a server). Objects: volumes (with a
// 24-hex serial), volume snapshots, protection groups and their volume members, protection group
// snapshots. Names are case-insensitive like the array's. Destroyed objects keep their names
// until eradicated.
//
// Fault injection (Inject): a canned HTTP status with an error body and optional Retry-After
// (the request is NOT executed), a slow answer (the request IS executed at once, the answer is
// delayed), a lost answer (executed, then the connection is closed without a reply), and
// ExpireSessions() (every session token answers 401 until the next login).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace qb::testing {

struct FakeArrayFault {
  enum class Kind { kStatus, kSlowAnswer, kDropAnswer };
  Kind kind = Kind::kStatus;
  std::string method;     // "POST", ... ; "" matches any
  std::string path;       // below /api/2.N ("/volume-snapshots"), or "/login"; "" matches any
  unsigned status = 503;  // kStatus
  std::optional<int> retry_after_seconds;  // kStatus: Retry-After header
  std::string message = "Server is busy";  // kStatus: error message
  std::chrono::milliseconds delay{0};      // kSlowAnswer
  int times = 1;                           // how many matching requests it applies to
};

class FakeFlashArray {
 public:
  // Starts listening on 127.0.0.1 with the PEM certificate chain and key files. Throws
  // std::runtime_error if it cannot (a test setup failure, not an expected error).
  FakeFlashArray(const std::string& cert_file, const std::string& key_file, std::string api_token);
  ~FakeFlashArray();  // stops and joins every thread
  FakeFlashArray(const FakeFlashArray&) = delete;
  FakeFlashArray& operator=(const FakeFlashArray&) = delete;

  uint16_t port() const { return port_; }

  // Creates a volume; returns its serial (24 upper-case hex digits).
  std::string AddVolume(const std::string& name);

  // REST versions /api/api_version lists (default 1.19, 2.0, 2.4, 2.21).
  void SetVersions(std::vector<std::string> versions);

  void Inject(FakeArrayFault fault);
  void ExpireSessions();

  // "METHOD /path" of every request received (path below /api/2.N; "/api/api_version" as is).
  std::vector<std::string> Requests() const;
  void ClearRequests();

  // Inspection for assertions.
  bool HasVolume(const std::string& name) const;
  std::string VolumeSource(const std::string& name) const;  // what it was copied from, or ""
  bool HasVolumeSnapshot(const std::string& name, bool include_destroyed = false) const;
  bool HasProtectionGroupSnapshot(const std::string& name, bool include_destroyed = false) const;
  std::vector<std::string> ProtectionGroupMembers(const std::string& group) const;
  std::vector<std::string> VolumeSnapshotNames(bool include_destroyed = false) const;
  int logins() const;

  struct Impl;

 private:
  void AcceptLoop();
  void Serve(int fd);

  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace qb::testing
