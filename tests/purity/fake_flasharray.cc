#include "tests/purity/fake_flasharray.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <random>
#include <stdexcept>

namespace qb::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> SplitOn(const std::string& s, char separator) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(separator, start);
    const auto end = comma == std::string::npos ? s.size() : comma;
    if (end > start) out.push_back(s.substr(start, end - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> SplitComma(const std::string& s) { return SplitOn(s, ','); }

struct Volume {
  std::string name, serial, id, source;
  int64_t created = 0;
  bool destroyed = false;
};
struct VolumeSnapshot {
  std::string name, serial, id, source, suffix, pgroup_snapshot;
  int64_t created = 0;
  bool destroyed = false;
};
struct ProtectionGroup {
  std::string name;
  std::vector<std::string> members;  // volume names as given
  bool destroyed = false;
};
struct GroupSnapshot {
  std::string name, source, suffix;
  int64_t created = 0;
  bool destroyed = false;
};

struct Reply {
  unsigned status = 200;
  json::value body;
  std::optional<int> retry_after;
};

Reply Items(json::array items) {
  const auto count = static_cast<int64_t>(items.size());
  return Reply{200,
               json::object{{"items", std::move(items)},
                            {"continuation_token", nullptr},
                            {"more_items_remaining", false},
                            {"total_item_count", count}},
               std::nullopt};
}

Reply Fail(unsigned status, std::string_view context, std::string_view message) {
  json::array errors;
  errors.push_back(json::object{{"context", context}, {"message", message}});
  return Reply{status, json::object{{"errors", std::move(errors)}}, std::nullopt};
}

}  // namespace

struct FakeFlashArray::Impl {
  std::string api_token;
  std::string cert_file, key_file;
  int listen_fd = -1;
  std::thread acceptor;

  mutable std::mutex mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::vector<std::thread> connections;
  std::set<int> open_fds;

  std::vector<std::string> versions{"1.19", "2.0", "2.4", "2.21"};
  std::set<std::string> sessions;
  int logins = 0;
  uint64_t next_id = 1;
  std::mt19937_64 rng{0x5eed};
  std::map<std::string, Volume> volumes;  // keyed by lower-case name
  std::map<std::string, VolumeSnapshot> snapshots;
  std::map<std::string, ProtectionGroup> groups;
  std::map<std::string, GroupSnapshot> group_snapshots;
  std::vector<FakeArrayFault> faults;
  std::vector<std::string> requests;

  std::string NewSerial() {
    return fmt::format("{:08X}{:016X}", static_cast<uint32_t>(rng()), rng());
  }
  std::string NewId() { return fmt::format("id-{}", next_id++); }

  // Handles one request under `mu`. `path` is below /api/2.N.
  Reply Handle(const std::string& method, const std::string& path,
               const std::map<std::string, std::string>& query, const json::value& body);

  json::value VolumeJson(const Volume& v) const {
    json::object o{{"id", v.id},           {"name", v.name},           {"serial", v.serial},
                   {"created", v.created}, {"destroyed", v.destroyed}, {"provisioned", 1 << 30}};
    if (v.source.empty()) {
      o["source"] = nullptr;
    } else {
      o["source"] = json::object{{"name", v.source}};
    }
    return o;
  }
  json::value SnapshotJson(const VolumeSnapshot& s) const {
    return json::object{{"id", s.id},
                        {"name", s.name},
                        {"serial", s.serial},
                        {"created", s.created},
                        {"destroyed", s.destroyed},
                        {"suffix", s.suffix},
                        {"source", json::object{{"name", s.source}}},
                        {"time_remaining", s.destroyed ? json::value(86400000) : json::value()}};
  }
  json::value GroupSnapshotJson(const GroupSnapshot& s) const {
    return json::object{{"name", s.name},
                        {"created", s.created},
                        {"destroyed", s.destroyed},
                        {"suffix", s.suffix},
                        {"source", json::object{{"name", s.source}}}};
  }

  static std::optional<bool> DestroyedFilter(const std::map<std::string, std::string>& query) {
    auto it = query.find("destroyed");
    if (it == query.end()) return std::nullopt;
    return it->second == "true";
  }

  static std::string Suffix(const json::value& body) {
    if (!body.is_object()) return "";
    const auto* s = body.as_object().if_contains("suffix");
    return s != nullptr && s->is_string() ? std::string(s->as_string()) : "";
  }

  static bool ValidSuffix(const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    if (!alnum(s.front()) || !alnum(s.back())) return false;
    return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
  }

  Reply VolumeSnapshotCreate(const std::map<std::string, std::string>& query,
                             const json::value& body, bool dry_run);
  Reply GroupSnapshotCreate(const std::map<std::string, std::string>& query,
                            const json::value& body, bool dry_run);
};

Reply FakeFlashArray::Impl::VolumeSnapshotCreate(const std::map<std::string, std::string>& query,
                                                 const json::value& body, bool dry_run) {
  auto it = query.find("source_names");
  if (it == query.end()) return Fail(400, "", "Missing required parameter: source_names.");
  std::string suffix = Suffix(body);
  if (suffix.empty()) suffix = fmt::format("{}", next_id);
  if (!ValidSuffix(suffix)) return Fail(400, suffix, "Invalid suffix.");
  const auto sources = SplitComma(it->second);
  for (const auto& source : sources) {
    auto v = volumes.find(Lower(source));
    if (v == volumes.end() || v->second.destroyed)
      return Fail(400, source, "Volume does not exist.");
    const std::string name = v->second.name + "." + suffix;
    if (snapshots.count(Lower(name)) != 0) return Fail(400, name, "Snapshot already exists.");
  }
  json::array items;
  for (const auto& source : sources) {
    const auto& v = volumes[Lower(source)];
    VolumeSnapshot s{
        v.name + "." + suffix, NewSerial(), NewId(), v.name, suffix, "", NowMs(), false};
    if (dry_run) {
      items.push_back(json::object{{"name", s.name}, {"success", true}});
      continue;
    }
    items.push_back(SnapshotJson(s));
    snapshots[Lower(s.name)] = s;
  }
  return Items(std::move(items));
}

Reply FakeFlashArray::Impl::GroupSnapshotCreate(const std::map<std::string, std::string>& query,
                                                const json::value& body, bool dry_run) {
  auto it = query.find("source_names");
  if (it == query.end()) return Fail(400, "", "Missing required parameter: source_names.");
  std::string suffix = Suffix(body);
  if (suffix.empty()) suffix = fmt::format("{}", next_id);
  if (!ValidSuffix(suffix)) return Fail(400, suffix, "Invalid suffix.");
  auto g = groups.find(Lower(it->second));
  if (g == groups.end() || g->second.destroyed) {
    return Fail(400, it->second, "Protection group does not exist.");
  }
  const std::string name = g->second.name + "." + suffix;
  if (group_snapshots.count(Lower(name)) != 0) return Fail(400, name, "Snapshot already exists.");
  json::array items;
  if (dry_run) {
    items.push_back(json::object{{"name", name}, {"success", true}});
    return Items(std::move(items));
  }
  const int64_t now = NowMs();
  GroupSnapshot gs{name, g->second.name, suffix, now, false};
  for (const auto& member : g->second.members) {
    const auto& v = volumes[Lower(member)];
    VolumeSnapshot s{name + "." + v.name, NewSerial(), NewId(), v.name, suffix, name, now, false};
    snapshots[Lower(s.name)] = s;
  }
  group_snapshots[Lower(name)] = gs;
  items.push_back(GroupSnapshotJson(gs));
  return Items(std::move(items));
}

Reply FakeFlashArray::Impl::Handle(const std::string& method, const std::string& path,
                                   const std::map<std::string, std::string>& query,
                                   const json::value& body) {
  auto param = [&](const char* key) -> std::string {
    auto it = query.find(key);
    return it == query.end() ? std::string() : it->second;
  };
  const auto destroyed_filter = DestroyedFilter(query);
  auto keep = [&](bool destroyed) { return !destroyed_filter || *destroyed_filter == destroyed; };

  if (path == "/volumes" && method == "GET") {
    json::array items;
    const std::string filter = param("filter");
    if (!param("names").empty()) {
      for (const auto& n : SplitComma(param("names"))) {
        auto v = volumes.find(Lower(n));
        if (v == volumes.end()) return Fail(400, n, "Volume does not exist.");
        if (keep(v->second.destroyed)) items.push_back(VolumeJson(v->second));
      }
      return Items(std::move(items));
    }
    std::string serial;
    if (!filter.empty()) {
      // The only filter form the fake understands: serial='HEX'.
      const std::string prefix = "serial='";
      if (filter.rfind(prefix, 0) != 0 || filter.back() != '\'') {
        return Fail(400, filter, "Unsupported filter (fake array).");
      }
      serial = filter.substr(prefix.size(), filter.size() - prefix.size() - 1);
    }
    for (const auto& [key, v] : volumes) {
      if (!serial.empty() && Lower(v.serial) != Lower(serial)) continue;
      if (keep(v.destroyed)) items.push_back(VolumeJson(v));
    }
    return Items(std::move(items));
  }
  if (path == "/volumes" && method == "POST") {
    const std::string name = param("names");
    if (name.empty()) return Fail(400, "", "Missing required parameter: names.");
    const bool overwrite = param("overwrite") == "true";
    std::string source;
    if (body.is_object()) {
      if (const auto* s = body.as_object().if_contains("source"); s != nullptr && s->is_object()) {
        if (const auto* n = s->as_object().if_contains("name"); n != nullptr && n->is_string()) {
          source = std::string(n->as_string());
        }
      }
    }
    if (!source.empty() && snapshots.count(Lower(source)) == 0 &&
        volumes.count(Lower(source)) == 0) {
      return Fail(400, source, "Source does not exist.");
    }
    auto existing = volumes.find(Lower(name));
    if (existing != volumes.end() && !overwrite) return Fail(400, name, "Volume already exists.");
    Volume v{name, NewSerial(), NewId(), source, NowMs(), false};
    if (existing != volumes.end()) {
      v.serial = existing->second.serial;  // overwrite keeps the volume's identity
      v.id = existing->second.id;
    }
    volumes[Lower(name)] = v;
    json::array items;
    items.push_back(VolumeJson(v));
    return Items(std::move(items));
  }
  if (path == "/volume-snapshots" && method == "GET") {
    json::array items;
    if (!param("names").empty()) {
      for (const auto& n : SplitComma(param("names"))) {
        auto s = snapshots.find(Lower(n));
        if (s == snapshots.end()) return Fail(400, n, "Snapshot does not exist.");
        if (keep(s->second.destroyed)) items.push_back(SnapshotJson(s->second));
      }
      return Items(std::move(items));
    }
    std::set<std::string> sources;
    for (const auto& n : SplitComma(param("source_names"))) {
      if (volumes.count(Lower(n)) == 0) return Fail(400, n, "Volume does not exist.");
      sources.insert(Lower(n));
    }
    for (const auto& [key, s] : snapshots) {
      if (!sources.empty() && sources.count(Lower(s.source)) == 0) continue;
      if (keep(s.destroyed)) items.push_back(SnapshotJson(s));
    }
    return Items(std::move(items));
  }
  if (path == "/volume-snapshots" && method == "POST")
    return VolumeSnapshotCreate(query, body, false);
  if (path == "/volume-snapshots/test" && method == "POST")
    return VolumeSnapshotCreate(query, body, true);
  if (path == "/volume-snapshots" && (method == "PATCH" || method == "DELETE")) {
    const std::string name = param("names");
    auto s = snapshots.find(Lower(name));
    if (name.empty() || s == snapshots.end()) return Fail(400, name, "Snapshot does not exist.");
    if (!s->second.pgroup_snapshot.empty()) {
      return Fail(400, name,
                  "Cannot modify a volume snapshot that belongs to a protection group snapshot.");
    }
    if (method == "DELETE") {
      if (!s->second.destroyed)
        return Fail(400, name, "Snapshot must be destroyed before eradication.");
      snapshots.erase(s);
      return Reply{200, nullptr, std::nullopt};
    }
    const auto* d = body.is_object() ? body.as_object().if_contains("destroyed") : nullptr;
    if (d == nullptr || !d->is_bool()) return Fail(400, name, "Nothing to update.");
    s->second.destroyed = d->as_bool();
    json::array items;
    items.push_back(SnapshotJson(s->second));
    return Items(std::move(items));
  }
  if (path == "/protection-groups" && method == "GET") {
    json::array items;
    for (const auto& n : SplitComma(param("names"))) {
      auto g = groups.find(Lower(n));
      if (g == groups.end()) return Fail(400, n, "Protection group does not exist.");
      items.push_back(json::object{{"name", g->second.name}, {"destroyed", g->second.destroyed}});
    }
    return Items(std::move(items));
  }
  if (path == "/protection-groups" && method == "POST") {
    const std::string name = param("names");
    if (name.empty()) return Fail(400, "", "Missing required parameter: names.");
    if (groups.count(Lower(name)) != 0) return Fail(400, name, "Protection group already exists.");
    groups[Lower(name)] = ProtectionGroup{name, {}, false};
    json::array items;
    items.push_back(json::object{{"name", name}, {"destroyed", false}});
    return Items(std::move(items));
  }
  if (path == "/protection-groups/volumes") {
    const std::string group = param("group_names");
    auto g = groups.find(Lower(group));
    if (g == groups.end()) return Fail(400, group, "Protection group does not exist.");
    auto& members = g->second.members;
    if (method == "GET") {
      json::array items;
      for (const auto& m : members) {
        items.push_back(json::object{{"group", json::object{{"name", g->second.name}}},
                                     {"member", json::object{{"name", m}}}});
      }
      return Items(std::move(items));
    }
    const auto names = SplitComma(param("member_names"));
    for (const auto& n : names) {
      if (volumes.count(Lower(n)) == 0) return Fail(400, n, "Volume does not exist.");
    }
    json::array items;
    for (const auto& n : names) {
      auto pos = std::find_if(members.begin(), members.end(),
                              [&](const std::string& m) { return Lower(m) == Lower(n); });
      if (method == "POST" && pos == members.end()) members.push_back(volumes[Lower(n)].name);
      if (method == "DELETE" && pos != members.end()) members.erase(pos);
      items.push_back(json::object{{"group", json::object{{"name", g->second.name}}},
                                   {"member", json::object{{"name", n}}}});
    }
    if (method == "DELETE") return Reply{200, nullptr, std::nullopt};
    return Items(std::move(items));
  }
  if (path == "/protection-group-snapshots" && method == "GET") {
    json::array items;
    if (!param("names").empty()) {
      for (const auto& n : SplitComma(param("names"))) {
        auto s = group_snapshots.find(Lower(n));
        if (s == group_snapshots.end()) return Fail(400, n, "Snapshot does not exist.");
        if (keep(s->second.destroyed)) items.push_back(GroupSnapshotJson(s->second));
      }
      return Items(std::move(items));
    }
    const std::string source = Lower(param("source_names"));
    for (const auto& [key, s] : group_snapshots) {
      if (!source.empty() && Lower(s.source) != source) continue;
      if (keep(s.destroyed)) items.push_back(GroupSnapshotJson(s));
    }
    return Items(std::move(items));
  }
  if (path == "/protection-group-snapshots" && method == "POST")
    return GroupSnapshotCreate(query, body, false);
  if (path == "/protection-group-snapshots/test" && method == "POST")
    return GroupSnapshotCreate(query, body, true);
  if (path == "/protection-group-snapshots" && (method == "PATCH" || method == "DELETE")) {
    const std::string name = param("names");
    auto s = group_snapshots.find(Lower(name));
    if (name.empty() || s == group_snapshots.end())
      return Fail(400, name, "Snapshot does not exist.");
    if (method == "DELETE") {
      if (!s->second.destroyed)
        return Fail(400, name, "Snapshot must be destroyed before eradication.");
      for (auto it = snapshots.begin(); it != snapshots.end();) {
        it = Lower(it->second.pgroup_snapshot) == Lower(name) ? snapshots.erase(it) : std::next(it);
      }
      group_snapshots.erase(s);
      return Reply{200, nullptr, std::nullopt};
    }
    const auto* d = body.is_object() ? body.as_object().if_contains("destroyed") : nullptr;
    if (d == nullptr || !d->is_bool()) return Fail(400, name, "Nothing to update.");
    s->second.destroyed = d->as_bool();
    for (auto& [key, vs] : snapshots) {
      if (Lower(vs.pgroup_snapshot) == Lower(name)) vs.destroyed = d->as_bool();
    }
    json::array items;
    items.push_back(GroupSnapshotJson(s->second));
    return Items(std::move(items));
  }
  return Fail(404, path, "Not found (route not implemented by the fake array).");
}

FakeFlashArray::FakeFlashArray(const std::string& cert_file, const std::string& key_file,
                               std::string api_token)
    : impl_(std::make_unique<Impl>()) {
  impl_->api_token = std::move(api_token);
  impl_->cert_file = cert_file;
  impl_->key_file = key_file;
  impl_->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl_->listen_fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(impl_->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(impl_->listen_fd, 16) != 0 ||
      ::getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(impl_->listen_fd);
    throw std::runtime_error("bind/listen on 127.0.0.1 failed");
  }
  port_ = ntohs(addr.sin_port);
  impl_->acceptor = std::thread([this] { AcceptLoop(); });
}

FakeFlashArray::~FakeFlashArray() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  impl_->stop_cv.notify_all();
  ::shutdown(impl_->listen_fd, SHUT_RDWR);
  impl_->acceptor.join();
  ::close(impl_->listen_fd);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(impl_->mu);
    threads.swap(impl_->connections);
  }
  for (auto& t : threads) t.join();
}

