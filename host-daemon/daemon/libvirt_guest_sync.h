// Keeps the GuestRegistry in step with the domains libvirt runs: a running domain with an agent
// channel (or vsock CID) becomes a guest whose agent link is started; a domain that stops, is
// undefined or migrates away is removed and its link stopped. Guests from the static config win
// over discovered ones of the same name (the config is the admin's explicit word).
//
// A guest that leaves while one of its jobs is in flight leaves the registry at once (no new job
// can name it) but keeps its link until that job has ended, so the job can still thaw it (a
// migrated-away guest keeps running elsewhere).
//
// Threading: constructed, started and stopped on the io thread; registry changes happen only
// there. libvirt calls (blocking) run on the worker pool.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "host-daemon/discovery/discovery.h"
#include "host-daemon/jobs/guest_registry.h"
#include "host-daemon/link/guest_link.h"

namespace qb::quiesced {

struct GuestSyncOptions {
  std::string uri;        // GuestSpec::source of discovered guests
  std::string host_name;  // sent in Hello
  std::string daemon_version;
  // How often a removed guest's link is checked for the end of its in-flight job.
  std::chrono::milliseconds busy_poll = std::chrono::milliseconds(100);
  // Given to each discovered guest's link (link::LinkOptions::on_session), with the guest's
  // name bound: called on the link's strand when a session opens. May be empty.
  std::function<void(const std::string& vm, const proto::HelloReply&)> on_session;
};

class LibvirtGuestSync {
 public:
  // True while a job owns the VM (JobRunner::BusyJob(vm) != ""). Called on the io thread.
  using JobRunning = std::function<bool(const std::string& vm)>;

  // `discovery` and `guests` must outlive this object. `io` is the daemon's single-threaded
  // io_context executor, `workers` the blocking-call pool.
  LibvirtGuestSync(boost::asio::any_io_executor io, boost::asio::any_io_executor workers,
                   discovery::Discovery& discovery, jobs::GuestRegistry& guests,
                   JobRunning job_running, GuestSyncOptions options);
  // Events still queued after destruction are ignored.
  ~LibvirtGuestSync();

  // Subscribes to lifecycle events, then adopts every running domain (listed on the worker
  // pool; `done` is called on the io thread with the listing's Status once they are in the
  // registry). kIoError from WatchLifecycle is returned at once. Call once, on the io thread.
  Status Start(std::function<void(Status)> done);

  // Stops following events. Discovered guests stay registered (GuestRegistry::StopAll stops
  // their links at shutdown); links waiting for a job to end are stopped now.
  void Stop();

 private:
  struct State;  // shared with posted handlers, so they can outlive this object safely

  std::shared_ptr<State> state_;
};

}  // namespace qb::quiesced
