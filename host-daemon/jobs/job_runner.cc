#include "host-daemon/jobs/job_runner.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <random>

#include "common/crash_point.h"
#include "common/guest_text.h"
#include "host-daemon/jobs/freeze_plan.h"
#include "host-daemon/jobs/job_budget.h"
#include "host-daemon/jobs/job_report_lists.h"
#include "host-daemon/link/run_on.h"

namespace qb::jobs {
namespace {

using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

template <typename R>
asio::awaitable<R> Unwrap(asio::awaitable<std::optional<R>> op) {
  auto result = co_await std::move(op);
  co_return std::move(*result);
}

// Runs blocking `f` on the worker pool; the caller resumes on its own executor with the result
// (an exception thrown by `f` is rethrown in the caller). Not a coroutine itself: g++ 12
// mishandles closures passed by value into coroutine frames.
template <typename Fn>
auto Blocking(const asio::any_io_executor& workers, Fn&& f) {
  using F = std::decay_t<Fn>;
  using R = std::invoke_result_t<F&>;
  auto op = asio::async_initiate<const asio::use_awaitable_t<>&,
                                 void(std::exception_ptr, std::optional<R>)>(
      [workers](auto handler, F fn) {
        auto caller = asio::get_associated_executor(handler);
        asio::post(workers, [handler = std::move(handler), fn = std::move(fn), caller]() mutable {
          std::optional<R> result;
          std::exception_ptr error;
          try {
            result.emplace(fn());
          } catch (...) {
            error = std::current_exception();
          }
          asio::post(caller,
                     [handler = std::move(handler), error, result = std::move(result)]() mutable {
                       std::move(handler)(error, std::move(result));
                     });
        });
      },
      asio::use_awaitable, F(std::forward<Fn>(f)));
  return Unwrap<R>(std::move(op));
}

// Runs every op concurrently on the current executor and returns when all have finished.
// Ops record their own results; an exception escaping one is a bug and is swallowed here
// (the op's guest then counts as failed because it recorded nothing).
asio::awaitable<void> WhenAll(std::vector<asio::awaitable<void>> ops) {
  auto ex = co_await asio::this_coro::executor;
  auto left = std::make_shared<std::size_t>(ops.size());
  auto done = std::make_shared<asio::steady_timer>(ex, Clock::time_point::max());
  for (auto& op : ops) {
    auto wrapper = [](asio::awaitable<void> inner, std::shared_ptr<std::size_t> count,
                      std::shared_ptr<asio::steady_timer> signal) -> asio::awaitable<void> {
      try {
        co_await std::move(inner);
      } catch (const std::exception& e) {
        spdlog::error("job step failed with an exception (a bug): {}", e.what());
      }
      if (--*count == 0) signal->cancel();
    }(std::move(op), left, done);
    asio::co_spawn(ex, std::move(wrapper), asio::detached);
  }
  while (*left > 0) co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
}

std::string IsoTime(SysClock::time_point t) {
  std::time_t tt = SysClock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string SnapshotId(const std::string& key, const std::string& vm, std::size_t lun_index) {
  return key + "." + vm + "." + std::to_string(lun_index);
}

// Appended to the shown error of a job that returned with an array call still late (for
// people). Reconcile finds such jobs by the typed JobOutcome::array_call_late instead.
constexpr const char* kLateArrayNote =
    " (array call late: its snapshot is removed or recorded crash-consistent when it lands)";
// How far back Reconcile looks for such jobs.
constexpr std::chrono::hours kLateJobHorizon{24};

std::uint16_t CodeOf(const Status& s) { return static_cast<std::uint16_t>(s.code()); }

// What a job (or a request) cut short by SIGTERM reports: "cancelled: daemon stopping".
Status DaemonStopping() { return Error(Code::kCancelled, "daemon stopping"); }

// The freeze window as reported: the "freeze" and "snapshot" phases, which run from the
// moment Freeze is sent to the moment Thaw is sent. Computed from the phases so that a job's
// own report and `quiescectl jobs` (which reads the phases back from the catalog) agree.
std::uint64_t FreezeWindowUs(const std::vector<proto::PhaseTiming>& phases) {
  std::uint64_t us = 0;
  for (const auto& p : phases)
    if (p.phase == "freeze" || p.phase == "snapshot") us += p.duration_us;
  return us;
}

proto::FreezeMode ModeFor(proto::OsFamily os, proto::VssMode vss) {
  if (os != proto::OsFamily::kWindows) return proto::FreezeMode::kFsfreeze;
  return vss == proto::VssMode::kFull ? proto::FreezeMode::kVssFull : proto::FreezeMode::kVssCopy;
}

}  // namespace

struct GuestInJob {
  std::string vm;
  GuestSpec spec;
  std::shared_ptr<link::GuestLink> link;
  FreezePlan plan;
  proto::OsFamily os = proto::OsFamily::kUnknown;
  bool freeze_sent = false;
  std::optional<proto::Frozen> frozen;
  Status freeze_status;
  bool thaw_done = false;
  std::optional<proto::Thawed> thawed;
  Status thaw_status;
};

struct JobRunner::JobState {
  std::string key;
  std::int64_t catalog_id = 0;
  proto::SnapshotRequest request;
  std::vector<std::string> vms;
  std::string group;
  std::vector<GuestInJob> guests;
  std::chrono::milliseconds lease{0};
  std::map<std::string, std::vector<arrays::LunSpec>> luns_by_backend;
  std::map<std::string, std::pair<std::string, std::size_t>> lun_owner;  // volume -> (vm, index)

  bool snapshot_ok = false;
  std::vector<arrays::SnapshotRecord> snapshots;  // landed before the deadline
  std::vector<arrays::SnapshotRecord> to_remove;  // landed but the group failed
  std::vector<std::string> sweep_backends;        // gave up at the deadline: look again later
  int late_pending = 0;                           // backend calls abandoned at their deadline
  bool late_recorded = false;                     // a late snapshot was recorded crash-consistent
  std::shared_ptr<asio::steady_timer> wait;       // the snapshot wait; Shutdown cancels it
  bool cancelled = false;
  bool closed_in_catalog = false;  // Record closes the job; late handling only touches the array

  Clock::time_point freeze_sent{}, snapshot_returned{}, thaw_sent{};
  Clock::time_point phase_start = Clock::now();
  Status error;
  proto::JobReport report;
  std::vector<catalog::PhaseTiming> phases;

