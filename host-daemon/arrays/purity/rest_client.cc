#include "host-daemon/arrays/purity/rest_client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"

namespace qb::arrays::purity {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kUserAgent = "quiesce-bridge-purity/0.1";

http::verb VerbOf(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return http::verb::get;
    case HttpMethod::kPost:
      return http::verb::post;
    case HttpMethod::kPatch:
      return http::verb::patch;
    case HttpMethod::kDelete:
      return http::verb::delete_;
  }
  return http::verb::get;
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string JoinErrors(const json::value& body) {
  if (!body.is_object()) return "";
  const auto* errors = body.as_object().if_contains("errors");
  if (errors == nullptr || !errors->is_array()) return "";
  std::string out;
  for (const auto& item : errors->as_array()) {
    if (!item.is_object()) continue;
    const auto& obj = item.as_object();
    if (!out.empty()) out += "; ";
    if (const auto* m = obj.if_contains("message"); m != nullptr && m->is_string()) {
      out += std::string(m->as_string());
    }
    if (const auto* c = obj.if_contains("context"); c != nullptr && c->is_string()) {
      out += fmt::format(" (context: {})", std::string_view(c->as_string()));
    }
  }
  return out;
}

// "2.36" -> {2, 36}; nullopt when not of that form.
std::optional<std::pair<int, int>> ParseVersion(std::string_view v) {
  const auto dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= v.size()) return std::nullopt;
  int major = 0, minor = 0;
  for (char c : v.substr(0, dot)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    major = major * 10 + (c - '0');
  }
  for (char c : v.substr(dot + 1)) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || minor > 100000) return std::nullopt;
    minor = minor * 10 + (c - '0');
  }
  return std::make_pair(major, minor);
}

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

bool RestReply::overloaded() const {
  return status == 429 || status == 503 ||
         Lower(error_text).find("server is busy") != std::string::npos;
}

// One TLS connection and the private io_context its operations run on. Used only under the
// client's mutex.
class RestClient::Connection {
 public:
  explicit Connection(const RestClientOptions& options)
      : options_(options), ssl_(asio::ssl::context::tls_client) {
    ssl_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    if (options_.insecure_skip_verify) {
      ssl_.set_verify_mode(asio::ssl::verify_none);
    } else {
      ssl_.set_verify_mode(asio::ssl::verify_peer);
      boost::system::error_code ec;
      if (options_.ca_file.empty()) {
        ssl_.set_default_verify_paths(ec);
      } else {
        ssl_.load_verify_file(options_.ca_file, ec);
      }
      if (ec) setup_error_ = fmt::format("CA file {}: {}", options_.ca_file, ec.message());
    }
  }

  bool is_open() const { return stream_.has_value(); }
  bool reused() const { return reused_; }
  void Close() {
    stream_.reset();
    buffer_.clear();
  }

