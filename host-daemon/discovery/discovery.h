// libvirt discovery: which guests run on this host, how to reach their agents, which LUNs
// they have, and lifecycle events (start, stop, migrate away) as they happen.
//
// Threading: every method except the event callback is BLOCKING (it talks to libvirtd) and
// belongs on the daemon's worker pool. Lifecycle events arrive on Discovery's own event-loop
// thread and are posted to the executor given to WatchLifecycle; the handler never runs on
// the libvirt thread.
//
// One Discovery per process: libvirt's default event loop (virEventRegisterDefaultImpl) is
// process-wide and Discovery runs it on the thread it owns.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "host-daemon/config/config.h"
#include "host-daemon/discovery/domain_xml.h"

namespace qb::discovery {

enum class LifecycleKind {
  kDefined,  // defined or its persistent XML changed: refresh
  kUndefined,
  kStarted,       // booted, restored, or migrated in
  kStopped,       // shut down, destroyed, crashed, saved
  kMigratedAway,  // stopped because it now runs on another host
  kSuspended,
  kResumed,
  kOther,
};

struct DomainEvent {
  std::string name{};
  std::string uuid{};
  LifecycleKind kind = LifecycleKind::kOther;
  int libvirt_event = 0;   // virDomainEventType, for logging
  int libvirt_detail = 0;  // the event's detail code, for logging
};

// A running domain and what parsing its XML gave. `status` is not OK when the domain cannot be
// used (no agent channel, bad XML); the others are still listed.
struct DiscoveredDomain {
  std::string name{};
  Status status{};
  DomainInfo info{};  // valid only when status.ok()
};

class Discovery {
 public:
  // Connects to settings.uri (read-only is enough) and starts the event-loop thread.
  // kIoError with libvirt's message when the connection fails.
  // `settings` is copied.
  static Result<std::unique_ptr<Discovery>> Connect(const config::LibvirtSettings& settings);

  // Deregisters the event callback, stops and joins the event thread, closes the connection.
  // No handler runs after the destructor returns (posted ones may still be queued on the
  // executor; they hold no reference to this object).
  virtual ~Discovery() = default;

  // Every running (active) domain, sorted by name. kIoError when libvirt fails.
  virtual Result<std::vector<DiscoveredDomain>> ListRunning() = 0;

  // One domain by name (running or not). kNotFound when libvirt does not know it; the XML
  // errors of ParseDomainXml otherwise.
  virtual Result<DomainInfo> Lookup(const std::string& name) = 0;

  // Subscribes to lifecycle events of every domain. Each event is posted to `executor` and
  // `handler` is called there. One subscription per Discovery (kConflict on a second call).
  // kIoError when libvirt refuses the registration.
  virtual Status WatchLifecycle(boost::asio::any_io_executor executor,
                                std::function<void(DomainEvent)> handler) = 0;
};

}  // namespace qb::discovery
