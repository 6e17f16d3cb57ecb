#include "guest-agent/linux/fsfreeze_service.h"

#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <optional>

#include "common/crash_point.h"
#include "common/logging.h"
#include "guest-agent/linux/fs_freezer.h"
#include "guest-agent/linux/thaw_guard.h"
#include "guest-agent/worker.h"

namespace qb::agent {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Finished jobs remembered for truthful answers to a late or repeated Thaw.
constexpr std::size_t kFinishedJobsKept = 32;

std::uint64_t ToNs(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}
std::uint64_t NowNs() { return ToNs(Clock::now()); }

proto::AgentBody ErrorBody(proto::ErrorCode code, std::string message) {
  return proto::ErrorReply{code, std::move(message)};
}

proto::ErrorCode ErrorCodeFor(const qb::Status& status) {
  switch (status.code()) {
    case Code::kNotFound:
      return proto::ErrorCode::kNotFound;
    case Code::kAlreadyFrozen:
      return proto::ErrorCode::kAlreadyFrozen;
    case Code::kUnsupported:
      return proto::ErrorCode::kUnsupported;
    default:
      return proto::ErrorCode::kFreezeFailed;
  }
}

std::string OsPrettyName() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string value = line.substr(12);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
  }
  return "Linux";
}

}  // namespace

struct FsFreezeService::Job {
  explicit Job(asio::any_io_executor io) : lease_timer(io) {}
  enum class Phase { kFreezing, kFrozen, kEnded };

  std::string id;
  proto::FreezeMode mode = proto::FreezeMode::kFsfreeze;
  Clock::time_point received;
  std::chrono::milliseconds lease{0};
  Clock::time_point lease_deadline;
  Phase phase = Phase::kFreezing;
  std::vector<std::string> mount_points;  // to freeze, mount order
  std::vector<std::string> aliases;       // bind mounts of a frozen fs, reported frozen
  std::optional<FsFreezeSet> set;
  std::optional<ThawGuard> guard;
  std::unique_ptr<FrozenModeLog> frozen_log;
  std::vector<std::string> hooks_ran;
  std::vector<proto::WriterResult> freeze_writers;
  std::vector<SkippedMount> skipped;
  std::uint64_t frozen_since_ns = 0;
  std::uint64_t frozen_at_ns = 0;
  // Timing points (steady ns) for the debug line logged after the Thawed reply.
  std::uint64_t frozen_reply_ns = 0;
  // Before FIFREEZE: handed to the worker, worker started, hooks, open, crash record done.
  std::array<std::uint64_t, 5> prepare_ns{};
  std::uint64_t thaw_received_ns = 0;
  std::uint64_t thaw_worker_ns = 0;  // the worker began FITHAW
  std::uint64_t thawed_at_ns = 0;
  std::uint64_t thawed_reply_ns = 0;
  bool frozen_reply_sent = false;
  bool lease_expired = false;
  std::uint64_t lease_expired_at_ns = 0;
  asio::steady_timer lease_timer;
};

FsFreezeService::FsFreezeService(asio::any_io_executor io, FsFreezeServiceOptions options)
    : io_(io),
      options_(std::move(options)),
      log_(options_.logger ? options_.logger : spdlog::default_logger()),
      record_(options_.run_dir),
      op_lock_(io) {
  asio::co_spawn(io_, ReplenishGuard(nullptr), asio::detached);
}

FsFreezeService::~FsFreezeService() {
  alive_.reset();
  worker_.join();
  for (auto& item : deferred_) {
    if (item.retired) item.retired->SendDone();
  }
  deferred_.clear();
  if (current_ && current_->set) {
    current_->set->ThawAll();
    if (current_->guard) current_->guard->Dismiss();
    current_->frozen_log.reset();
    // Hooks that ran `freeze` still owe a `thaw`: the next agent runs it (RecoverStaleFreeze).
    (void)KeepHooksOwedThaw(current_->id, current_->hooks_ran);
  }
}

qb::Status FsFreezeService::KeepHooksOwedThaw(const std::string& job_id,
                                              const std::vector<std::string>& hooks_ran) const {
  if (hooks_ran.empty()) return record_.Remove();
  return record_.Write(FreezeRecord{job_id, {}, hooks_ran, hooks_ran});
}