  Status Open(Clock::time_point deadline) {
    Close();
    if (!setup_error_.empty()) return Error(Code::kIoError, setup_error_);
    tcp::resolver resolver(ioc_);
    boost::system::error_code ec;
    tcp::resolver::results_type endpoints;
    {
      asio::steady_timer timer(ioc_, deadline);
      bool timed_out = false;
      timer.async_wait([&](boost::system::error_code e) {
        if (!e) {
          timed_out = true;
          resolver.cancel();
        }
      });
      resolver.async_resolve(options_.host, std::to_string(options_.port),
                             [&](boost::system::error_code e, tcp::resolver::results_type r) {
                               ec = e;
                               endpoints = std::move(r);
                               timer.cancel();
                             });
      Run();
      if (timed_out) return Error(Code::kTimeout, "resolving " + options_.host);
      if (ec)
        return Error(Code::kIoError, fmt::format("resolve {}: {}", options_.host, ec.message()));
    }
    stream_.emplace(ioc_, ssl_);
    if (!options_.insecure_skip_verify) {
      stream_->set_verify_callback(asio::ssl::host_name_verification(options_.host));
    }
    if (!IsIpAddress(options_.host) &&
        !SSL_set_tlsext_host_name(stream_->native_handle(), options_.host.c_str())) {
      return Error(Code::kIoError, "TLS: cannot set SNI host name");
    }
    auto& tcp_stream = beast::get_lowest_layer(*stream_);
    tcp_stream.expires_at(deadline);
    tcp_stream.async_connect(endpoints,
                             [&](boost::system::error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec) return TransportError("connect", ec);
    tcp_stream.expires_at(deadline);
    stream_->async_handshake(asio::ssl::stream_base::client,
                             [&](boost::system::error_code e) { ec = e; });
    Run();
    if (ec) return TransportError("TLS handshake", ec);
    reused_ = false;
    return Status::Ok();
  }

  // Writes `request` and reads the answer. `written` tells whether the request left this host.
  Result<http::response<http::string_body>> Exchange(http::request<http::string_body>& request,
                                                     Clock::time_point deadline, bool* written) {
    *written = false;
    boost::system::error_code ec;
    auto& tcp_stream = beast::get_lowest_layer(*stream_);
    tcp_stream.expires_at(deadline);
    http::async_write(*stream_, request, [&](boost::system::error_code e, std::size_t) { ec = e; });
    Run();
    if (ec) {
      Close();
      return TransportError("write", ec);
    }
    *written = true;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    tcp_stream.expires_at(deadline);
    http::async_read(*stream_, buffer_, parser,
                     [&](boost::system::error_code e, std::size_t) { ec = e; });
    Run();
    if (ec) {
      Close();
      return TransportError("read", ec);
    }
    auto response = parser.release();
    if (!response.keep_alive()) {
      Close();
    } else {
      reused_ = true;
    }
    return response;
  }

 private:
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  static Status TransportError(std::string_view step, boost::system::error_code ec) {
    if (ec == beast::error::timeout) {
      return Error(Code::kTimeout, fmt::format("array {} passed the deadline", step));
    }
    return Error(Code::kIoError, fmt::format("array {}: {}", step, ec.message()));
  }

  const RestClientOptions& options_;
  asio::io_context ioc_;
  asio::ssl::context ssl_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
  std::string setup_error_;
  bool reused_ = false;
};

RestClient::RestClient(RestClientOptions options, std::string api_token)
    : options_(std::move(options)), api_token_(std::move(api_token)) {
  connection_ = std::make_unique<Connection>(options_);
}

RestClient::~RestClient() {
  if (!api_token_.empty()) OPENSSL_cleanse(api_token_.data(), api_token_.size());
  if (!session_token_.empty()) OPENSSL_cleanse(session_token_.data(), session_token_.size());
}

std::string RestClient::api_version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

Status RestClient::EnsureSession(Clock::time_point deadline) {
  std::lock_guard lock(mutex_);
  return EnsureSessionLocked(deadline);
}

Result<RestReply> RestClient::SendLocked(HttpMethod method, const std::string& target,
                                         const std::string& body, bool send_session,
                                         bool idempotent, Clock::time_point deadline,
                                         std::string* auth_token_out) {
  http::request<http::string_body> request{VerbOf(method), target, 11};
  request.set(http::field::host, options_.host);
  request.set(http::field::user_agent, kUserAgent);
  request.set(http::field::accept, "application/json");
  if (send_session) request.set("x-auth-token", session_token_);
  if (auth_token_out != nullptr) request.set("api-token", api_token_);
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = body;
  }
  request.prepare_payload();