void FakeFlashArray::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(impl_->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) continue;
    impl_->open_fds.insert(fd);
    impl_->connections.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeFlashArray::Serve(int fd) {
  asio::io_context ioc;
  asio::ssl::context ssl(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  asio::ip::tcp::socket socket(ioc);
  socket.assign(asio::ip::tcp::v4(), fd, ec);
  if (ec) ::close(fd);
  if (!ec) ssl.use_certificate_chain_file(impl_->cert_file, ec);
  if (!ec) ssl.use_private_key_file(impl_->key_file, asio::ssl::context::pem, ec);
  asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), ssl);
  auto finish = [&] {
    std::lock_guard lock(impl_->mu);
    impl_->open_fds.erase(fd);
    // Closing under the lock keeps the destructor from shutting down a reused descriptor.
    boost::system::error_code ignored;
    stream.next_layer().close(ignored);
  };
  if (!ec) stream.handshake(asio::ssl::stream_base::server, ec);
  beast::flat_buffer buffer;
  while (!ec) {
    http::request<http::string_body> request;
    http::read(stream, buffer, request, ec);
    if (ec) break;
    const std::string target(request.target());
    const auto qmark = target.find('?');
    const std::string full_path = target.substr(0, qmark);
    std::map<std::string, std::string> query;
    if (qmark != std::string::npos) {
      for (const auto& pair : SplitOn(target.substr(qmark + 1), '&')) {
        const auto eq = pair.find('=');
        query[UrlDecode(pair.substr(0, eq))] =
            eq == std::string::npos ? "" : UrlDecode(pair.substr(eq + 1));
      }
    }
    const std::string method(request.method_string());
    Reply reply;
    std::string new_session;
    std::optional<FakeArrayFault> fault;
    std::string path = full_path;
    {
      std::unique_lock lock(impl_->mu);
      if (full_path != "/api/api_version") {
        // "/api/2.N/rest": strip the version and check it is one we list.
        const std::string prefix = "/api/";
        const auto slash = full_path.find('/', prefix.size());
        const std::string version = full_path.rfind(prefix, 0) == 0 && slash != std::string::npos
                                        ? full_path.substr(prefix.size(), slash - prefix.size())
                                        : "";
        path = slash == std::string::npos ? full_path : full_path.substr(slash);
        if (std::find(impl_->versions.begin(), impl_->versions.end(), version) ==
            impl_->versions.end()) {
          path = "";
        }
      }
      impl_->requests.push_back(method + " " + (path.empty() ? full_path : path));
      for (auto it = impl_->faults.begin(); it != impl_->faults.end(); ++it) {
        if ((it->method.empty() || it->method == method) &&
            (it->path.empty() || it->path == path)) {
          fault = *it;
          if (--it->times <= 0) impl_->faults.erase(it);
          break;
        }
      }
      json::value body;
      if (!request.body().empty()) {
        boost::system::error_code parse_ec;
        body = json::parse(request.body(), parse_ec);
        if (parse_ec) body = nullptr;
      }
      if (fault && fault->kind == FakeArrayFault::Kind::kStatus) {
        reply = Fail(fault->status, path, fault->message);
        reply.retry_after = fault->retry_after_seconds;
      } else if (full_path == "/api/api_version" && method == "GET") {
        json::array versions;
        for (const auto& v : impl_->versions) versions.push_back(json::value(v));
        reply = Reply{200, json::object{{"version", std::move(versions)}}, std::nullopt};
      } else if (path.empty()) {
        reply = Fail(404, full_path, "Unsupported REST API version.");
      } else if (path == "/login" && method == "POST") {
        const auto it = request.find("api-token");
        if (it == request.end() || it->value() != impl_->api_token) {
          reply = Fail(401, "", "Invalid API token.");
        } else {
          ++impl_->logins;
          const std::string session = fmt::format("session-{}-{:x}", impl_->logins, impl_->rng());
          impl_->sessions.insert(session);
          json::array items;
          items.push_back(json::object{{"username", "qb"}});
          reply = Reply{200, json::object{{"items", std::move(items)}}, std::nullopt};
          new_session = session;
        }
      } else {
        const auto it = request.find("x-auth-token");
        if (it == request.end() || impl_->sessions.count(std::string(it->value())) == 0) {
          reply = Fail(401, "", "Invalid or expired session token.");
        } else {
          reply = impl_->Handle(method, path, query, body);
        }
      }
      if (fault && fault->kind == FakeArrayFault::Kind::kSlowAnswer) {
        impl_->stop_cv.wait_for(lock, fault->delay, [&] { return impl_->stopping; });
      }
      if (impl_->stopping) break;
    }
    if (fault && fault->kind == FakeArrayFault::Kind::kDropAnswer) break;
    http::response<http::string_body> response{static_cast<http::status>(reply.status),
                                               request.version()};
    response.set(http::field::server, "fake-flasharray (NOT a FlashArray)");
    response.set(http::field::content_type, "application/json");
    if (!new_session.empty()) response.set("x-auth-token", new_session);
    if (reply.retry_after)
      response.set(http::field::retry_after, std::to_string(*reply.retry_after));
    response.body() = reply.body.is_null() ? std::string() : json::serialize(reply.body);
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    http::write(stream, response, ec);
    if (!request.keep_alive()) break;
  }
  finish();
}