HookOptions FsFreezeService::hook_options() const {
  return HookOptions{options_.hooks_dir, options_.hook_timeout};
}

std::chrono::milliseconds FsFreezeService::GrantLease(std::uint32_t requested_ms) const {
  auto cap = std::min(options_.lease_cap, limits::kMaxLease);
  auto wanted =
      requested_ms == 0 ? options_.default_lease : std::chrono::milliseconds(requested_ms);
  return std::min(wanted, cap);
}

qb::Status FsFreezeService::RecoverStaleFreeze() {
  auto record = record_.Read();
  if (!record.ok()) {
    log_->error("crash record unreadable, removing it: {}", record.status().ToString());
    return record_.Remove();
  }
  if (!record->has_value()) return Status::Ok();
  const FreezeRecord& stale = **record;
  stale_ = proto::StaleFreeze{};
  stale_.job_id = stale.job_id;
  for (const auto& mount : stale.mount_points) {
    ThawOutcome outcome = ThawMountPoint(mount);
    stale_.volumes.push_back(mount);
    if (!outcome.status.ok()) {
      log_->error("stale freeze of job {}: {}", stale.job_id, outcome.status.ToString());
    } else {
      log_->warn("stale freeze of job {}: {} {}", stale.job_id, mount,
                 outcome.was_frozen ? "was still frozen, thawed" : "was already thawed");
    }
  }
  stale_.thawed_at_ns = NowNs();
  // After the thaw, like a normal job: `thaw` for every hook whose `freeze` started (the one
  // the crash interrupted included), in reverse order, snapshot not OK, recovery flag set.
  if (!stale.hooks_started.empty()) {
    auto results = RunThawHooks(hook_options(), stale.hooks_started, stale.job_id,
                                /*snapshot_ok=*/false, /*recovery=*/true);
    for (const auto& r : results) {
      if (r.ok) {
        log_->warn("stale freeze of job {}: thaw hook {} ran ({})", stale.job_id, r.name, r.state);
      } else {
        log_->error("stale freeze of job {}: thaw hook {} failed ({}): {}", stale.job_id, r.name,
                    r.state, r.output.substr(0, 512));
      }
    }
  }
  return record_.Remove();
}

proto::FreezeState FsFreezeService::State() const {
  proto::FreezeState state;
  if (current_) {
    state.frozen = true;
    state.job_id = current_->id;
    state.mode = current_->mode;
    if (current_->set) state.frozen_volumes = current_->set->frozen_mount_points();
    for (const auto& alias : current_->aliases) {
      if (current_->phase == Job::Phase::kFrozen) state.frozen_volumes.push_back(alias);
    }
    state.frozen_since_ns = current_->frozen_since_ns;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(current_->lease_deadline -
                                                                      Clock::now());
    state.lease_left_ms = static_cast<std::uint32_t>(std::max<std::int64_t>(0, left.count()));
  }
  if (!last_job_id_.empty()) {
    const auto& last = finished_.at(last_job_id_);
    state.last_job_id = last.job_id;
    state.last_held_whole_window = last.held_whole_window;
    state.last_not_held_reason = last.not_held_reason;
  }
  return state;
}

proto::HelloReply FsFreezeService::Hello() {
  proto::HelloReply reply;
  reply.agent_version = options_.agent_version;
  reply.os.family = proto::OsFamily::kLinux;
  reply.os.name = OsPrettyName();
  utsname uts{};
  if (uname(&uts) == 0) {
    reply.os.version = uts.release;
    reply.os.host_name = uts.nodename;
  }
  reply.capabilities = {"fsfreeze", "hooks", "inventory", "thaw-guard", "lease"};
  reply.freeze_state = State();
  reply.stale_freeze_cleared = stale_;
  reply.guest_monotonic_ns = NowNs();
  return reply;
}

proto::AgentStatus FsFreezeService::Status() {
  proto::AgentStatus status;
  status.state = State();
  status.uptime_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
  status.guest_monotonic_ns = NowNs();
  return status;
}