  void Fail(const Status& s) {
    if (error.ok()) error = s;
  }
  void EndPhase(const std::string& name) {
    auto now = Clock::now();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - phase_start);
    phase_start = now;
    report.phases.push_back(proto::PhaseTiming{name, static_cast<std::uint64_t>(us.count())});
    phases.push_back(catalog::PhaseTiming{name, us});
    // Phase transitions at info, so a crash can be placed from the log.
    spdlog::info("job {}: {} done ({} us){}", key, name, us.count(),
                 error.ok() ? "" : ", failing: " + GuestText(error.ToString()));
  }
  bool AnyFreezeSent() const {
    for (const auto& g : guests)
      if (g.freeze_sent && !g.thaw_done) return true;
    return false;
  }
};

JobRunner::JobRunner(asio::any_io_executor io, asio::any_io_executor workers,
                     arrays::BackendSet& backends, catalog::Catalog& catalog, GuestRegistry& guests,
                     JobRunnerOptions options)
    : io_(std::move(io)),
      workers_(std::move(workers)),
      backends_(backends),
      catalog_(catalog),
      guests_(guests),
      options_(std::move(options)),
      idle_(io_, Clock::time_point::max()) {}

JobRunner::~JobRunner() { *alive_ = false; }

std::string JobRunner::NewJobKey() {
  std::random_device random;
  char buf[64];
  std::time_t now = SysClock::to_time_t(SysClock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
  std::snprintf(buf, sizeof(buf), "j%s_%04llu_%04x", stamp,
                static_cast<unsigned long long>(++job_counter_ % 10000), random() & 0xffffu);
  return buf;
}

std::string JobRunner::BusyJob(const std::string& vm) const {
  auto it = busy_.find(vm);
  return it == busy_.end() ? "" : it->second;
}

asio::awaitable<proto::JobReport> JobRunner::Snapshot(proto::SnapshotRequest request) {
  auto job = std::make_shared<JobState>();
  job->request = request;
  job->group = request.group;
  job->vms = request.vms;
  job->report.started_at = IsoTime(SysClock::now());
  job->report.state = "failed";
  job->report.consistency = "none";
  auto refuse = [&](const Status& s) {
    job->report.error = s.ToString();
    job->report.error_code = CodeOf(s);
    job->report.vms = job->vms;
    return job->report;
  };
  if (stopping_) co_return refuse(DaemonStopping());
  if (!request.group.empty()) {
    auto it = options_.groups.find(request.group);
    if (it == options_.groups.end())
      co_return refuse(Error(Code::kNotFound, "no group named " + request.group));
    for (const auto& vm : it->second) {
      if (std::find(job->vms.begin(), job->vms.end(), vm) == job->vms.end()) job->vms.push_back(vm);
    }
  }
  if (job->vms.empty()) co_return refuse(Error(Code::kInvalidArgument, "no VM named"));
  for (const auto& vm : job->vms) {
    if (!guests_.Find(vm)) co_return refuse(Error(Code::kNotFound, "no guest named " + vm));
    if (auto owner = BusyJob(vm); !owner.empty())
      co_return refuse(Error(Code::kBusy, "busy: " + vm + " is in job " + owner));
  }
  job->key = NewJobKey();
  job->report.job_id = job->key;
  job->report.vms = job->vms;
  for (const auto& vm : job->vms) busy_[vm] = job->key;
  running_.insert(job);
  ++running_jobs_;

  co_await RunJob(job);

  for (const auto& vm : job->vms) busy_.erase(vm);
  running_.erase(job);
  if (--running_jobs_ == 0) idle_.cancel();
  if (!stopping_ && job->catalog_id != 0) co_await ApplyRetention(job->vms);
  co_return job->report;
}

bool JobRunner::StopRequested(const std::shared_ptr<JobState>& job) {
  if (!stopping_) return false;
  job->Fail(DaemonStopping());
  return true;
}

asio::awaitable<void> JobRunner::RunJob(const std::shared_ptr<JobState>& job) {
  try {
    co_await Plan(job);
    job->EndPhase("plan");
    CrashPoint("job.after-plan");
    if (job->error.ok() && !StopRequested(job)) {
      // Journal first: a daemon killed from here on leaves a running job to reconcile.
      // The LUNs go into the journal too: a restarted daemon looks for this job's snapshots
      // there, not in whatever its configuration says by then.
      catalog::JobRow row{job->key, job->vms, job->group, SysClock::now(), {}};
      for (const auto& g : job->guests) {
        for (std::size_t i = 0; i < g.spec.luns.size(); ++i) {
          const auto& lun = g.spec.luns[i];
          row.luns.push_back(
              {g.vm, static_cast<std::int64_t>(i), lun.backend, lun.volume, lun.wwn});
        }
      }
      auto begin_job = [this, row] { return catalog_.BeginJob(row); };
      auto begun = co_await Blocking(workers_, begin_job);
      if (begun.ok())
        job->catalog_id = *begun;
      else
        job->Fail(begun.status().WithContext("catalog"));
      CrashPoint("job.after-begin");
    }
    if (job->error.ok() && !StopRequested(job)) {
      auto budget = SnapshotBudget(job->lease);
      for (const auto& [name, luns] : job->luns_by_backend) {
        if (StopRequested(job)) break;
        auto* backend = backends_.Find(name);
        auto resolve = [backend, luns = luns]() {
          for (const auto& lun : luns) QB_RETURN_IF_ERROR(backend->Resolve(lun));
          return Status::Ok();
        };
        Status resolved = co_await Blocking(workers_, resolve);
        if (!resolved.ok()) {
          job->Fail(resolved.WithContext("prepare " + name));
          break;
        }
        if (StopRequested(job)) break;
        auto prepare = [backend, luns = luns, budget]() { return backend->Prepare(luns, budget); };
        auto prepared = co_await Blocking(workers_, prepare);
        if (!prepared.ok()) {
          job->Fail(prepared.status().WithContext("prepare " + name));
          break;
        }
        for (const auto& w : prepared->warnings) spdlog::warn("job {}: {}", job->key, w);
      }
      job->EndPhase("prepare");
      CrashPoint("job.after-prepare");
    }
    if (job->error.ok() && !StopRequested(job)) {
      co_await FreezeAll(job);
      job->EndPhase("freeze");
      if (job->error.ok() && !StopRequested(job)) {
        co_await SnapshotAll(job);
        job->EndPhase("snapshot");
      }
    }
  } catch (const std::exception& e) {
    job->Fail(Error(Code::kInternal, std::string("job failed with an exception: ") + e.what()));
  }
  // Thaw on every path: whatever happened above, any guest that was sent a Freeze is thawed.
  if (job->AnyFreezeSent()) {
    CrashPoint("thaw.before");
    co_await ThawAll(job, job->snapshot_ok && job->error.ok());
    job->EndPhase("thaw");
    CrashPoint("thaw.after");
  }
  try {
    co_await Record(job);
  } catch (const std::exception& e) {
    job->Fail(
        Error(Code::kInternal, std::string("recording failed with an exception: ") + e.what()));
  }
  if (!job->error.ok()) {
    job->report.error = job->error.ToString();
    job->report.error_code = CodeOf(job->error);
    spdlog::warn("job {}: {}", job->key, GuestText(job->report.error));
  }
}

namespace {
// The catalog row of one of the job's snapshots (crash-consistent, present).
catalog::SnapshotRow RowOf(const JobRunner::JobState& job, const arrays::SnapshotRecord& record) {
  auto it = job.lun_owner.find(record.lun);
  const auto owner = it == job.lun_owner.end() ? std::pair<std::string, std::size_t>{} : it->second;
  return catalog::SnapshotRow{SnapshotId(job.key, owner.first, owner.second),
                              owner.first,
                              job.catalog_id,
                              record.backend,
                              record.lun,
                              record.array_name,
                              catalog::Consistency::kCrashConsistent,
                              record.created};
}
}  // namespace

asio::awaitable<void> JobRunner::Plan(const std::shared_ptr<JobState>& job) {
  job->lease = std::chrono::milliseconds(limits::kMaxLease);
  for (const auto& vm : job->vms) {
    if (StopRequested(job)) co_return;
    auto* guest = guests_.Find(vm);
    if (!guest) {
      job->Fail(Error(Code::kNotFound, "no guest named " + vm));
      co_return;
    }
    GuestInJob g;
    g.vm = vm;
    g.spec = guest->spec;
    g.link = guest->link;
    auto info = g.link->Info();
    if (info.state != link::LinkState::kConnected) {
      job->Fail(Error(Code::kGuestUnreachable,
                      vm + ": agent not connected (" + link::LinkStateName(info.state) +
                          (info.last_error.empty() ? "" : ": " + info.last_error) + ")"));
      co_return;
    }
    if (info.hello) g.os = info.hello->os.family;
    auto inventory = co_await g.link->Inventory(Clock::now() + options_.request_timeout);
    if (StopRequested(job)) co_return;
    if (!inventory.ok()) {
      job->Fail(inventory.status().WithContext(vm + ": inventory"));
      co_return;
    }
    auto plan = PlanFreeze(g.spec, *inventory, job->request.allow_partial);
    if (!plan.ok()) {
      job->Fail(plan.status());
      co_return;
    }
    g.plan = std::move(plan).value();
    AddNotCovered(job->report, vm, g.plan.not_covered);
    for (std::size_t i = 0; i < g.spec.luns.size(); ++i) {
      const auto& lun = g.spec.luns[i];
      if (!backends_.Find(lun.backend)) {
        job->Fail(Error(Code::kInvalidArgument,
                        vm + ": LUN " + lun.volume + " names unknown backend " + lun.backend));
        co_return;
      }
      job->luns_by_backend[lun.backend].push_back(lun);
      job->lun_owner[lun.volume] = {vm, i};
    }
    auto requested = std::chrono::milliseconds(job->request.lease_ms);
    job->lease = std::min(job->lease, JobLease(requested, g.os));
    job->guests.push_back(std::move(g));
  }
}

asio::awaitable<void> JobRunner::FreezeAll(const std::shared_ptr<JobState>& job) {
  job->freeze_sent = job->phase_start;  // the "freeze" phase starts with the first Freeze
  const auto deadline = job->freeze_sent + FreezeReplyTimeout(job->lease);
  std::vector<asio::awaitable<void>> ops;
  for (auto& g : job->guests) {
    ops.push_back([](JobState* j, GuestInJob* guest, Clock::time_point until,
                     proto::VssMode vss) -> asio::awaitable<void> {
      proto::Freeze freeze;
      freeze.job_id = j->key;
      freeze.volumes = guest->plan.freeze_volumes;
      freeze.mode = ModeFor(guest->os, vss);
      freeze.lease_ms = static_cast<std::uint32_t>(j->lease.count());
      guest->freeze_sent = true;  // from here on the guest may be frozen: it will be thawed
      CrashPoint("freeze.before-send");
      auto frozen = co_await guest->link->Freeze(freeze, until);
      if (frozen.ok())
        guest->frozen = std::move(frozen).value();
      else
        guest->freeze_status = frozen.status();
    }(job.get(), &g, deadline, job->request.vss_mode));
  }
  co_await WhenAll(std::move(ops));
  CrashPoint("freeze.after-frozen");
  for (auto& g : job->guests) {
    if (!g.frozen) {
      job->Fail(g.freeze_status.ok() ? Error(Code::kInternal, g.vm + ": freeze recorded nothing")
                                     : g.freeze_status.WithContext(g.vm + ": freeze"));
      continue;
    }
    if (!g.frozen->skipped_volumes.empty()) {
      job->Fail(Error(Code::kPartial, g.vm + ": agent skipped volume " +
                                          GuestField(g.frozen->skipped_volumes[0].volume) + ": " +
                                          GuestField(g.frozen->skipped_volumes[0].reason)));
    }
    AddWriterResults(job->report, g.vm, g.frozen->writers, proto::WriterPhase::kFreeze);
    for (const auto& w : g.frozen->writers) {
      if (!w.ok)
        job->Fail(Error(Code::kPartial, g.vm + ": writer " + GuestField(w.name) +
                                            " failed: " + GuestField(w.state)));
    }
  }
}

asio::awaitable<void> JobRunner::SnapshotAll(const std::shared_ptr<JobState>& job) {
  // The lease actually granted may be shorter than the one asked for.
  auto lease = job->lease;
  for (const auto& g : job->guests) {
    if (g.frozen && g.frozen->lease_granted_ms > 0)
      lease = std::min(lease, std::chrono::milliseconds(g.frozen->lease_granted_ms));
  }
  const auto deadline = job->freeze_sent + lease - limits::kArrayCallMargin;

  struct Pending {
    explicit Pending(const asio::any_io_executor& ex)
        : wake(std::make_shared<asio::steady_timer>(ex)) {}
    std::shared_ptr<asio::steady_timer> wake;
    std::size_t left = 0;
    bool abandoned = false;
    std::map<std::string, Result<std::vector<arrays::SnapshotRecord>>> results;
  };
  auto pending = std::make_shared<Pending>(io_);
  pending->left = job->luns_by_backend.size();
  pending->wake->expires_at(deadline);
  job->wait = pending->wake;
  std::weak_ptr<bool> alive = alive_;
  for (const auto& [name, luns] : job->luns_by_backend) {
    auto* backend = backends_.Find(name);
    asio::post(workers_, [this, alive, io = io_, pending, job, backend, name = name, luns = luns,
                          deadline] {
      Result<std::vector<arrays::SnapshotRecord>> result =
          Error(Code::kInternal, "snapshot call did not run");
      try {
        CrashPoint("snapshot.before-array");
        result = backend->Snapshot(luns, job->key, deadline);
        CrashPoint("snapshot.after-array");
      } catch (const std::exception& e) {
        result = Error(Code::kInternal, std::string("backend threw: ") + e.what());
      }
      asio::post(io, [this, alive, pending, job, name, result = std::move(result)]() mutable {
        if (alive.expired()) return;
        if (pending->abandoned) {
          HandleLateSnapshot(job, name, std::move(result));
          return;
        }
        pending->results.emplace(name, std::move(result));
        if (--pending->left == 0) pending->wake->cancel();
      });
    });
  }
  co_await pending->wake->async_wait(asio::as_tuple(asio::use_awaitable));
  if (pending->left > 0) {
    // The deadline passed (or shutdown cut the wait): thaw now; whatever lands later is
    // handled by HandleLateSnapshot, never labelled application-consistent.
    pending->abandoned = true;
    job->late_pending = static_cast<int>(pending->left);
    job->Fail(job->cancelled ? DaemonStopping()
                             : Error(Code::kTimeout,
                                     "the array call outlived its deadline inside the freeze "
                                     "lease"));
    for (auto& [name, result] : pending->results) {
      ++job->late_pending;
      HandleLateSnapshot(job, name, std::move(result));
    }
    co_return;
  }
  job->snapshot_returned = Clock::now();
  bool all_ok = true;
  for (auto& [name, result] : pending->results) {
    if (!result.ok()) {
      all_ok = false;
      job->Fail(result.status().WithContext("snapshot " + name));
      if (result.status().code() == Code::kTimeout || result.status().code() == Code::kPartial)
        job->sweep_backends.push_back(name);
    }
  }
  for (auto& [name, result] : pending->results) {
    if (!result.ok()) continue;
    auto& target = all_ok ? job->snapshots : job->to_remove;
    target.insert(target.end(), result->begin(), result->end());
  }
  job->snapshot_ok = all_ok;
}

void JobRunner::ScheduleSweep(std::shared_ptr<JobState> job, std::string name) {
  asio::co_spawn(
      io_,
      [](JobRunner* self, std::shared_ptr<JobState> job, std::string name,
         std::weak_ptr<bool> alive) -> asio::awaitable<void> {
        asio::steady_timer delay(self->io_, self->options_.late_sweep_delay);
        co_await delay.async_wait(asio::as_tuple(asio::use_awaitable));
        if (alive.expired()) co_return;
        auto* backend = self->backends_.Find(name);
        auto luns = job->luns_by_backend[name];
        auto find_by_key = [backend, luns, key = job->key] {
          return backend->FindByKey(luns, key);
        };
        auto found = co_await Blocking(self->workers_, find_by_key);
        if (alive.expired()) co_return;
        self->HandleLateSnapshot(job, name, std::move(found), /*from_sweep=*/true);
      }(this, job, name, alive_),
      asio::detached);
}

void JobRunner::HandleLateSnapshot(std::shared_ptr<JobState> job, std::string backend_name,
                                   Result<std::vector<arrays::SnapshotRecord>> result,
                                   bool from_sweep) {
  if (!from_sweep && !result.ok() &&
      (result.status().code() == Code::kTimeout || result.status().code() == Code::kPartial)) {
    // The call gave up but its snapshots may still land: look for them by key later.
    ScheduleSweep(std::move(job), std::move(backend_name));
    return;
  }
  asio::co_spawn(
      io_,
      [](JobRunner* self, std::shared_ptr<JobState> job, std::string backend_name,
         Result<std::vector<arrays::SnapshotRecord>> result) -> asio::awaitable<void> {
        auto* backend = self->backends_.Find(backend_name);
        if (result.ok() && backend) {
          spdlog::warn(
              "job {}: {} snapshot(s) landed after the deadline: {}", job->key, result->size(),
              self->options_.late_policy == LatePolicy::kRemove ? "removing"
                                                                : "recording crash-consistent");
          for (const auto& record : *result) {
            if (self->options_.late_policy == LatePolicy::kRemove || job->catalog_id == 0) {
              auto remove_late = [backend, record] { return backend->Remove(record); };
              Status removed = co_await Blocking(self->workers_, remove_late);
              if (!removed.ok()) spdlog::error("job {}: {}", job->key, removed.ToString());
            } else {
              auto owner = job->lun_owner[record.lun];
              catalog::SnapshotRow row{SnapshotId(job->key, owner.first, owner.second),
                                       owner.first,
                                       job->catalog_id,
                                       backend_name,
                                       record.lun,
                                       record.array_name,
                                       catalog::Consistency::kCrashConsistent,
                                       record.created};
              auto record_late = [self, row] { return self->catalog_.AddSnapshot(row); };
              Status added = co_await Blocking(self->workers_, record_late);
              if (added.ok())
                job->late_recorded = true;
              else
                spdlog::error("job {}: {}", job->key, added.ToString());
            }
          }
        }
        if (--job->late_pending == 0 && job->catalog_id != 0) {
          Status finished = co_await self->FinishLate(job);
          if (!finished.ok()) spdlog::error("job {}: {}", job->key, finished.ToString());
        }
      }(this, std::move(job), std::move(backend_name), std::move(result)),
      asio::detached);
}

asio::awaitable<Status> JobRunner::FinishLate(const std::shared_ptr<JobState>& job) {
  if (job->closed_in_catalog) {
    spdlog::info("job {}: late array call handled", job->key);
    co_return Status::Ok();
  }
  catalog::JobOutcome outcome;
  outcome.state = catalog::JobState::kFailed;
  if (job->late_recorded) outcome.consistency = catalog::Consistency::kCrashConsistent;
  outcome.error = job->error.ToString();
  outcome.phases = job->phases;
  outcome.writer_results_json = WritersToCatalogJson(job->report);
  outcome.finished = SysClock::now();
  auto finish_late = [this, id = job->catalog_id, outcome] {
    return catalog_.FinishJob(id, outcome);
  };
  co_return co_await Blocking(workers_, finish_late);
}

asio::awaitable<void> JobRunner::ThawAll(const std::shared_ptr<JobState>& job, bool snapshot_ok) {
  if (job->thaw_sent == Clock::time_point{}) job->thaw_sent = Clock::now();
  std::vector<asio::awaitable<void>> ops;
  for (auto& g : job->guests) {
    if (!g.freeze_sent || g.thaw_done) continue;
    // A guest that answered Frozen is alive: its Thaw gets the full request timeout. One that
    // never did (its Freeze timed out or its session ended) may be stalled or gone: wait only
    // for what is left of the lease plus kThawMargin, after which its own lease has thawed
    // it anyway (and the job is not application-consistent: invariant 2).
    auto deadline = Clock::now() + options_.request_timeout;
    if (!g.frozen) {
      auto lease_end = job->freeze_sent + job->lease;
      deadline = std::max(lease_end, Clock::now()) + limits::kThawMargin;
    }
    ops.push_back([](JobState* j, GuestInJob* guest, bool ok,
                     Clock::time_point until) -> asio::awaitable<void> {
      proto::Thaw thaw{j->key, ok};
      std::vector<std::string> volumes = guest->plan.freeze_volumes;
      auto thawed = co_await guest->link->Thaw(thaw, volumes, until);
      guest->thaw_done = true;
      if (thawed.ok())
        guest->thawed = std::move(thawed).value();
      else
        guest->thaw_status = thawed.status();
    }(job.get(), &g, snapshot_ok, deadline));
  }
  co_await WhenAll(std::move(ops));
  if (job->freeze_sent != Clock::time_point{})
    job->report.freeze_window_us = FreezeWindowUs(job->report.phases);
}

asio::awaitable<void> JobRunner::Record(const std::shared_ptr<JobState>& job) {
  // Verify: the two facts invariant 2 requires, gathered here and nowhere else.
  catalog::FreezeVerification evidence;
  evidence.snapshot_succeeded_before_thaw = job->snapshot_ok &&
                                            job->snapshot_returned != Clock::time_point{} &&
                                            job->snapshot_returned <= job->thaw_sent;
  bool held = !job->guests.empty();
  for (auto& g : job->guests) {
    if (!g.thaw_done) continue;
    if (g.thawed) AddWriterResults(job->report, g.vm, g.thawed->writers, proto::WriterPhase::kThaw);
    if (!g.thawed) {
      held = false;
      if (job->snapshot_ok) job->Fail(g.thaw_status.WithContext(g.vm + ": thaw"));
      continue;
    }
    if (!g.thawed->held_whole_window || g.thawed->already_thawed) {
      held = false;
      if (job->snapshot_ok) {
        job->Fail(Error(Code::kPartial,
                        g.vm + ": the freeze did not hold the whole window: " +
                            (g.thawed->not_held_reason.empty() ? std::string("already thawed")
                                                               : g.thawed->not_held_reason)));
      }
    }
  }
  for (const auto& g : job->guests) held = held && g.thaw_done && g.thawed.has_value();
  evidence.freeze_held_whole_window = held;
  if (job->freeze_sent != Clock::time_point{}) job->EndPhase("verify");

  // Snapshots of a failed group are removed (all-or-nothing), after the thaw. The removal is
  // journaled first (rows in state deleting): a daemon killed before it is done finishes it
  // at start, instead of finding the snapshots by key and keeping them crash-consistent.
  if (!job->to_remove.empty()) {
    std::vector<catalog::SnapshotRow> doomed;
    for (const auto& record : job->to_remove) {
      auto row = RowOf(*job, record);
      row.state = catalog::SnapshotState::kDeleting;
      doomed.push_back(std::move(row));
    }
    auto journal = [this, doomed, id = job->catalog_id]() -> Status {
      if (id == 0) return Status::Ok();
      for (const auto& row : doomed) QB_RETURN_IF_ERROR(catalog_.AddSnapshot(row));
      return Status::Ok();
    };
    Status journaled = co_await Blocking(workers_, journal);
    if (!journaled.ok()) spdlog::error("job {}: {}", job->key, journaled.ToString());
    CrashPoint("record.before-group-remove");
    for (std::size_t i = 0; i < job->to_remove.size(); ++i) {
      auto* backend = backends_.Find(job->to_remove[i].backend);
      if (!backend) continue;
      auto remove_failed = [this, backend, record = job->to_remove[i], id = doomed[i].id,
                            journaled = journaled.ok() && job->catalog_id != 0]() -> Status {
        QB_RETURN_IF_ERROR(backend->Remove(record));
        return journaled ? catalog_.DeleteSnapshot(id) : Status::Ok();
      };
      Status removed = co_await Blocking(workers_, remove_failed);
      if (!removed.ok()) spdlog::error("job {}: {}", job->key, removed.ToString());
    }
  }
  if (job->catalog_id == 0) co_return;

  // Rows, label and the job's end in ONE catalog transaction (RecordJob): a crash leaves the
  // job running with none of its rows (reconcile applies the late policy to what it finds),
  // or the whole record.
  std::vector<catalog::SnapshotRow> rows;
  for (const auto& record : job->snapshots) rows.push_back(RowOf(*job, record));
  const bool recorded = !rows.empty();
  const bool app_consistent = recorded && job->error.ok() &&
                              evidence.snapshot_succeeded_before_thaw &&
                              evidence.freeze_held_whole_window;
  for (const auto& name : job->sweep_backends) {
    ++job->late_pending;
    ScheduleSweep(job, name);
  }
  const bool late = job->late_pending > 0;

  catalog::JobOutcome outcome;
  outcome.state = app_consistent ? catalog::JobState::kSucceeded : catalog::JobState::kFailed;
  if (app_consistent) outcome.consistency = catalog::Consistency::kApplicationConsistent;
  outcome.error = job->error.ok() ? "" : job->error.ToString();
  // An array call still out (or to be looked for by key): the job is over for the guests and
  // is recorded failed now; the late handling only removes or records its snapshots later.
  // The note lets Reconcile() find such jobs again if the daemon dies before that.
  if (late) outcome.error += kLateArrayNote;
  outcome.array_call_late = late;
  job->EndPhase("record");
  outcome.phases = job->phases;
  outcome.writer_results_json = WritersToCatalogJson(job->report);
  for (const auto& g : job->guests) {
    if (g.thawed && !g.thawed->backup_components_document.empty())
      outcome.backup_components_doc = g.thawed->backup_components_document;
  }
  outcome.finished = SysClock::now();
  std::optional<catalog::FreezeVerification> proof;
  if (app_consistent) proof = evidence;
  auto record_job = [this, id = job->catalog_id, rows, outcome, proof] {
    return catalog_.RecordJob(id, rows, outcome, proof);
  };
  CrashPoint("record.before-rows");
  // Set before the wait: a late call landing meanwhile must not close the job a second time.
  // Should RecordJob fail, the job stays running and the next daemon reconciles it.
  job->closed_in_catalog = true;
  Status finished = co_await Blocking(workers_, record_job);
  CrashPoint("record.after-label");
  const bool stored = finished.ok();
  if (!stored) job->Fail(finished.WithContext("catalog"));
  if (stored) {
    for (const auto& row : rows) {
      job->report.snapshots.push_back(proto::SnapshotInfo{
          row.id, row.vm, job->key, row.backend, row.lun, row.array_name,
          app_consistent ? "application-consistent" : "crash-consistent", IsoTime(row.created)});
    }
  }
  job->report.state = stored && app_consistent && job->error.ok() ? "done" : "failed";
  job->report.consistency = !stored          ? "none"
                            : app_consistent ? "application-consistent"
                            : recorded       ? "crash-consistent"
                                             : "none";
}

std::optional<RetentionRule> JobRunner::RuleFor(const std::string& vm) const {
  if (auto it = options_.retention.find(vm); it != options_.retention.end()) return it->second;
  for (const auto& [group, members] : options_.groups) {
    if (std::find(members.begin(), members.end(), vm) == members.end()) continue;
    if (auto it = options_.retention.find(group); it != options_.retention.end()) return it->second;
  }
  if (auto it = options_.retention.find("*"); it != options_.retention.end()) return it->second;
  return std::nullopt;
}

asio::awaitable<void> JobRunner::ApplyRetention(std::vector<std::string> vms) {
  for (const auto& vm : vms) {
    auto removed = co_await Prune(vm);
    if (!removed.ok()) spdlog::warn("retention of {}: {}", vm, removed.status().ToString());
  }
}

asio::awaitable<Result<std::vector<catalog::SnapshotRow>>> JobRunner::Prune(std::string vm) {
  std::vector<std::string> vms;
  if (vm.empty()) {
    for (auto* g : guests_.All()) vms.push_back(g->spec.name);
  } else {
    vms.push_back(vm);
  }
  std::vector<catalog::SnapshotRow> removed;
  for (const auto& name : vms) {
    auto rule = RuleFor(name);
    if (!rule) continue;
    auto prune_candidates = [this, name, rule] {
      return catalog_.PruneCandidates(name, rule->keep_last, rule->max_age, SysClock::now());
    };
    auto candidates = co_await Blocking(workers_, prune_candidates);
    if (!candidates.ok()) co_return candidates.status();
    for (const auto& row : *candidates) {
      CrashPoint("prune.before-delete");
      Status deleted = co_await DeleteSnapshot(row.id);
      if (!deleted.ok()) co_return deleted;
      removed.push_back(row);
    }
  }
  co_return removed;
}

asio::awaitable<Status> JobRunner::DeleteSnapshot(std::string snapshot_id) {
  // Journal, array, row: the row goes to state deleting before the array call, and goes only
  // after it. A daemon killed in between finishes the removal at start (Reconcile()).
  auto delete_snapshot = [this, snapshot_id]() -> Status {
    auto row = catalog_.GetSnapshot(snapshot_id);
    if (!row.ok()) return row.status();
    auto* backend = backends_.Find(row->backend);
    if (!backend) return Error(Code::kNotFound, "backend " + row->backend + " is not configured");
    QB_RETURN_IF_ERROR(catalog_.MarkDeleting(snapshot_id));
    CrashPoint("delete.after-mark");
    return RemoveJournaled(*backend, *row);
  };
  auto removed = co_await Blocking(workers_, delete_snapshot);
  co_return removed;
}

Status JobRunner::RemoveJournaled(arrays::ArrayBackend& backend, const catalog::SnapshotRow& row) {
  auto job = catalog_.GetJob(row.job_id);
  arrays::SnapshotRecord record{row.lun, row.array_name, job.ok() ? job->row.job_key : "",
                                row.backend, row.created};
  Status removed = backend.Remove(record);
  if (!removed.ok()) {
    // The array kept the snapshot: the row is present again (delete can be retried).
    Status restored = catalog_.MarkPresent(row.id);
    if (!restored.ok()) spdlog::error("snapshot {}: {}", row.id, restored.ToString());
    return removed;
  }
  CrashPoint("delete.after-array");
  return catalog_.DeleteSnapshot(row.id);
}

asio::awaitable<Result<std::string>> JobRunner::Expose(std::string snapshot_id,
                                                       std::string as_name) {
  auto clone = [this, snapshot_id, as_name]() -> Result<std::string> {
    auto row = catalog_.GetSnapshot(snapshot_id);
    if (!row.ok()) return row.status();
    auto* backend = backends_.Find(row->backend);
    if (!backend) return Error(Code::kNotFound, "backend " + row->backend + " is not configured");
    if (row->state != catalog::SnapshotState::kPresent)
      return Error(Code::kNotFound, "snapshot " + snapshot_id + " is being deleted");
    if (!backend->capabilities().clone)
      return Error(Code::kUnsupported, "backend " + row->backend + " cannot clone");
    arrays::SnapshotRecord record{row->lun, row->array_name, "", row->backend, row->created};
    return backend->Clone(record, as_name);
  };
  co_return co_await Blocking(workers_, clone);
}

asio::awaitable<Status> JobRunner::Rollback(std::string vm, std::string snapshot_id) {
  auto* guest = guests_.Find(vm);
  if (!guest) co_return Error(Code::kNotFound, "no guest named " + vm);
  if (auto owner = BusyJob(vm); !owner.empty())
    co_return Error(Code::kBusy, "busy: " + vm + " is in job " + owner);
  if (guest->link->Info().state == link::LinkState::kConnected) {
    co_return Error(Code::kPermissionDenied,
                    "rollback refused: " + vm + " is running (its agent answers); stop it first");
  }
  auto rollback = [this, vm, snapshot_id]() -> Status {
    auto row = catalog_.GetSnapshot(snapshot_id);
    if (!row.ok()) return row.status();
    if (row->vm != vm)
      return Error(Code::kInvalidArgument, "snapshot " + snapshot_id + " belongs to " + row->vm);
    auto* backend = backends_.Find(row->backend);
    if (!backend) return Error(Code::kNotFound, "backend " + row->backend + " is not configured");
    if (row->state != catalog::SnapshotState::kPresent)
      return Error(Code::kNotFound, "snapshot " + snapshot_id + " is being deleted");
    if (!backend->capabilities().rollback)
      return Error(Code::kUnsupported, "backend " + row->backend + " cannot roll back");
    arrays::SnapshotRecord record{row->lun, row->array_name, "", row->backend, row->created};
    return backend->Rollback(record);
  };
  co_return co_await Blocking(workers_, rollback);
}

asio::awaitable<void> JobRunner::ThawLeftoverFreeze(std::string vm, proto::FreezeState state) {
  if (!state.frozen || state.job_id.empty()) co_return;
  const std::string job_id = state.job_id;
  const std::string shown_id = GuestText(job_id);  // the guest's text, for the log
  for (const auto& job : running_) {
    if (job->key == job_id) co_return;  // ours: the job thaws it
  }
  auto get_job = [this, job_id] { return catalog_.GetJobByKey(job_id); };
  auto record = co_await Blocking(workers_, get_job);
  if (!record.ok()) {
    if (record.status().code() == Code::kNotFound) {
      spdlog::warn(
          "guest {}: frozen for job {} which the catalog does not know; its lease thaws it", vm,
          shown_id);
    } else {
      spdlog::error("guest {}: frozen for job {}: {}; its lease thaws it", vm, shown_id,
                    record.status().ToString());
    }
    co_return;
  }
  const auto& vms = record->row.vms;
  if (record->state != catalog::JobState::kRunning ||
      std::find(vms.begin(), vms.end(), vm) == vms.end()) {
    spdlog::warn("guest {}: frozen for job {} ({}{}); its lease thaws it", vm, shown_id,
                 catalog::JobStateName(record->state),
                 std::find(vms.begin(), vms.end(), vm) == vms.end() ? ", not one of its VMs" : "");
    co_return;
  }
  auto* guest = guests_.Find(vm);
  if (!guest) co_return;
  auto link = guest->link;
  spdlog::warn(
      "guest {}: still frozen for job {} of a daemon that stopped mid-job: thawing it now "
      "(snapshot not OK; the job is left to reconcile)",
      vm, shown_id);
  proto::Thaw thaw{job_id, false};
  auto thawed =
      co_await link->Thaw(thaw, state.frozen_volumes, Clock::now() + options_.request_timeout);
  if (thawed.ok()) {
    spdlog::info("guest {}: thawed job {} left by a stopped daemon", vm, shown_id);
  } else {
    spdlog::error("guest {}: thaw of job {} left by a stopped daemon: {}; its lease thaws it", vm,
                  shown_id, thawed.status().ToString());
  }
}

asio::awaitable<Result<std::string>> JobRunner::Thaw(std::string vm) {
  auto* guest = guests_.Find(vm);
  if (!guest) co_return Error(Code::kNotFound, "no guest named " + vm);
  auto link = guest->link;
  auto status = co_await link->Status(Clock::now() + options_.request_timeout);
  if (!status.ok()) co_return status.status();
  if (!status->state.frozen) co_return std::string("not frozen");
  proto::Thaw thaw{status->state.job_id, false};
  std::vector<std::string> volumes;
  auto thawed = co_await link->Thaw(thaw, volumes, Clock::now() + options_.request_timeout);
  if (!thawed.ok()) co_return thawed.status();
  co_return "thawed job " + thaw.job_id;
}

asio::awaitable<Status> JobRunner::Reconcile() {
  // 1. Removals a killed daemon left half done (delete, retention, a failed group's members):
  // journaled as rows in state deleting before the array call; finish them.
  auto finish_deletions = [this]() -> Status {
    auto pending = catalog_.PendingDeletions();
    if (!pending.ok()) return pending.status();
    for (const auto& row : *pending) {
      auto* backend = backends_.Find(row.backend);
      if (!backend) {
        spdlog::error("snapshot {}: deletion pending, but backend {} is not configured", row.id,
                      row.backend);
        continue;
      }
      Status removed = RemoveJournaled(*backend, row);
      if (removed.ok())
        spdlog::info("snapshot {}: pending deletion finished", row.id);
      else
        spdlog::error("snapshot {}: pending deletion: {}", row.id, removed.ToString());
    }
    return Status::Ok();
  };
  Status deletions = co_await Blocking(workers_, finish_deletions);
  if (!deletions.ok()) co_return deletions;

  auto unfinished_jobs = [this] { return catalog_.UnfinishedJobs(); };
  auto unfinished = co_await Blocking(workers_, unfinished_jobs);
  if (!unfinished.ok()) co_return unfinished.status();
  // Jobs recorded failed while an array call was still late (array_call_late): if the daemon
  // stopped before handling the late snapshot, it is handled here (swept, never closed again).
  auto late_jobs = [this]() -> Result<std::vector<catalog::JobRecord>> {
    auto recent = catalog_.ListJobs(1000);
    if (!recent.ok()) return recent.status();
    std::vector<catalog::JobRecord> out;
    const auto horizon = SysClock::now() - kLateJobHorizon;
    for (auto& j : *recent) {
      if (j.state == catalog::JobState::kFailed && j.row.started >= horizon && j.array_call_late)
        out.push_back(std::move(j));
    }
    return out;
  };
  auto late = co_await Blocking(workers_, late_jobs);
  if (!late.ok()) co_return late.status();
  unfinished->insert(unfinished->end(), late->begin(), late->end());
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      if (unfinished->empty()) break;
      // An array call of a killed daemon can still be in flight (it outlives the process):
      // look again once, a sweep delay later, and apply the same policy to what landed.
      asio::steady_timer delay(io_, options_.late_sweep_delay);
      co_await delay.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    for (const auto& job : *unfinished) {
      // Where to look: the LUNs the job journaled when it began. Only a job journaled by an
      // older daemon (none) falls back to today's configuration.
      std::map<std::string, std::vector<arrays::LunSpec>> by_backend;
      std::map<std::string, std::pair<std::string, std::size_t>> owner;
      for (const auto& lun : job.row.luns) {
        by_backend[lun.backend].push_back(arrays::LunSpec{lun.backend, lun.volume, lun.wwn});
        owner[lun.volume] = {lun.vm, static_cast<std::size_t>(lun.index)};
      }
      if (job.row.luns.empty()) {
        for (const auto& vm : job.row.vms) {
          auto* guest = guests_.Find(vm);
          if (!guest) {
            spdlog::warn("reconcile {}: no LUN journal and no guest {} configured", job.row.job_key,
                         vm);
            continue;
          }
          for (std::size_t i = 0; i < guest->spec.luns.size(); ++i) {
            by_backend[guest->spec.luns[i].backend].push_back(guest->spec.luns[i]);
            owner[guest->spec.luns[i].volume] = {vm, i};
          }
        }
      }
      const auto policy = options_.late_policy;
      auto reconcile_job = [this, job, by_backend, owner, policy, pass]() -> Status {
        auto existing = catalog_.ListSnapshotsOfJob(job.id);
        if (!existing.ok()) return existing.status();
        std::vector<catalog::SnapshotRow> found_rows;
        for (const auto& [name, luns] : by_backend) {
          auto* backend = backends_.Find(name);
          if (!backend) {
            spdlog::error("reconcile {}: backend {} is not configured", job.row.job_key, name);
            continue;
          }
          auto found = backend->FindByKey(luns, job.row.job_key);
          if (!found.ok()) return found.status().WithContext("reconcile " + job.row.job_key);
          for (const auto& record : *found) {
            auto it = owner.find(record.lun);
            if (it == owner.end()) continue;
            auto id = SnapshotId(job.row.job_key, it->second.first, it->second.second);
            // A snapshot with a row is the catalog's: never removed, relabelled or promoted.
            // The late policy is only for snapshots found on the array without a row.
            bool known = std::any_of(existing->begin(), existing->end(),
                                     [&](const catalog::SnapshotRow& r) { return r.id == id; });
            if (known) continue;
            if (policy == LatePolicy::kRemove) {
              QB_RETURN_IF_ERROR(backend->Remove(record));
              continue;
            }
            found_rows.push_back(catalog::SnapshotRow{
                id, it->second.first, job.id, name, record.lun, record.array_name,
                catalog::Consistency::kCrashConsistent, record.created});
          }
        }
        // The job stays running (reconcilable by the next daemon) until the second pass; the
        // rows found meanwhile are recorded (crash-consistent) so they count as known. A job
        // already closed (failed with a late array call) only has its snapshots handled.
        if (pass == 0 || job.state != catalog::JobState::kRunning) {
          for (const auto& row : found_rows) QB_RETURN_IF_ERROR(catalog_.AddSnapshot(row));
          return Status::Ok();
        }
        catalog::JobOutcome outcome;
        outcome.state = catalog::JobState::kReconciled;
        outcome.error =
            "the daemon stopped during this job; reconciled at start (" +
            std::string(policy == LatePolicy::kRemove ? "snapshots without a row removed"
                                                      : "snapshots kept crash-consistent") +
            ")";
        outcome.finished = SysClock::now();
        // Never promotes: no evidence, so the label is derived (crash-consistent with rows).
        return catalog_.RecordJob(job.id, found_rows, outcome, std::nullopt);
      };
      Status done = co_await Blocking(workers_, reconcile_job);
      if (!done.ok())
        spdlog::error("reconcile {}: {}", job.row.job_key, done.ToString());
      else if (pass == 1 && job.state == catalog::JobState::kRunning)
        spdlog::info("reconciled unfinished job {}", job.row.job_key);
    }
  }
  spdlog::info("reconcile done");
  co_return Status::Ok();
}

asio::awaitable<Result<std::vector<proto::JobReport>>> JobRunner::ListJobs(int limit) {
  auto list_jobs = [this, limit]() -> Result<std::vector<proto::JobReport>> {
    auto jobs = catalog_.ListJobs(limit);
    if (!jobs.ok()) return jobs.status();
    std::vector<proto::JobReport> out;
    for (const auto& j : *jobs) {
      proto::JobReport r;
      r.job_id = j.row.job_key;
      r.vms = j.row.vms;
      r.state = std::string(catalog::JobStateName(j.state));
      r.consistency =
          j.consistency ? std::string(catalog::ConsistencyLabel(*j.consistency)) : "none";
      r.error = j.error;
      for (const auto& p : j.phases)
        r.phases.push_back(
            proto::PhaseTiming{p.phase, static_cast<std::uint64_t>(p.duration.count())});
      r.started_at = IsoTime(j.row.started);
      r.freeze_window_us = FreezeWindowUs(r.phases);
      WritersFromCatalogJson(j.writer_results_json, r);
      auto rows = catalog_.ListSnapshotsOfJob(j.id);
      if (!rows.ok()) return rows.status();
      for (const auto& row : *rows) {
        if (row.state != catalog::SnapshotState::kPresent) continue;  // being deleted
        r.snapshots.push_back(proto::SnapshotInfo{
            row.id, row.vm, j.row.job_key, row.backend, row.lun, row.array_name,
            std::string(catalog::ConsistencyLabel(row.consistency)), IsoTime(row.created)});
      }
      out.push_back(std::move(r));
    }
    return out;
  };
  co_return co_await Blocking(workers_, list_jobs);
}

asio::awaitable<Result<std::vector<proto::SnapshotInfo>>> JobRunner::ListSnapshots(std::string vm) {
  auto list_snapshots = [this, vm]() -> Result<std::vector<proto::SnapshotInfo>> {
    auto rows = catalog_.ListSnapshots(vm);
    if (!rows.ok()) return rows.status();
    std::vector<proto::SnapshotInfo> out;
    for (const auto& row : *rows) {
      auto job = catalog_.GetJob(row.job_id);
      out.push_back(proto::SnapshotInfo{
          row.id, row.vm, job.ok() ? job->row.job_key : "", row.backend, row.lun, row.array_name,
          std::string(catalog::ConsistencyLabel(row.consistency)), IsoTime(row.created)});
    }
    return out;
  };
  co_return co_await Blocking(workers_, list_snapshots);
}

asio::awaitable<void> JobRunner::Shutdown() {
  stopping_ = true;
  for (const auto& job : running_) {
    job->cancelled = true;
    if (job->wait) job->wait->cancel();
  }
  while (running_jobs_ > 0) {
    idle_.expires_at(Clock::time_point::max());
    co_await idle_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace qb::jobs
