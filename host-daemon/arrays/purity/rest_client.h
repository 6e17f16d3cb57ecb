// A blocking HTTPS client for the FlashArray REST 2.x API (Boost.Beast + OpenSSL).
//
// Every call is bound by a caller deadline (connect, TLS handshake, write and read all stop at
// it). The client negotiates the API version (GET /api/api_version), logs in with the API token
// (POST /api/2.N/login, header api-token -> session header x-auth-token), keeps one keep-alive
// connection, logs in again ONCE when a call answers 401, and honours Retry-After on 429 / 503 /
// "Server is busy" for idempotent calls only while the wait fits the deadline.
//
// Threading: calls are serialised by an internal mutex (one connection, one private io_context
// that is run only inside a call); safe to call from several worker threads. Never call it on
// the daemon's io thread: it blocks.
//
// Secrets: the API token and the session token are never logged and never appear in a Status.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/time_limits.h"

namespace qb::arrays::purity {

// Backoff when an overloaded array answers 429/503 without a usable Retry-After.
inline constexpr std::chrono::milliseconds kOverloadDefaultBackoff = limits::kReconnectBackoffMin;
// Largest response body accepted from the array (bounds memory on a misbehaving peer).
inline constexpr std::size_t kMaxResponseBody = 16 * 1024 * 1024;

struct RestClientOptions {
  std::string host;  // management address: IP or DNS name (also the name verified in the cert)
  uint16_t port = 443;
  std::string ca_file;  // PEM bundle to verify the array's certificate; empty: system store
  // Skips certificate and host name verification. For labs only; the backend warns in Prepare().
  bool insecure_skip_verify = false;
  // "2.N" to pin a version; empty: the highest 2.x the array offers.
  std::string api_version;
};

enum class HttpMethod { kGet, kPost, kPatch, kDelete };

struct RestRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string path;  // below /api/2.N, e.g. "/volume-snapshots"
  std::vector<std::pair<std::string, std::string>> query;  // unencoded; the client encodes
  std::optional<boost::json::value> body;
  // false for creates: the client then never re-sends the request by itself (no overload retry,
  // no retry on a dropped keep-alive connection); the caller looks the object up instead.
  bool idempotent = true;
};

// An HTTP answer (any status). Transport failures are a Status instead.
struct RestReply {
  unsigned status = 0;
  boost::json::value body;  // parsed JSON, null when empty or not JSON
  // Retry-After in its delta-seconds form; an HTTP-date (not expected from the array) is ignored
  // and kOverloadDefaultBackoff used instead.
  std::optional<std::chrono::milliseconds> retry_after;
  // The array's error items joined ("Volume does not exist. (context: vol1)"), "" on success.
  std::string error_text;

  bool ok() const { return status >= 200 && status < 300; }
  bool overloaded() const;  // 429, 503, or an error saying "Server is busy"
};

class RestClient {
 public:
  // `api_token` is moved in and wiped from memory when the client is destroyed.
  RestClient(RestClientOptions options, std::string api_token);
  ~RestClient();
  RestClient(const RestClient&) = delete;
  RestClient& operator=(const RestClient&) = delete;

  // Makes sure a session exists (version negotiated, logged in). OK, or kTimeout, kIoError
  // (connect/TLS, including certificate verification failures), kPermissionDenied (login
  // refused), kVersionMismatch (no REST 2.x), kProtocolError (malformed answers).
  Status EnsureSession(std::chrono::steady_clock::time_point deadline);

  // Sends `request` and returns the array's answer, any HTTP status included (the caller maps
  // statuses to its own errors; see ErrorFromReply). A Status error means no usable answer:
  // kTimeout (deadline passed; the request may or may not have been applied), kIoError
  // (connection failed or dropped), or any EnsureSession() error.
  Result<RestReply> Call(const RestRequest& request,
                         std::chrono::steady_clock::time_point deadline);

  // The negotiated version ("2.36"), "" before the first session.
  std::string api_version() const;

  // HTTP requests written to the wire since construction (logins, version probes and retries
  // included): the cost figure the tests count.
  uint64_t requests_sent() const { return requests_sent_.load(); }

 private:
  class Connection;

  Status EnsureSessionLocked(std::chrono::steady_clock::time_point deadline);
  Result<RestReply> SendLocked(HttpMethod method, const std::string& target,
                               const std::string& body, bool send_session, bool idempotent,
                               std::chrono::steady_clock::time_point deadline,
                               std::string* auth_token_out);

  RestClientOptions options_;
  std::string api_token_;
  std::string session_token_;
  std::string version_;
  mutable std::mutex mutex_;
  std::unique_ptr<Connection> connection_;
  std::atomic<uint64_t> requests_sent_{0};
};

// Maps a non-2xx reply to a Status for the operation `what` ("create snapshot vol1.qb-x"):
// 400/404 "does not exist" -> kNotFound, "already exists" -> kConflict, 401/403 ->
// kPermissionDenied, 429/503 -> kBusy, anything else -> kArrayError. The message carries the
// HTTP status and the array's error text.
Status ErrorFromReply(const RestReply& reply, std::string_view what);

// True when the reply is an error saying the named object does not exist.
bool IsNotFound(const RestReply& reply);
// True when the reply is an error saying the name is taken.
bool IsAlreadyExists(const RestReply& reply);

// The API token from a file that only its owner can read: refuses a file that is group- or
// world-accessible (kPermissionDenied) or not a regular file; trims trailing white space.
Result<std::string> LoadApiTokenFile(const std::string& path);

// The API token from a systemd credential: $CREDENTIALS_DIRECTORY/<name> (LoadCredential= /
// SetCredentialEncrypted=). kNotFound when the variable is unset or the file is missing.
Result<std::string> LoadApiTokenCredential(const std::string& name);

}  // namespace qb::arrays::purity
