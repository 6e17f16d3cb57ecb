#include "host-daemon/discovery/discovery.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace qb::discovery {
namespace {

struct ConnectCloser {
  void operator()(virConnectPtr connection) const { virConnectClose(connection); }
};
using Connection = std::unique_ptr<virConnect, ConnectCloser>;

struct DomainFreer {
  void operator()(virDomainPtr domain) const { virDomainFree(domain); }
};
using Domain = std::unique_ptr<virDomain, DomainFreer>;

struct CharFreer {
  void operator()(char* text) const { std::free(text); }
};
using LibvirtString = std::unique_ptr<char, CharFreer>;

void IgnoreLibvirtError(void*, virErrorPtr) {}

// libvirt wants its event implementation registered once per process, before connecting.
Status RegisterEventImplOnce() {
  static std::once_flag once;
  static int result = -1;
  std::call_once(once, [] {
    // Errors are reported through Status values; libvirt's default prints them to stderr.
    virSetErrorFunc(nullptr, IgnoreLibvirtError);
    result = virEventRegisterDefaultImpl();
  });
  if (result != 0) return Error(Code::kIoError, "libvirt: cannot register the event loop");
  return Status::Ok();
}

Status LibvirtError(const std::string& what) {
  const char* message = virGetLastErrorMessage();
  return Error(Code::kIoError, what + ": " + (message != nullptr ? message : "unknown error"));
}

LifecycleKind KindOf(int event, int detail) {
  switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED:
      return LifecycleKind::kDefined;
    case VIR_DOMAIN_EVENT_UNDEFINED:
      return LifecycleKind::kUndefined;
    case VIR_DOMAIN_EVENT_STARTED:
      return LifecycleKind::kStarted;
    case VIR_DOMAIN_EVENT_SUSPENDED:
      return LifecycleKind::kSuspended;
    case VIR_DOMAIN_EVENT_RESUMED:
      return LifecycleKind::kResumed;
    case VIR_DOMAIN_EVENT_STOPPED:
      return detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED ? LifecycleKind::kMigratedAway
                                                         : LifecycleKind::kStopped;
    case VIR_DOMAIN_EVENT_SHUTDOWN:
      return LifecycleKind::kOther;  // shutdown requested/finished; STOPPED follows
    case VIR_DOMAIN_EVENT_CRASHED:
      return LifecycleKind::kStopped;
    default:
      return LifecycleKind::kOther;
  }
}

class LibvirtDiscovery final : public Discovery {
 public:
  LibvirtDiscovery(config::LibvirtSettings settings, Connection connection)
      : settings_(std::move(settings)), connection_(std::move(connection)) {
    loop_ = std::thread([this] {
      while (!stopping_.load()) {
        if (virEventRunDefaultImpl() < 0) break;
      }
    });
  }

  ~LibvirtDiscovery() override {
    stopping_.store(true);
    // A zero-interval timer makes the loop iterate once more and see the flag.
    const int wake = virEventAddTimeout(
        0, [](int, void*) {}, nullptr, nullptr);
    if (loop_.joinable()) loop_.join();
    if (wake >= 0) virEventRemoveTimeout(wake);
    if (callback_id_ >= 0) virConnectDomainEventDeregisterAny(connection_.get(), callback_id_);
  }

  Result<std::vector<DiscoveredDomain>> ListRunning() override {
    virDomainPtr* raw = nullptr;
    const int count =
        virConnectListAllDomains(connection_.get(), &raw, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (count < 0) return LibvirtError("list domains on " + settings_.uri);
    std::vector<Domain> domains;
    for (int i = 0; i < count; ++i) domains.emplace_back(raw[i]);
    std::free(raw);
    std::vector<DiscoveredDomain> result;
    for (const auto& domain : domains) {
      DiscoveredDomain entry;
      const char* name = virDomainGetName(domain.get());
      entry.name = name != nullptr ? name : "";
      auto info = Describe(domain.get());
      if (info.ok()) {
        entry.info = std::move(info).value();
      } else {
        entry.status = info.status();
      }
      result.push_back(std::move(entry));
    }
    std::sort(result.begin(), result.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    return result;
  }

  Result<DomainInfo> Lookup(const std::string& name) override {
    Domain domain(virDomainLookupByName(connection_.get(), name.c_str()));
    if (!domain) {
      virErrorPtr error = virGetLastError();
      if (error != nullptr && error->code == VIR_ERR_NO_DOMAIN) {
        return Error(Code::kNotFound, "libvirt has no domain '" + name + "'");
      }
      return LibvirtError("look up domain " + name);
    }
    return Describe(domain.get());
  }

  Status WatchLifecycle(boost::asio::any_io_executor executor,
                        std::function<void(DomainEvent)> handler) override {
    std::lock_guard lock(mutex_);
    if (callback_id_ >= 0) return Error(Code::kConflict, "lifecycle events already watched");
    executor_ = std::move(executor);
    handler_ = std::move(handler);
    callback_id_ = virConnectDomainEventRegisterAny(
        connection_.get(), nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(&LibvirtDiscovery::OnLifecycle), this, nullptr);
    if (callback_id_ < 0) return LibvirtError("register lifecycle events");
    return Status::Ok();
  }

 private:
  // Runs on the libvirt event thread: copies what it needs and posts to the executor.
  static int OnLifecycle(virConnectPtr, virDomainPtr domain, int event, int detail, void* opaque) {
    auto* self = static_cast<LibvirtDiscovery*>(opaque);
    DomainEvent e;
    const char* name = virDomainGetName(domain);
    e.name = name != nullptr ? name : "";
    char uuid[VIR_UUID_STRING_BUFLEN] = {};
    if (virDomainGetUUIDString(domain, uuid) == 0) e.uuid = uuid;
    e.kind = KindOf(event, detail);
    e.libvirt_event = event;
    e.libvirt_detail = detail;
    std::lock_guard lock(self->mutex_);
    if (self->handler_) {
      boost::asio::post(self->executor_,
                        [handler = self->handler_, e = std::move(e)] { handler(e); });
    }
    return 0;
  }

  Result<DomainInfo> Describe(virDomainPtr domain) {
    LibvirtString xml(virDomainGetXMLDesc(domain, 0));
    if (!xml) return LibvirtError("get XML of a domain");
    return ParseDomainXml(xml.get(), settings_);
  }

  const config::LibvirtSettings settings_;
  Connection connection_;
  std::atomic<bool> stopping_{false};
  std::thread loop_;
  std::mutex mutex_;
  int callback_id_ = -1;
  boost::asio::any_io_executor executor_;
  std::function<void(DomainEvent)> handler_;
};

}  // namespace

Result<std::unique_ptr<Discovery>> Discovery::Connect(const config::LibvirtSettings& settings) {
  QB_RETURN_IF_ERROR(RegisterEventImplOnce());
  Connection connection(virConnectOpenReadOnly(settings.uri.c_str()));
  if (!connection) return LibvirtError("connect to libvirt at " + settings.uri);
  return std::unique_ptr<Discovery>(
      std::make_unique<LibvirtDiscovery>(settings, std::move(connection)));
}

}  // namespace qb::discovery