asio::awaitable<proto::AgentBody> FsFreezeService::Inventory() {
  auto guard = co_await op_lock_.Lock();
  InventorySources sources{options_.mountinfo_path, options_.sysfs_root};
  const auto collect = [sources] { return CollectInventory(sources); };
  const auto started = Clock::now();
  auto inventory = co_await RunOnWorker(worker_, collect);
  log_->debug(
      "inventory in {} us",
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  if (!inventory.ok()) {
    co_return ErrorBody(proto::ErrorCode::kInternal, inventory.status().ToString());
  }
  co_return std::move(inventory).value();
}

void FsFreezeService::Remember(const proto::Thawed& verdict) {
  if (!finished_.count(verdict.job_id)) finished_order_.push_back(verdict.job_id);
  finished_[verdict.job_id] = verdict;
  last_job_id_ = verdict.job_id;
  while (finished_order_.size() > kFinishedJobsKept) {
    if (finished_order_.front() != last_job_id_) finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

asio::awaitable<proto::AgentBody> FsFreezeService::Freeze(const proto::Freeze& request) {
  const auto received = Clock::now();
  if (current_) {
    co_return ErrorBody(proto::ErrorCode::kBusy, "job " + current_->id + " holds a freeze");
  }
  if (request.job_id.empty() || request.job_id.size() > 64) {
    co_return ErrorBody(proto::ErrorCode::kBadRequest, "job id must be 1..64 bytes");
  }
  if (request.mode != proto::FreezeMode::kFsfreeze) {
    co_return ErrorBody(
        proto::ErrorCode::kUnsupported,
        std::string("mode ") + proto::FreezeModeName(request.mode) + " is not available on Linux");
  }
  if (!request.all_volumes && request.volumes.empty()) {
    co_return ErrorBody(proto::ErrorCode::kBadRequest, "no volumes named");
  }
  auto table = ReadMountTable(options_.mountinfo_path);
  if (!table.ok()) co_return ErrorBody(proto::ErrorCode::kInternal, table.status().ToString());

  // Resolve to one mount point per file system (superblock), in mount order.
  std::vector<MountEntry> targets;
  std::vector<std::string> aliases;
  auto add = [&](const MountEntry& entry) {
    for (const auto& t : targets) {
      if (t.dev_major == entry.dev_major && t.dev_minor == entry.dev_minor) {
        if (t.mount_point != entry.mount_point) aliases.push_back(entry.mount_point);
        return;
      }
    }
    targets.push_back(entry);
  };
  if (request.all_volumes) {
    for (const auto& entry : *table) {
      auto visible = FindMount(*table, entry.mount_point);
      if (entry.dev_major != 0 && visible && visible->position == entry.position) add(entry);
    }
  } else {
    for (const auto& volume : request.volumes) {
      auto entry = FindMount(*table, volume);
      if (!entry) {
        co_return ErrorBody(proto::ErrorCode::kNotFound, volume + " is not a mount point");
      }
      add(*entry);
    }
  }
  std::sort(targets.begin(), targets.end(),
            [](const MountEntry& a, const MountEntry& b) { return a.position < b.position; });

  auto job = std::make_shared<Job>(io_);
  job->id = request.job_id;
  job->mode = request.mode;
  job->received = received;
  job->lease = GrantLease(request.lease_ms);
  job->lease_deadline = received + job->lease;
  for (const auto& t : targets) job->mount_points.push_back(t.mount_point);
  job->aliases = aliases;
  current_ = job;
  stale_ = proto::StaleFreeze{};
  finished_.erase(job->id);
  asio::co_spawn(io_, WatchLease(job), asio::detached);
  auto lock = co_await op_lock_.Lock();

  // Everything up to the last FIFREEZE runs in ONE hand-off to the worker (each hand-off is two
  // thread wakeups), in this order:
  //  1. freeze hooks, before any FIFREEZE: they may write files;
  //  2. open the mount points; the crash record in the run dir (before anything is frozen);
  //  3. arm the standing thaw guard (spawned ahead of time; a fresh one if it is gone);
  //  4. FIFREEZE in reverse mount order.
  // Logs go to memory from here on: the worker does not log.
  RunDeferred();  // a previous job's log replay, if its Thawed reply has not gone out yet
  job->frozen_log = std::make_unique<FrozenModeLog>(log_);
  log_->info("freeze job {}: {} file system(s), lease {} ms", job->id, job->mount_points.size(),
             job->lease.count());
  auto hooks = hook_options();
  struct Prepared {
    FreezeHooksRun hooks;
    std::optional<FsFreezeSet> set;
    std::shared_ptr<ThawGuard> guard;
    enum class Stage { kHooks, kOpen, kRecord, kGuard, kFreeze, kDone } stage = Stage::kHooks;
    qb::Status status;
    std::vector<SkippedMount> skipped;
    std::uint64_t frozen_since_ns = 0;
    std::uint64_t frozen_at_ns = 0;
    std::array<std::uint64_t, 5> marks{};
  };
  using Stage = Prepared::Stage;
  auto spare = std::make_shared<std::optional<ThawGuard>>(std::move(spare_guard_));
  spare_guard_.reset();
  const FreezeRecordFile* record = &record_;
  const auto prepare_and_freeze = [hooks, job_id = job->id, mounts = job->mount_points,
                                   deadline = job->lease_deadline, record, spare] {
    Prepared p;
    p.marks[1] = NowNs();
    // The intent record follows the hooks: a kill during them leaves the names of the hooks
    // whose `freeze` started, and the next agent runs their `thaw`. A failed write here is not
    // fatal (the record before FIFREEZE is, below).
    FreezeRecord intent{job_id, {}, {}, {}};
    const HookProgress progress = [record, &intent](const std::string& name, bool finished) {
      (finished ? intent.hooks_done : intent.hooks_started).push_back(name);
      (void)record->Write(intent);
      if (finished && intent.hooks_done.size() == 1) CrashPoint("agent.hooks.after-first-freeze");
    };
    p.hooks = RunFreezeHooks(hooks, job_id, progress);
    p.marks[2] = NowNs();
    if (!p.hooks.ok) return p;
    p.stage = Stage::kOpen;
    auto set = FsFreezeSet::Open(mounts);
    if (!set.ok()) {
      p.status = set.status();
      return p;
    }
    p.set.emplace(std::move(set).value());
    p.marks[3] = NowNs();
    p.stage = Stage::kRecord;
    p.status = record->Write(FreezeRecord{job_id, mounts, intent.hooks_started, intent.hooks_done});
    p.marks[4] = NowNs();
    if (!p.status.ok()) return p;
    p.stage = Stage::kGuard;
    const auto fds = p.set->fds();
    if (*spare && spare->value().Arm(fds, deadline).ok()) {
      p.guard = std::make_shared<ThawGuard>(std::move(spare->value()));
    } else {
      auto fresh = ThawGuard::Start(fds, deadline);
      if (!fresh.ok()) {
        p.status = fresh.status();
        return p;
      }
      p.guard = std::make_shared<ThawGuard>(std::move(fresh).value());
    }
    spare->reset();
    p.stage = Stage::kFreeze;
    p.frozen_since_ns = NowNs();
    p.status = p.set->FreezeAll(&p.skipped);
    if (!p.status.ok()) return p;
    p.frozen_at_ns = NowNs();
    p.stage = Stage::kDone;
    CrashPoint("agent.after-freeze");
    return p;
  };
  const auto handed_ns = NowNs();
  Prepared prepared = co_await RunOnWorker(worker_, prepare_and_freeze);
  job->prepare_ns = prepared.marks;
  job->prepare_ns[0] = handed_ns;
  job->hooks_ran = prepared.hooks.ran;
  job->freeze_writers = prepared.hooks.results;
  if (prepared.set) job->set.emplace(std::move(*prepared.set));
  if (prepared.guard) job->guard.emplace(std::move(*prepared.guard));
  job->frozen_since_ns = prepared.frozen_since_ns;
  job->skipped = prepared.skipped;
  if (prepared.stage != Stage::kDone) {
    std::string why;
    proto::ErrorCode code = ErrorCodeFor(prepared.status);
    switch (prepared.stage) {
      case Stage::kHooks: {
        const auto& failed = prepared.hooks.results.back();
        why = "freeze hook " + failed.name + " failed (" + failed.state +
              "): " + failed.output.substr(0, 512);
        code = proto::ErrorCode::kHookFailed;
        break;
      }
      case Stage::kRecord:
        why = "cannot write crash record: " + prepared.status.ToString();
        code = proto::ErrorCode::kFreezeFailed;
        break;
      case Stage::kGuard:
        why = "thaw guard: " + prepared.status.ToString();
        code = proto::ErrorCode::kFreezeFailed;
        break;
      default:
        why = prepared.status.ToString();
        break;
    }
    auto error = co_await AbortFreeze(job, code, why);
    co_return error;
  }
  job->frozen_at_ns = prepared.frozen_at_ns;  // when the last FIFREEZE returned
  job->phase = Job::Phase::kFrozen;
  if (job->lease_expired) {
    co_await EndJob(job, EndCause::kLeaseExpired, false);
    co_return ErrorBody(proto::ErrorCode::kFreezeFailed,
                        "lease expired while freezing; everything was thawed");
  }

  proto::Frozen reply;
  reply.job_id = job->id;
  reply.frozen_volumes = job->set->frozen_mount_points();
  for (const auto& alias : job->aliases) reply.frozen_volumes.push_back(alias);
  for (const auto& s : job->skipped) reply.skipped_volumes.push_back({s.mount_point, s.reason});
  reply.writers = job->freeze_writers;
  reply.frozen_at_ns = job->frozen_at_ns;
  reply.lease_granted_ms = static_cast<std::uint32_t>(job->lease.count());
  reply.lease_expires_at_ns = ToNs(job->lease_deadline);
  reply.freeze_duration_ns = job->frozen_at_ns - ToNs(job->received);
  job->frozen_reply_sent = true;
  job->frozen_reply_ns = NowNs();
  log_->info("job {} frozen: {} file system(s), {} skipped", job->id, reply.frozen_volumes.size(),
             reply.skipped_volumes.size());
  co_return reply;
}

asio::awaitable<proto::AgentBody> FsFreezeService::AbortFreeze(const std::shared_ptr<Job>& job,
                                                               proto::ErrorCode code,
                                                               const std::string& message) {
  // FreezeAll already thawed what it froze; nothing is frozen here.
  if (job->guard) {
    ThawGuard* guard = &*job->guard;
    const auto dismiss = [guard] {
      guard->Dismiss();
      return true;
    };
    co_await RunOnWorker(worker_, dismiss);
    job->guard.reset();
  }
  if (!spare_guard_) asio::co_spawn(io_, ReplenishGuard(nullptr), asio::detached);
  job->frozen_log.reset();
  (void)KeepHooksOwedThaw(job->id, job->hooks_ran);
  job->set.reset();
  auto hooks = hook_options();
  auto ran = job->hooks_ran;
  auto job_id = job->id;
  const auto thaw_hooks = [hooks, ran, job_id] { return RunThawHooks(hooks, ran, job_id, false); };
  auto thaw_writers = co_await RunOnWorker(worker_, thaw_hooks);
  if (!ran.empty()) (void)record_.Remove();
  job->phase = Job::Phase::kEnded;
  job->lease_timer.cancel();
  if (current_ == job) current_ = nullptr;

  proto::Thawed verdict;
  verdict.job_id = job->id;
  verdict.held_whole_window = false;
  verdict.not_held_reason = "freeze failed: " + message;
  verdict.thawed_at_ns = NowNs();
  verdict.writers = thaw_writers;  // agent.capnp: Thawed carries the thaw hooks only
  Remember(verdict);
  log_->warn("job {}: freeze failed: {}", job->id, message);
  co_return ErrorBody(code, message);
}

asio::awaitable<void> FsFreezeService::WatchLease(std::shared_ptr<Job> job) {
  job->lease_timer.expires_at(job->lease_deadline);
  auto [ec] = co_await job->lease_timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec || job->phase == Job::Phase::kEnded) co_return;
  job->lease_expired = true;
  job->lease_expired_at_ns = NowNs();
  log_->warn("job {}: lease of {} ms expired before Thaw", job->id, job->lease.count());
  if (job->phase == Job::Phase::kFreezing) co_return;  // Freeze ends the job when FIFREEZE returns
  auto lock = co_await op_lock_.Lock();
  if (job->phase != Job::Phase::kEnded) co_await EndJob(job, EndCause::kLeaseExpired, false);
  RunDeferred();  // no reply goes out for a lease expiry
}

asio::awaitable<proto::Thawed> FsFreezeService::EndJob(const std::shared_ptr<Job>& job,
                                                       EndCause cause, bool snapshot_ok) {
  if (job->phase == Job::Phase::kEnded) co_return finished_.at(job->id);
  FsFreezeSet* set = &*job->set;
  struct ThawResult {
    std::vector<ThawOutcome> outcomes;
    std::uint64_t thawed_at_ns = 0;
    std::uint64_t started_ns = 0;
  };
  const auto thaw_all = [set] {
    ThawResult r;
    r.started_ns = NowNs();
    r.outcomes = set->ThawAll();
    r.thawed_at_ns = NowNs();  // when the last FITHAW returned
    return r;
  };
  ThawResult thawed = co_await RunOnWorker(worker_, thaw_all);
  const auto& outcomes = thawed.outcomes;
  const auto thawed_at_ns = thawed.thawed_at_ns;
  job->thawed_at_ns = thawed_at_ns;
  job->thaw_worker_ns = thawed.started_ns;
  job->phase = Job::Phase::kEnded;
  job->lease_timer.cancel();
  if (current_ == job) current_ = nullptr;
  ending_ = job;
  // The mount points are thawed; hooks owed a `thaw` stay recorded until it has run.
  qb::Status recorded = KeepHooksOwedThaw(job->id, job->hooks_ran);
  if (!recorded.ok()) log_->error("job {}: {}", job->id, recorded.ToString());

  std::shared_ptr<ThawGuard> retired;
  if (job->guard) {
    retired = std::make_shared<ThawGuard>(std::move(*job->guard));
    job->guard.reset();
  }
  // After the reply (AfterReply): the frozen-mode log is replayed, the old guard is dismissed
  // and reaped and the next spare forked on the worker. Until then logs stay in memory.
  deferred_.push_back(Deferred{std::move(job->frozen_log), std::move(retired), job});

  std::vector<proto::WriterResult> thaw_writers;
  if (!job->hooks_ran.empty()) {  // no freeze hook ran: no thaw hook runs, skip the hand-off
    auto hooks = hook_options();
    auto ran = job->hooks_ran;
    auto job_id = job->id;
    const auto thaw_hooks = [hooks, ran, job_id, snapshot_ok] {
      return RunThawHooks(hooks, ran, job_id, snapshot_ok);
    };
    thaw_writers = co_await RunOnWorker(worker_, thaw_hooks);
    qb::Status removed = record_.Remove();
    if (!removed.ok()) log_->error("job {}: {}", job->id, removed.ToString());
  }

  proto::Thawed verdict;
  verdict.job_id = job->id;
  verdict.lease_expired = job->lease_expired;
  verdict.lease_expired_at_ns = job->lease_expired_at_ns;
  verdict.frozen_at_ns = job->frozen_at_ns;
  verdict.thawed_at_ns = thawed_at_ns;
  // agent.capnp: Thawed carries the thaw hooks only; the freeze hooks went out in Frozen
  // (repeating them showed each hook two or three times on the host). A failed freeze hook
  // still makes the window not held.
  verdict.writers = thaw_writers;
  std::vector<std::string> reasons;
  if (!job->frozen_reply_sent) reasons.push_back("freeze never completed");
  if (job->lease_expired) reasons.push_back("lease expired before Thaw");
  if (cause == EndCause::kShutdown) reasons.push_back("agent shut down");
  for (const auto& outcome : outcomes) {
    if (outcome.was_frozen) {
      verdict.thawed_volumes.push_back(outcome.mount_point);
    } else if (!outcome.status.ok()) {
      reasons.push_back(outcome.status.ToString());
    } else if (!job->lease_expired) {
      reasons.push_back(outcome.mount_point + " was thawed by someone else");
    }
  }
  for (const auto& alias : job->aliases) verdict.thawed_volumes.push_back(alias);
  for (const auto* writers : {&job->freeze_writers, &thaw_writers}) {
    for (const auto& writer : *writers) {
      if (!writer.ok) reasons.push_back(writer.phase + " hook " + writer.name + " failed");
    }
  }
  verdict.held_whole_window = reasons.empty();
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    verdict.not_held_reason += (i ? "; " : "") + reasons[i];
  }
  Remember(verdict);
  if (ending_ == job) ending_ = nullptr;
  log_->info("job {} thawed: held whole window: {}{}", job->id, verdict.held_whole_window,
             verdict.held_whole_window ? "" : " (" + verdict.not_held_reason + ")");
  job->thawed_reply_ns = NowNs();
  co_return verdict;
}

asio::awaitable<void> FsFreezeService::ReplenishGuard(std::shared_ptr<ThawGuard> retired) {
  const bool spawn = !spare_guard_ && !replenishing_;
  if (!spawn && !retired) co_return;
  if (spawn) replenishing_ = true;
  std::weak_ptr<int> alive = alive_;
  const auto work = [retired, spawn]() -> Result<ThawGuard> {
    if (retired) retired->Reap();
    if (!spawn) return Error(Code::kCancelled, "a spare guard is there already");
    return ThawGuard::Spawn();
  };
  auto spawned = co_await RunOnWorker(worker_, work);
  if (alive.expired()) co_return;  // the service is gone; the spare exits on end of file
  if (spawn) replenishing_ = false;
  if (!spawn) co_return;
  if (!spawned.ok()) {
    log_->warn("cannot spawn a spare thaw guard (the next freeze forks its own): {}",
               spawned.status().ToString());
    co_return;
  }
  if (!spare_guard_) spare_guard_.emplace(std::move(spawned).value());
}

void FsFreezeService::RunDeferred() {
  auto items = std::move(deferred_);
  deferred_.clear();
  for (auto& item : items) {
    // "done" only now: the guard's exit (a forked process's teardown) would otherwise take the
    // CPU from the Thawed reply. Until then it holds descriptors of thawed file systems, which
    // it would at worst "thaw" again (EINVAL).
    if (item.retired) item.retired->SendDone();
    item.log.reset();  // logs flow to their files again
    if (const auto& j = item.job; j && log_->should_log(spdlog::level::debug)) {
      const auto us = [](std::uint64_t from, std::uint64_t to) -> long long {
        return from && to ? static_cast<long long>(to - from) / 1000 : -1;
      };
      const auto received_ns = ToNs(j->received);
      const auto& m = j->prepare_ns;
      log_->debug(
          "job {} timings (us): freeze request->worker hand-off {} ->worker runs {} ->hooks {} "
          "->open {} ->record {} ->guard armed {} ->FIFREEZE done {} ->Frozen reply {}; thaw "
          "request->worker runs {} ->FITHAW done {} ->Thawed reply {}",
          j->id, us(received_ns, m[0]), us(m[0], m[1]), us(m[1], m[2]), us(m[2], m[3]),
          us(m[3], m[4]), us(m[4], j->frozen_since_ns), us(j->frozen_since_ns, j->frozen_at_ns),
          us(j->frozen_at_ns, j->frozen_reply_ns), us(j->thaw_received_ns, j->thaw_worker_ns),
          us(j->thaw_worker_ns, j->thawed_at_ns), us(j->thawed_at_ns, j->thawed_reply_ns));
    }
    asio::co_spawn(io_, ReplenishGuard(std::move(item.retired)), asio::detached);
  }
}

asio::awaitable<proto::AgentBody> FsFreezeService::Thaw(const proto::Thaw& request) {
  const auto received = Clock::now();
  std::shared_ptr<Job> job;
  if (current_ && current_->id == request.job_id) job = current_;
  if (ending_ && ending_->id == request.job_id) job = ending_;
  if (job) {
    if (job->phase != Job::Phase::kEnded && !job->lease_expired &&
        received >= job->lease_deadline) {
      // The lease ran out before this Thaw arrived, even if the timer has not run yet (the
      // agent was stopped, or the io thread was busy).
      job->lease_expired = true;
      job->lease_expired_at_ns = ToNs(job->lease_deadline);
    }
    if (!job->thaw_received_ns) job->thaw_received_ns = ToNs(received);
    auto lock = co_await op_lock_.Lock();
    if (job->phase != Job::Phase::kEnded) {
      proto::Thawed verdict = co_await EndJob(job, EndCause::kThaw, request.snapshot_ok);
      co_return verdict;
    }
  }
  auto it = finished_.find(request.job_id);
  if (it == finished_.end()) {
    co_return ErrorBody(proto::ErrorCode::kUnknownJob, "no job " + request.job_id);
  }
  proto::Thawed verdict = it->second;
  verdict.already_thawed = true;
  co_return verdict;
}

asio::awaitable<void> FsFreezeService::Shutdown() {
  if (!current_) co_return;
  auto job = current_;
  auto lock = co_await op_lock_.Lock();
  if (job->phase != Job::Phase::kEnded) co_await EndJob(job, EndCause::kShutdown, false);
  RunDeferred();
}

}  // namespace qb::agent