  // A keep-alive connection the array closed meanwhile fails on first use; an idempotent
  // request is then sent once more on a fresh connection.
  for (int attempt = 0;; ++attempt) {
    if (!connection_->is_open()) QB_RETURN_IF_ERROR(connection_->Open(deadline));
    const bool was_reused = connection_->reused();
    bool written = false;
    auto response = connection_->Exchange(request, deadline, &written);
    if (written) requests_sent_.fetch_add(1);
    if (!response.ok()) {
      const bool stale = was_reused && response.status().code() == Code::kIoError;
      if (stale && attempt == 0 && (idempotent || !written)) continue;
      return response.status();
    }
    RestReply reply;
    reply.status = response->result_int();
    if (!response->body().empty()) {
      boost::system::error_code ec;
      reply.body = json::parse(response->body(), ec);
      if (ec) reply.body = nullptr;
    }
    reply.error_text = JoinErrors(reply.body);
    if (auto it = response->find(http::field::retry_after); it != response->end()) {
      const std::string value(it->value());
      char* end = nullptr;
      const long seconds = std::strtol(value.c_str(), &end, 10);
      if (end != value.c_str() && *end == '\0' && seconds >= 0 && seconds < 86400) {
        reply.retry_after = std::chrono::seconds(seconds);
      }
    }
    if (auth_token_out != nullptr) {
      if (auto it = response->find("x-auth-token"); it != response->end()) {
        *auth_token_out = std::string(it->value());
      }
    }
    return reply;
  }
}

Status RestClient::EnsureSessionLocked(Clock::time_point deadline) {
  if (version_.empty()) {
    auto reply =
        SendLocked(HttpMethod::kGet, "/api/api_version", "", false, true, deadline, nullptr);
    if (!reply.ok()) return reply.status();
    if (!reply->ok()) return ErrorFromReply(*reply, "GET /api/api_version");
    const json::value* versions = nullptr;
    if (reply->body.is_object()) versions = reply->body.as_object().if_contains("version");
    if (versions == nullptr || !versions->is_array()) {
      return Error(Code::kProtocolError, "GET /api/api_version: no 'version' list");
    }
    std::optional<std::pair<int, int>> best;
    std::string best_text;
    for (const auto& v : versions->as_array()) {
      if (!v.is_string()) continue;
      auto parsed = ParseVersion(v.as_string());
      if (!parsed || parsed->first != 2) continue;
      if (!best || *parsed > *best) {
        best = parsed;
        best_text = std::string(v.as_string());
      }
    }
    if (!best) return Error(Code::kVersionMismatch, "the array offers no REST 2.x version");
    if (!options_.api_version.empty()) {
      const auto& list = versions->as_array();
      const bool offered = std::any_of(list.begin(), list.end(), [&](const json::value& v) {
        return v.is_string() && v.as_string() == options_.api_version;
      });
      if (!offered) {
        return Error(Code::kVersionMismatch,
                     fmt::format("the array does not offer the pinned REST version {} (highest "
                                 "2.x: {})",
                                 options_.api_version, best_text));
      }
      best_text = options_.api_version;
    }
    version_ = best_text;
  }
  if (!session_token_.empty()) return Status::Ok();
  std::string token;
  auto reply = SendLocked(HttpMethod::kPost, fmt::format("/api/{}/login", version_), "", false,
                          true, deadline, &token);
  if (!reply.ok()) return reply.status();
  if (reply->status == 401 || reply->status == 403) {
    return Error(
        Code::kPermissionDenied,
        fmt::format("login refused by the array (HTTP {}): check the API token", reply->status));
  }
  if (!reply->ok()) return ErrorFromReply(*reply, "login");
  if (token.empty()) return Error(Code::kProtocolError, "login answered without x-auth-token");
  session_token_ = std::move(token);
  return Status::Ok();
}

Result<RestReply> RestClient::Call(const RestRequest& request, Clock::time_point deadline) {
  std::lock_guard lock(mutex_);
  const std::string body = request.body ? json::serialize(*request.body) : std::string();
  bool relogged = false;
  while (true) {
    if (Clock::now() >= deadline)
      return Error(Code::kTimeout, "deadline passed before " + request.path);
    QB_RETURN_IF_ERROR(EnsureSessionLocked(deadline));
    std::string target = fmt::format("/api/{}{}", version_, request.path);
    char separator = '?';
    for (const auto& [key, value] : request.query) {
      target += separator;
      target += UrlEncode(key);
      target += '=';
      target += UrlEncode(value);
      separator = '&';
    }
    auto reply =
        SendLocked(request.method, target, body, true, request.idempotent, deadline, nullptr);
    if (!reply.ok()) return reply;
    if (reply->status == 401 && !relogged) {
      // The session expired (or the array restarted): one new login, then the same request.
      // A 401 means the request was not executed, so this is safe for creates too.
      relogged = true;
      if (!session_token_.empty()) OPENSSL_cleanse(session_token_.data(), session_token_.size());
      session_token_.clear();
      continue;
    }
    if (reply->overloaded() && request.idempotent) {
      const auto wait = std::max<std::chrono::milliseconds>(
          reply->retry_after.value_or(kOverloadDefaultBackoff), kOverloadDefaultBackoff);
      if (Clock::now() + wait < deadline) {
        std::this_thread::sleep_for(wait);
        continue;
      }
    }
    return reply;
  }
}

