#include "host-daemon/daemon/libvirt_guest_sync.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <vector>

#include "host-daemon/link/endpoint.h"

namespace qb::quiesced {

namespace asio = boost::asio;

struct LibvirtGuestSync::State : std::enable_shared_from_this<State> {
  asio::any_io_executor io;
  asio::any_io_executor workers;
  discovery::Discovery& discovery;
  jobs::GuestRegistry& guests;
  JobRunning job_running;
  GuestSyncOptions options;
  bool alive = true;
  // Bumped by every event of a domain: a lookup that started before the latest event is stale.
  std::map<std::string, uint64_t> generation;
  // Links of guests that left with a job in flight, stopped when the job ends.
  std::vector<std::shared_ptr<link::GuestLink>> draining;
  std::unique_ptr<asio::steady_timer> drain_timer;

  State(asio::any_io_executor io_executor, asio::any_io_executor worker_executor,
        discovery::Discovery& d, jobs::GuestRegistry& g, JobRunning running, GuestSyncOptions o)
      : io(std::move(io_executor)),
        workers(std::move(worker_executor)),
        discovery(d),
        guests(g),
        job_running(std::move(running)),
        options(std::move(o)) {}

  static bool SameSpec(const jobs::GuestSpec& a, const jobs::GuestSpec& b) {
    if (a.endpoint != b.endpoint || a.luns.size() != b.luns.size()) return false;
    for (std::size_t i = 0; i < a.luns.size(); ++i) {
      if (a.luns[i].backend != b.luns[i].backend || a.luns[i].volume != b.luns[i].volume ||
          a.luns[i].wwn != b.luns[i].wwn) {
        return false;
      }
    }
    return true;
  }

  // On the io thread: makes `info` a served guest (or refreshes it).
  void Adopt(const discovery::DomainInfo& info) {
    if (!alive) return;
    jobs::GuestSpec spec;
    spec.name = info.name;
    spec.endpoint = info.agent.ToString();
    spec.luns = info.Luns();
    spec.source = options.uri;
    if (jobs::Guest* existing = guests.Find(info.name)) {
      if (existing->spec.source != options.uri) {
        spdlog::info("libvirt domain {}: a static guest of that name is configured; it wins",
                     info.name);
        return;
      }
      if (SameSpec(existing->spec, spec)) return;
      spdlog::info("libvirt domain {}: agent or LUNs changed; relinking", info.name);
      Drop(info.name);
    }
    auto endpoint = link::ParseEndpoint(spec.endpoint);
    if (!endpoint.ok()) {
      spdlog::warn("libvirt domain {}: not served: {}", info.name, endpoint.status().ToString());
      return;
    }
    link::LinkOptions lo;
    lo.guest_name = spec.name;
    lo.endpoint = *endpoint;
    lo.host_name = options.host_name;
    lo.daemon_version = options.daemon_version;
    if (options.on_session) {
      lo.on_session = [hook = options.on_session, vm = spec.name](const proto::HelloReply& hello) {
        hook(vm, hello);
      };
    }
    jobs::Guest guest;
    guest.spec = std::move(spec);
    guest.link = link::GuestLink::Create(io, lo);
    auto started = guest.link;
    const std::size_t luns = guest.spec.luns.size();
    if (Status added = guests.Add(std::move(guest)); !added.ok()) {
      spdlog::warn("libvirt domain {}: {}", info.name, added.ToString());
      return;
    }
    started->Start();
    spdlog::info("libvirt domain {}: serving its agent at {} ({} LUN(s))", info.name,
                 info.agent.ToString(), luns);
  }

  // On the io thread: removes a discovered guest; a static one is never touched.
  void Drop(const std::string& name) {
    jobs::Guest* existing = guests.Find(name);
    if (existing == nullptr || existing->spec.source != options.uri) return;
    if (!job_running || !job_running(name)) {
      guests.Remove(name);
      return;
    }
    std::optional<jobs::Guest> detached = guests.Detach(name);
    spdlog::info("libvirt domain {} left with a job in flight: its link stays until the job ends",
                 name);
    draining.push_back(detached->link);
    ScheduleDrain();
  }