std::string FakeFlashArray::AddVolume(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  Volume v{name, impl_->NewSerial(), impl_->NewId(), "", NowMs(), false};
  impl_->volumes[Lower(name)] = v;
  return v.serial;
}

void FakeFlashArray::SetVersions(std::vector<std::string> versions) {
  std::lock_guard lock(impl_->mu);
  impl_->versions = std::move(versions);
}

void FakeFlashArray::Inject(FakeArrayFault fault) {
  std::lock_guard lock(impl_->mu);
  impl_->faults.push_back(std::move(fault));
}

void FakeFlashArray::ExpireSessions() {
  std::lock_guard lock(impl_->mu);
  impl_->sessions.clear();
}

std::vector<std::string> FakeFlashArray::Requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

void FakeFlashArray::ClearRequests() {
  std::lock_guard lock(impl_->mu);
  impl_->requests.clear();
}

bool FakeFlashArray::HasVolume(const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->volumes.find(Lower(name));
  return it != impl_->volumes.end() && !it->second.destroyed;
}

std::string FakeFlashArray::VolumeSource(const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->volumes.find(Lower(name));
  return it == impl_->volumes.end() ? "" : it->second.source;
}

bool FakeFlashArray::HasVolumeSnapshot(const std::string& name, bool include_destroyed) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->snapshots.find(Lower(name));
  return it != impl_->snapshots.end() && (include_destroyed || !it->second.destroyed);
}

bool FakeFlashArray::HasProtectionGroupSnapshot(const std::string& name,
                                                bool include_destroyed) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->group_snapshots.find(Lower(name));
  return it != impl_->group_snapshots.end() && (include_destroyed || !it->second.destroyed);
}

std::vector<std::string> FakeFlashArray::ProtectionGroupMembers(const std::string& group) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->groups.find(Lower(group));
  return it == impl_->groups.end() ? std::vector<std::string>{} : it->second.members;
}

std::vector<std::string> FakeFlashArray::VolumeSnapshotNames(bool include_destroyed) const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [key, s] : impl_->snapshots) {
    if (include_destroyed || !s.destroyed) out.push_back(s.name);
  }
  return out;
}

int FakeFlashArray::logins() const {
  std::lock_guard lock(impl_->mu);
  return impl_->logins;
}

}  // namespace qb::testing