Status ErrorFromReply(const RestReply& reply, std::string_view what) {
  const std::string detail =
      reply.error_text.empty() ? std::string("no error text") : reply.error_text;
  const std::string message = fmt::format("{}: HTTP {}: {}", what, reply.status, detail);
  if (IsNotFound(reply)) return Error(Code::kNotFound, message);
  if (IsAlreadyExists(reply)) return Error(Code::kConflict, message);
  if (reply.status == 401 || reply.status == 403) return Error(Code::kPermissionDenied, message);
  if (reply.overloaded()) return Error(Code::kBusy, message);
  return Error(Code::kArrayError, message);
}

bool IsNotFound(const RestReply& reply) {
  if (reply.ok()) return false;
  if (reply.status == 404 && reply.error_text.empty()) return true;
  const std::string text = Lower(reply.error_text);
  return text.find("does not exist") != std::string::npos ||
         text.find("not found") != std::string::npos;
}

bool IsAlreadyExists(const RestReply& reply) {
  if (reply.ok()) return false;
  return Lower(reply.error_text).find("already exists") != std::string::npos;
}

namespace {

// Opens the file once (never following a symlink, never blocking on a FIFO) and checks the
// open file, so what is checked is what is read.
Result<std::string> ReadTokenFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    if (errno == ELOOP) {
      return Error(Code::kPermissionDenied,
                   fmt::format("API token file {} is a symlink; name the file itself", path));
    }
    return Error(errno == ENOENT ? Code::kNotFound : Code::kIoError,
                 fmt::format("API token file {}: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Error(Code::kIoError, fmt::format("API token file {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Code::kInvalidArgument,
                 fmt::format("API token file {} is not a regular file", path));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Error(Code::kPermissionDenied,
                 fmt::format("API token file {} is accessible by group or others (mode {:o}); "
                             "chmod 0400 it",
                             path, st.st_mode & 07777));
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return Error(Code::kPermissionDenied,
                 fmt::format("API token file {} is owned by uid {}, not root or this process", path,
                             st.st_uid));
  }
  // A token is short; a file larger than this is not a token.
  constexpr std::size_t kMaxTokenFile = 64 * 1024;
  std::string token;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Error(Code::kIoError,
                   fmt::format("API token file {}: {}", path, std::strerror(errno)));
    }
    if (n == 0) break;
    token.append(buffer, static_cast<std::size_t>(n));
    OPENSSL_cleanse(buffer, sizeof buffer);
    if (token.size() > kMaxTokenFile) {
      OPENSSL_cleanse(token.data(), token.size());
      return Error(Code::kInvalidArgument, fmt::format("API token file {} is too large", path));
    }
  }
  if (const auto nul = token.find('\0'); nul != std::string::npos) token.resize(nul);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty())
    return Error(Code::kInvalidArgument, fmt::format("API token file {} is empty", path));
  return token;
}

}  // namespace

Result<std::string> LoadApiTokenFile(const std::string& path) { return ReadTokenFile(path); }

Result<std::string> LoadApiTokenCredential(const std::string& name) {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (dir == nullptr || *dir == '\0') {
    return Error(Code::kNotFound, "CREDENTIALS_DIRECTORY is not set (no systemd credentials)");
  }
  if (name.empty() || name.find('/') != std::string::npos) {
    return Error(Code::kInvalidArgument, "credential name must be a plain file name");
  }
  return ReadTokenFile(std::string(dir) + "/" + name);
}

}  // namespace qb::arrays::purity
