#include "guest-agent/windows/vss_agent_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "guest-agent/worker.h"

namespace qb::agent::win {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kFinishedJobsKept = 16;
constexpr std::size_t kMaxJobIdBytes = 64;

proto::ErrorReply ErrorFor(const Status& s) {
  proto::ErrorCode code = proto::ErrorCode::kFreezeFailed;
  switch (s.code()) {
    case Code::kUnsupported:
      code = proto::ErrorCode::kUnsupported;
      break;
    case Code::kBusy:
      code = proto::ErrorCode::kBusy;
      break;
    case Code::kNotFound:
      code = proto::ErrorCode::kNotFound;
      break;
    case Code::kInvalidArgument:
      code = proto::ErrorCode::kBadRequest;
      break;
    case Code::kInternal:
      code = proto::ErrorCode::kInternal;
      break;
    default:
      break;
  }
  return proto::ErrorReply{code, s.ToString()};
}

}  // namespace

std::uint64_t MonotonicNs(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

struct VssAgentService::Job {
  std::string id;
  proto::FreezeMode mode = proto::FreezeMode::kVssCopy;
  Clock::time_point received_at;
  Clock::time_point deadline;
  std::chrono::milliseconds lease{0};
  bool freezing = true;  // the Freeze coroutine still owns the job
  std::uint64_t frozen_at_ns = 0;
  std::vector<std::string> volumes;
  // Set by the watchdog thread when the lease ran out.
  std::mutex mu;
  bool lease_expired = false;
  Clock::time_point expired_at;
  std::optional<ThawResult> expiry_result;
};

VssAgentService::VssAgentService(asio::any_io_executor io, VssRequester& requester,
                                 VolumeInventory& inventory, VssAgentServiceOptions options)
    : io_(std::move(io)),
      requester_(requester),
      inventory_(inventory),
      options_(std::move(options)),
      log_(options_.logger ? options_.logger : spdlog::default_logger()) {
  options_.lease_cap = std::min(options_.lease_cap, kDefaultLease);
  options_.default_lease = std::min(options_.default_lease, options_.lease_cap);
}

VssAgentService::~VssAgentService() {
  Shutdown();
  worker_.join();
}

void VssAgentService::Shutdown() {
  if (!current_) return;
  auto job = current_;
  if (lease_.End()) {
    ThawResult result = requester_.Thaw(false);
    proto::Thawed verdict = Verdict(*job, result, false);
    verdict.held_whole_window = false;
    verdict.not_held_reason = "agent stopped";
    FinishJob(job, std::move(verdict));
  } else {
    OnLeaseExpired(job);
  }
}

std::chrono::milliseconds VssAgentService::GrantLease(std::uint32_t requested_ms) const {
  if (requested_ms == 0) return options_.default_lease;
  return std::min(std::chrono::milliseconds(requested_ms), options_.lease_cap);
}

proto::FreezeState VssAgentService::State() const {
  proto::FreezeState s;
  s.last_job_id = last_job_id_;
  if (auto it = finished_.find(last_job_id_); it != finished_.end()) {
    s.last_held_whole_window = it->second.held_whole_window;
    s.last_not_held_reason = it->second.not_held_reason;
  }
  if (current_) {
    s.frozen = true;
    s.job_id = current_->id;
    s.frozen_volumes = current_->volumes;
    s.frozen_since_ns = current_->frozen_at_ns;
    s.mode = current_->mode;
    const auto left = current_->deadline - Clock::now();
    s.lease_left_ms = left.count() > 0
                          ? static_cast<std::uint32_t>(
                                std::chrono::duration_cast<std::chrono::milliseconds>(left).count())
                          : 0;
  }
  return s;
}

proto::HelloReply VssAgentService::Hello() {
  proto::HelloReply r;
  r.agent_version = options_.agent_version;
  r.os = options_.os;
  r.os.family = proto::OsFamily::kWindows;
  r.capabilities = {"vss", "inventory", "lease"};
  r.freeze_state = State();
  r.guest_monotonic_ns = MonotonicNs();
  return r;
}

proto::AgentStatus VssAgentService::Status() {
  proto::AgentStatus s;
  s.state = State();
  s.uptime_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
  s.guest_monotonic_ns = MonotonicNs();
  return s;
}

asio::awaitable<proto::AgentBody> VssAgentService::Inventory() {
  auto inventory = co_await RunOnWorker(worker_, [this] { return inventory_.Collect(); });
  if (!inventory.ok()) co_return ErrorFor(inventory.status());
  co_return std::move(inventory).value();
}

proto::Thawed VssAgentService::Verdict(const Job& job, const ThawResult& result,
                                       bool already_thawed) const {
  proto::Thawed t;
  t.job_id = job.id;
  t.held_whole_window = result.held_whole_window;
  t.not_held_reason = result.not_held_reason;
  t.frozen_at_ns = job.frozen_at_ns;
  t.thawed_at_ns = MonotonicNs();
  t.writers = result.writers;
  t.backup_components_document = result.backup_document;
  t.thawed_volumes = result.thawed_volumes;
  t.already_thawed = already_thawed;
  return t;
}

void VssAgentService::FinishJob(const std::shared_ptr<Job>& job, proto::Thawed verdict) {
  if (current_ == job) {
    current_.reset();
    frozen_log_.reset();  // replays the lines logged while frozen
  }
  log_->info("job {} ended: held whole window {}{}", job->id, verdict.held_whole_window,
             verdict.not_held_reason.empty() ? "" : " (" + verdict.not_held_reason + ")");
  last_job_id_ = job->id;
  if (!finished_.count(job->id)) finished_order_.push_back(job->id);
  finished_[job->id] = std::move(verdict);
  while (finished_order_.size() > kFinishedJobsKept) {
    finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

void VssAgentService::OnLeaseExpired(const std::shared_ptr<Job>& job) {
  // Runs on the io thread after the watchdog thawed; a Freeze still running ends the job itself.
  if (job->freezing || current_ != job) return;
  ThawResult result;
  Clock::time_point expired_at;
  {
    std::lock_guard lock(job->mu);
    result = job->expiry_result.value_or(ThawResult{});
    expired_at = job->expired_at;
  }
  proto::Thawed verdict = Verdict(*job, result, true);
  verdict.held_whole_window = false;
  verdict.lease_expired = true;
  verdict.lease_expired_at_ns = MonotonicNs(expired_at);
  verdict.not_held_reason = "lease expired before Thaw";
  FinishJob(job, std::move(verdict));
}

asio::awaitable<proto::AgentBody> VssAgentService::Freeze(const proto::Freeze& borrowed) {
  const proto::Freeze request = borrowed;
  const auto received_at = Clock::now();
  if (current_) co_return proto::ErrorReply{proto::ErrorCode::kBusy, "a freeze is in progress"};
  if (request.job_id.empty() || request.job_id.size() > kMaxJobIdBytes) {
    co_return proto::ErrorReply{proto::ErrorCode::kBadRequest, "job id must be 1-64 bytes"};
  }
  if (!request.all_volumes && request.volumes.empty()) {
    co_return proto::ErrorReply{proto::ErrorCode::kBadRequest, "no volume to freeze"};
  }
  auto job = std::make_shared<Job>();
  job->id = request.job_id;
  job->mode = request.mode == proto::FreezeMode::kVssFull ? proto::FreezeMode::kVssFull
                                                          : proto::FreezeMode::kVssCopy;
  job->received_at = received_at;
  job->lease = GrantLease(request.lease_ms);
  job->deadline = received_at + job->lease;
  current_ = job;
  frozen_log_.emplace(log_);
  // The watchdog thaws on its own thread, then tells the io thread.
  lease_.Arm(job->deadline, [this, job] {
    ThawResult result = requester_.Thaw(false);
    {
      std::lock_guard lock(job->mu);
      job->lease_expired = true;
      job->expired_at = Clock::now();
      job->expiry_result = std::move(result);
    }
    asio::post(io_, [this, job] { OnLeaseExpired(job); });
  });

  auto fail = [&](proto::ErrorReply error) -> proto::AgentBody {
    // A failed Freeze holds nothing (the requester aborted); only the lease is left to end.
    job->freezing = false;
    lease_.End();
    bool expired = false;
    {
      std::lock_guard lock(job->mu);
      expired = job->lease_expired;
    }
    if (expired) error.message += " (lease expired while freezing)";
    current_.reset();
    frozen_log_.reset();
    log_->warn("freeze {} failed: {}", job->id, error.message);
    return error;
  };

  auto inventory = co_await RunOnWorker(worker_, [this] { return inventory_.Collect(); });
  if (!inventory.ok()) co_return fail(ErrorFor(inventory.status()));
  FreezeSpec spec;
  spec.job_id = job->id;
  spec.type = job->mode == proto::FreezeMode::kVssFull ? BackupType::kFull : BackupType::kCopy;
  spec.deadline = job->deadline;
  for (const auto& v : inventory->volumes) {
    const bool wanted = request.all_volumes
                            ? v.freezable
                            : std::find(request.volumes.begin(), request.volumes.end(), v.name) !=
                                  request.volumes.end();
    if (wanted) spec.volumes.push_back({v.name, v.mount_points});
  }
  if (!request.all_volumes) {
    for (const auto& name : request.volumes) {
      const bool known = std::any_of(spec.volumes.begin(), spec.volumes.end(),
                                     [&](const VolumeToFreeze& v) { return v.name == name; });
      if (!known) {
        co_return fail(proto::ErrorReply{proto::ErrorCode::kNotFound, "no volume " + name});
      }
    }
  }
  if (spec.volumes.empty()) {
    co_return fail(proto::ErrorReply{proto::ErrorCode::kNotFound, "no freezable volume"});
  }

  // Captures by reference only: g++ 12 destroys a temporary with a non-trivial destructor
  // (a lambda holding a FreezeSpec copy) twice inside co_await. `spec` lives in this frame.
  const FreezeSpec& spec_ref = spec;
  auto frozen =
      co_await RunOnWorker(worker_, [this, &spec_ref] { return requester_.Freeze(spec_ref); });
  if (!frozen.ok()) co_return fail(ErrorFor(frozen.status()));
  job->freezing = false;
  const auto frozen_at = Clock::now();
  job->frozen_at_ns = MonotonicNs(frozen_at);
  job->volumes = frozen->frozen_volumes;
  bool expired = false;
  {
    std::lock_guard lock(job->mu);
    expired = job->lease_expired;
  }
  if (expired) {
    // The watchdog fired while the hold was being set up: thaw again (now that the freeze is
    // held) and end the job; the host learns it from the error and from a later Thaw.
    ThawResult late = co_await RunOnWorker(worker_, [this] { return requester_.Thaw(false); });
    {
      std::lock_guard lock(job->mu);
      if (late.was_frozen) job->expiry_result = std::move(late);
    }
    OnLeaseExpired(job);
    co_return proto::ErrorReply{proto::ErrorCode::kFreezeFailed, "lease expired while freezing"};
  }
  proto::Frozen reply;
  reply.job_id = job->id;
  reply.frozen_volumes = frozen->frozen_volumes;
  reply.writers = frozen->writers;
  reply.frozen_at_ns = job->frozen_at_ns;
  reply.lease_granted_ms = static_cast<std::uint32_t>(job->lease.count());
  reply.lease_expires_at_ns = MonotonicNs(job->deadline);
  reply.freeze_duration_ns = MonotonicNs(frozen_at) - MonotonicNs(received_at);
  co_return reply;
}

asio::awaitable<proto::AgentBody> VssAgentService::Thaw(const proto::Thaw& borrowed) {
  const proto::Thaw request = borrowed;
  if (!current_ || current_->id != request.job_id) {
    if (auto it = finished_.find(request.job_id); it != finished_.end()) {
      proto::Thawed again = it->second;
      again.already_thawed = true;
      co_return again;
    }
    co_return proto::ErrorReply{proto::ErrorCode::kUnknownJob, "no job " + request.job_id};
  }
  auto job = current_;
  // A Thaw overtaking its Freeze waits for it: the worker runs one requester call at a time.
  if (!lease_.End()) {
    // The watchdog already thawed (or is thawing: End() waited for it to finish).
    co_await RunOnWorker(worker_, [] { return 0; });
    if (current_ == job && !job->freezing) OnLeaseExpired(job);
    if (auto it = finished_.find(job->id); it != finished_.end()) {
      proto::Thawed late = it->second;
      late.already_thawed = true;
      co_return late;
    }
    co_return proto::ErrorReply{proto::ErrorCode::kFreezeFailed, "lease expired while freezing"};
  }
  const bool snapshot_ok = request.snapshot_ok;
  ThawResult result =
      co_await RunOnWorker(worker_, [this, snapshot_ok] { return requester_.Thaw(snapshot_ok); });
  if (current_ != job) {
    // The Freeze failed meanwhile and ended the job.
    co_return proto::ErrorReply{proto::ErrorCode::kFreezeFailed, "the freeze did not complete"};
  }
  proto::Thawed verdict = Verdict(*job, result, false);
  if (!result.was_frozen) {
    verdict.held_whole_window = false;
    verdict.not_held_reason = "nothing was frozen";
  }
  FinishJob(job, verdict);
  co_return verdict;
}

}  // namespace qb::agent::win