  void ScheduleDrain() {
    if (drain_timer) return;
    drain_timer = std::make_unique<asio::steady_timer>(io, options.busy_poll);
    drain_timer->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->drain_timer.reset();
      self->Drain(false);
    });
  }

  void Drain(bool all) {
    std::vector<std::shared_ptr<link::GuestLink>> still;
    for (auto& l : draining) {
      if (all || !job_running || !job_running(l->name())) {
        spdlog::info("guest {}: job ended; stopping its link", l->name());
        l->Stop();
      } else {
        still.push_back(l);
      }
    }
    draining = std::move(still);
    if (!draining.empty() && alive) ScheduleDrain();
  }

  // Looks `name` up on the worker pool, then adopts it on the io thread unless another event of
  // that domain came in meanwhile.
  void LookupAndAdopt(const std::string& name) {
    const uint64_t generation_now = generation[name];
    asio::post(workers, [weak = weak_from_this(), name, generation_now] {
      auto self = weak.lock();
      if (!self) return;
      auto info = self->discovery.Lookup(name);
      asio::post(self->io, [weak, name, generation_now, info = std::move(info)] {
        auto self = weak.lock();
        if (!self || !self->alive || self->generation[name] != generation_now) return;
        if (!info.ok()) {
          spdlog::warn("libvirt domain {}: not served: {}", name, info.status().ToString());
          return;
        }
        self->Adopt(*info);
      });
    });
  }

  void OnEvent(const discovery::DomainEvent& event) {
    if (!alive || event.name.empty()) return;
    ++generation[event.name];
    switch (event.kind) {
      case discovery::LifecycleKind::kStarted:
        spdlog::info("libvirt domain {} started", event.name);
        LookupAndAdopt(event.name);
        break;
      case discovery::LifecycleKind::kStopped:
      case discovery::LifecycleKind::kMigratedAway:
      case discovery::LifecycleKind::kUndefined:
        spdlog::info(
            "libvirt domain {} {}", event.name,
            event.kind == discovery::LifecycleKind::kMigratedAway ? "migrated away" : "stopped");
        Drop(event.name);
        break;
      default:
        break;  // suspended / resumed / redefined: a running guest stays served as it is
    }
  }
};

LibvirtGuestSync::LibvirtGuestSync(asio::any_io_executor io, asio::any_io_executor workers,
                                   discovery::Discovery& discovery, jobs::GuestRegistry& guests,
                                   JobRunning job_running, GuestSyncOptions options)
    : state_(std::make_shared<State>(std::move(io), std::move(workers), discovery, guests,
                                     std::move(job_running), std::move(options))) {}

LibvirtGuestSync::~LibvirtGuestSync() { Stop(); }

Status LibvirtGuestSync::Start(std::function<void(Status)> done) {
  std::weak_ptr<State> weak = state_;
  QB_RETURN_IF_ERROR(
      state_->discovery.WatchLifecycle(state_->io, [weak](discovery::DomainEvent event) {
        if (auto self = weak.lock()) self->OnEvent(event);
      }));
  asio::post(state_->workers, [weak, done = std::move(done)]() mutable {
    auto self = weak.lock();
    if (!self) return;
    auto running = self->discovery.ListRunning();
    asio::post(self->io, [weak, done = std::move(done), running = std::move(running)] {
      auto self = weak.lock();
      if (!self || !self->alive) return;
      if (!running.ok()) {
        if (done) done(running.status());
        return;
      }
      for (const auto& domain : *running) {
        // An event that came in while listing has the newer word about this domain.
        if (self->generation.count(domain.name) != 0) continue;
        if (!domain.status.ok()) {
          spdlog::warn("libvirt domain {}: not served: {}", domain.name, domain.status.ToString());
          continue;
        }
        self->Adopt(domain.info);
      }
      if (done) done(Status::Ok());
    });
  });
  return Status::Ok();
}

void LibvirtGuestSync::Stop() {
  if (!state_->alive) return;
  state_->alive = false;
  state_->drain_timer.reset();
  state_->Drain(true);
}

}  // namespace qb::quiesced
