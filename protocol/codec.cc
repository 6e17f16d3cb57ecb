#include "protocol/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <string>

#include "common/guest_text.h"
#include "protocol/agent.capnp.h"
#include "protocol/control.capnp.h"

namespace qb::proto {
namespace {

namespace wa = ::qb::wire::agent;
namespace wc = ::qb::wire::control;

// Raised inside the decoder when a limit is exceeded; never leaves this file.
struct LimitExceeded {
  std::string what;
};

// ---------------------------------------------------------------------------------------------
// Shared helpers

std::vector<std::uint8_t> ToBytes(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
}

void SetTexts(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& values) {
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, values[i]);
}

class Reader {
 public:
  explicit Reader(const CodecLimits& limits) : limits_(limits) {}

  std::string Text(capnp::Text::Reader text, std::size_t max, const char* field) const {
    if (text.size() > max) {
      throw LimitExceeded{std::string(field) + " is " + std::to_string(text.size()) +
                          " bytes (limit " + std::to_string(max) + ")"};
    }
    // Invalid UTF-8 is repaired, never rejected (common/guest_text.h says why).
    return ValidUtf8(std::string_view(text.cStr(), text.size()));
  }
  std::string Text(capnp::Text::Reader text, const char* field) const {
    return Text(text, limits_.max_text, field);
  }
  std::string JobId(capnp::Text::Reader text) const {
    return Text(text, limits_.max_job_id, "jobId");
  }
  template <typename List>
  void CheckList(const List& list, const char* field) const {
    if (list.size() > limits_.max_list) {
      throw LimitExceeded{std::string(field) + " has " + std::to_string(list.size()) +
                          " elements (limit " + std::to_string(limits_.max_list) + ")"};
    }
  }
  std::vector<std::string> Texts(capnp::List<capnp::Text>::Reader list, const char* field) const {
    CheckList(list, field);
    std::vector<std::string> out;
    out.reserve(list.size());
    for (auto t : list) out.push_back(Text(t, field));
    return out;
  }
  const CodecLimits& limits() const { return limits_; }

 private:
  const CodecLimits& limits_;
};

// Runs `decode` on a message read from `payload`, turning every failure into a Status.
template <typename T, typename Root, typename Fn>
Result<T> DecodeWith(std::span<const std::uint8_t> payload, const CodecLimits& limits, Fn decode) {
  if (payload.empty()) return Error(Code::kProtocolError, "empty message");
  if (payload.size() > limits.max_payload) {
    return Error(Code::kProtocolError,
                 "message of " + std::to_string(payload.size()) + " bytes is over the limit");
  }
  if (payload.size() % sizeof(capnp::word) != 0) {
    return Error(Code::kProtocolError, "message size is not a multiple of 8");
  }
  // Copy into word-aligned storage: frame payloads carry no alignment guarantee.
  auto words = kj::heapArray<capnp::word>(payload.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), payload.data(), payload.size());
  capnp::ReaderOptions options;
  // Generous for any honest message (each word read once or twice), small for amplification.
  options.traversalLimitInWords = words.size() * 4 + 64;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader message(words.asPtr(), options);
    if (message.getSegment(0).size() == 0 && words.size() == 0) {
      return Error(Code::kProtocolError, "empty message");
    }
    Reader reader(limits);
    return decode(message.getRoot<Root>(), reader);
  } catch (const LimitExceeded& e) {
    return Error(Code::kProtocolError, e.what);
  } catch (const kj::Exception& e) {
    return Error(Code::kProtocolError,
                 std::string("malformed message: ") + e.getDescription().cStr());
  }
}

// ---------------------------------------------------------------------------------------------
// Agent protocol: encode

wa::OsFamily ToWire(OsFamily v) { return static_cast<wa::OsFamily>(v); }
wa::FreezeMode ToWire(FreezeMode v) { return static_cast<wa::FreezeMode>(v); }
wa::WriterKind ToWire(WriterKind v) { return static_cast<wa::WriterKind>(v); }
wa::ErrorCode ToWire(ErrorCode v) { return static_cast<wa::ErrorCode>(v); }

void Put(wa::FreezeState::Builder b, const FreezeState& v) {
  b.setFrozen(v.frozen);
  b.setJobId(v.job_id);
  SetTexts(b.initFrozenVolumes(static_cast<unsigned>(v.frozen_volumes.size())), v.frozen_volumes);
  b.setFrozenSinceNs(v.frozen_since_ns);
  b.setLeaseLeftMs(v.lease_left_ms);
  b.setMode(ToWire(v.mode));
  b.setLastJobId(v.last_job_id);
  b.setLastHeldWholeWindow(v.last_held_whole_window);
  b.setLastNotHeldReason(v.last_not_held_reason);
}

void Put(capnp::List<wa::WriterResult>::Builder list, const std::vector<WriterResult>& values) {
  for (unsigned i = 0; i < values.size(); ++i) {
    auto b = list[i];
    const auto& v = values[i];
    b.setName(v.name);
    b.setKind(ToWire(v.kind));
    b.setOk(v.ok);
    b.setState(v.state);
    b.setOutput(v.output);
    b.setDurationMs(v.duration_ms);
    b.setPhase(v.phase);
  }
}

struct AgentBodyEncoder {
  wa::Envelope::Body::Builder b;

  void operator()(const Hello& v) {
    auto h = b.initHello();
    h.setProtocolMajor(v.protocol_major);
    h.setProtocolMinor(v.protocol_minor);
    h.setDaemonVersion(v.daemon_version);
    h.setHostName(v.host_name);
  }
  void operator()(const HelloReply& v) {
    auto h = b.initHelloReply();
    h.setProtocolMajor(v.protocol_major);
    h.setProtocolMinor(v.protocol_minor);
    h.setAgentVersion(v.agent_version);
    auto os = h.initOs();
    os.setFamily(ToWire(v.os.family));
    os.setName(v.os.name);
    os.setVersion(v.os.version);
    os.setHostName(v.os.host_name);
    SetTexts(h.initCapabilities(static_cast<unsigned>(v.capabilities.size())), v.capabilities);
    Put(h.initFreezeState(), v.freeze_state);
    auto s = h.initStaleFreezeCleared();
    s.setJobId(v.stale_freeze_cleared.job_id);
    SetTexts(s.initVolumes(static_cast<unsigned>(v.stale_freeze_cleared.volumes.size())),
             v.stale_freeze_cleared.volumes);
    s.setThawedAtNs(v.stale_freeze_cleared.thawed_at_ns);
    h.setGuestMonotonicNs(v.guest_monotonic_ns);
  }
  void operator()(const InventoryRequest&) { b.setInventoryRequest(); }
  void operator()(const Inventory& v) {
    auto inv = b.initInventory();
    auto vols = inv.initVolumes(static_cast<unsigned>(v.volumes.size()));
    for (unsigned i = 0; i < v.volumes.size(); ++i) {
      const auto& x = v.volumes[i];
      auto o = vols[i];
      o.setName(x.name);
      o.setDevice(x.device);
      o.setFsType(x.fs_type);
      o.setFreezable(x.freezable);
      SetTexts(o.initDiskNames(static_cast<unsigned>(x.disk_names.size())), x.disk_names);
      o.setSizeBytes(x.size_bytes);
      SetTexts(o.initMountPoints(static_cast<unsigned>(x.mount_points.size())), x.mount_points);
    }
    auto disks = inv.initDisks(static_cast<unsigned>(v.disks.size()));
    for (unsigned i = 0; i < v.disks.size(); ++i) {
      const auto& x = v.disks[i];
      auto o = disks[i];
      o.setName(x.name);
      o.setWwn(x.wwn);
      o.setSerial(x.serial);
      o.setVendor(x.vendor);
      o.setModel(x.model);
      o.setBus(x.bus);
      o.setSizeBytes(x.size_bytes);
    }
  }
  void operator()(const Freeze& v) {
    auto f = b.initFreeze();
    f.setJobId(v.job_id);
    SetTexts(f.initVolumes(static_cast<unsigned>(v.volumes.size())), v.volumes);
    f.setAllVolumes(v.all_volumes);
    f.setMode(ToWire(v.mode));
    f.setLeaseMs(v.lease_ms);
  }
  void operator()(const Frozen& v) {
    auto f = b.initFrozen();
    f.setJobId(v.job_id);
    SetTexts(f.initFrozenVolumes(static_cast<unsigned>(v.frozen_volumes.size())), v.frozen_volumes);
    auto sk = f.initSkippedVolumes(static_cast<unsigned>(v.skipped_volumes.size()));
    for (unsigned i = 0; i < v.skipped_volumes.size(); ++i) {
      sk[i].setVolume(v.skipped_volumes[i].volume);
      sk[i].setReason(v.skipped_volumes[i].reason);
    }
    Put(f.initWriters(static_cast<unsigned>(v.writers.size())), v.writers);
    f.setFrozenAtNs(v.frozen_at_ns);
    f.setLeaseGrantedMs(v.lease_granted_ms);
    f.setLeaseExpiresAtNs(v.lease_expires_at_ns);
    f.setFreezeDurationNs(v.freeze_duration_ns);
  }
  void operator()(const Thaw& v) {
    auto t = b.initThaw();
    t.setJobId(v.job_id);
    t.setSnapshotOk(v.snapshot_ok);
  }
  void operator()(const Thawed& v) {
    auto t = b.initThawed();
    t.setJobId(v.job_id);
    t.setHeldWholeWindow(v.held_whole_window);
    t.setNotHeldReason(v.not_held_reason);
    t.setLeaseExpired(v.lease_expired);
    t.setLeaseExpiredAtNs(v.lease_expired_at_ns);
    t.setFrozenAtNs(v.frozen_at_ns);
    t.setThawedAtNs(v.thawed_at_ns);
    Put(t.initWriters(static_cast<unsigned>(v.writers.size())), v.writers);
    t.setBackupComponentsDocument(v.backup_components_document);
    SetTexts(t.initThawedVolumes(static_cast<unsigned>(v.thawed_volumes.size())), v.thawed_volumes);
    t.setAlreadyThawed(v.already_thawed);
  }
  void operator()(const StatusRequest&) { b.setStatusRequest(); }
  void operator()(const AgentStatus& v) {
    auto s = b.initStatus();
    Put(s.initState(), v.state);
    s.setUptimeMs(v.uptime_ms);
    s.setGuestMonotonicNs(v.guest_monotonic_ns);
  }
  void operator()(const Ping&) { b.setPing(); }
  void operator()(const Pong& v) { b.initPong().setGuestMonotonicNs(v.guest_monotonic_ns); }
  void operator()(const ErrorReply& v) {
    auto e = b.initError();
    e.setCode(ToWire(v.code));
    e.setMessage(v.message);
  }
};

// ---------------------------------------------------------------------------------------------
// Agent protocol: decode

template <typename E>
E EnumFrom(std::uint16_t raw, std::uint16_t max, E fallback) {
  return raw <= max ? static_cast<E>(raw) : fallback;
}

OsFamily FromWire(wa::OsFamily v) {
  return EnumFrom(static_cast<std::uint16_t>(v), 2, OsFamily::kUnknown);
}
// An unknown freeze mode must not silently become fsfreeze: it is refused by the caller.
FreezeMode ModeFromWire(wa::FreezeMode v) {
  auto raw = static_cast<std::uint16_t>(v);
  if (raw > 2) throw LimitExceeded{"unknown freeze mode " + std::to_string(raw)};
  return static_cast<FreezeMode>(raw);
}
WriterKind FromWire(wa::WriterKind v) {
  return EnumFrom(static_cast<std::uint16_t>(v), 1, WriterKind::kHook);
}
ErrorCode FromWire(wa::ErrorCode v) {
  return EnumFrom(static_cast<std::uint16_t>(v), 11, ErrorCode::kUnknown);
}

FreezeState Get(wa::FreezeState::Reader r, const Reader& rd) {
  FreezeState v;
  v.frozen = r.getFrozen();
  v.job_id = rd.JobId(r.getJobId());
  v.frozen_volumes = rd.Texts(r.getFrozenVolumes(), "frozenVolumes");
  v.frozen_since_ns = r.getFrozenSinceNs();
  v.lease_left_ms = r.getLeaseLeftMs();
  v.mode = ModeFromWire(r.getMode());
  v.last_job_id = rd.JobId(r.getLastJobId());
  v.last_held_whole_window = r.getLastHeldWholeWindow();
  v.last_not_held_reason = rd.Text(r.getLastNotHeldReason(), "lastNotHeldReason");
  return v;
}

std::vector<WriterResult> Get(capnp::List<wa::WriterResult>::Reader list, const Reader& rd) {
  rd.CheckList(list, "writers");
  std::vector<WriterResult> out;
  out.reserve(list.size());
  for (auto r : list) {
    WriterResult v;
    v.name = rd.Text(r.getName(), "writer.name");
    v.kind = FromWire(r.getKind());
    v.ok = r.getOk();
    v.state = rd.Text(r.getState(), "writer.state");
    v.output = rd.Text(r.getOutput(), rd.limits().max_output, "writer.output");
    v.duration_ms = r.getDurationMs();
    v.phase = rd.Text(r.getPhase(), "writer.phase");
    out.push_back(std::move(v));
  }
  return out;
}

AgentMessage DecodeEnvelope(wa::Envelope::Reader env, const Reader& rd) {
  AgentMessage m;
  m.request_id = env.getRequestId();
  m.nonce = env.getNonce();
  auto body = env.getBody();
  switch (body.which()) {
    case wa::Envelope::Body::HELLO: {
      auto r = body.getHello();
      Hello v;
      v.protocol_major = r.getProtocolMajor();
      v.protocol_minor = r.getProtocolMinor();
      v.daemon_version = rd.Text(r.getDaemonVersion(), "daemonVersion");
      v.host_name = rd.Text(r.getHostName(), "hostName");
      m.body = std::move(v);
      break;
    }
    case wa::Envelope::Body::HELLO_REPLY: {
      auto r = body.getHelloReply();
      HelloReply v;
      v.protocol_major = r.getProtocolMajor();
      v.protocol_minor = r.getProtocolMinor();
      v.agent_version = rd.Text(r.getAgentVersion(), "agentVersion");
      auto os = r.getOs();
      v.os.family = FromWire(os.getFamily());
      v.os.name = rd.Text(os.getName(), "os.name");
      v.os.version = rd.Text(os.getVersion(), "os.version");
      v.os.host_name = rd.Text(os.getHostName(), "os.hostName");
      v.capabilities = rd.Texts(r.getCapabilities(), "capabilities");
      v.freeze_state = Get(r.getFreezeState(), rd);
      auto s = r.getStaleFreezeCleared();
      v.stale_freeze_cleared.job_id = rd.JobId(s.getJobId());
      v.stale_freeze_cleared.volumes = rd.Texts(s.getVolumes(), "staleFreezeCleared.volumes");
      v.stale_freeze_cleared.thawed_at_ns = s.getThawedAtNs();
      v.guest_monotonic_ns = r.getGuestMonotonicNs();
      m.body = std::move(v);
      break;
    }
    case wa::Envelope::Body::INVENTORY_REQUEST:
      m.body = InventoryRequest{};
      break;
    case wa::Envelope::Body::INVENTORY: {
      auto r = body.getInventory();
      Inventory v;
      auto vols = r.getVolumes();
      rd.CheckList(vols, "volumes");
      for (auto x : vols) {
        Volume o;
        o.name = rd.Text(x.getName(), "volume.name");
        o.device = rd.Text(x.getDevice(), "volume.device");
        o.fs_type = rd.Text(x.getFsType(), "volume.fsType");
        o.freezable = x.getFreezable();
        o.disk_names = rd.Texts(x.getDiskNames(), "volume.diskNames");
        o.size_bytes = x.getSizeBytes();
        o.mount_points = rd.Texts(x.getMountPoints(), "volume.mountPoints");
        v.volumes.push_back(std::move(o));
      }
      auto disks = r.getDisks();
      rd.CheckList(disks, "disks");
      for (auto x : disks) {
        Disk o;
        o.name = rd.Text(x.getName(), "disk.name");
        o.wwn = rd.Text(x.getWwn(), "disk.wwn");
        o.serial = rd.Text(x.getSerial(), "disk.serial");
        o.vendor = rd.Text(x.getVendor(), "disk.vendor");
        o.model = rd.Text(x.getModel(), "disk.model");
        o.bus = rd.Text(x.getBus(), "disk.bus");
        o.size_bytes = x.getSizeBytes();
        v.disks.push_back(std::move(o));
      }
      m.body = std::move(v);
      break;
    }
    case wa::Envelope::Body::FREEZE: {
      auto r = body.getFreeze();
      Freeze v;
      v.job_id = rd.JobId(r.getJobId());
      v.volumes = rd.Texts(r.getVolumes(), "volumes");
      v.all_volumes = r.getAllVolumes();
      v.mode = ModeFromWire(r.getMode());
      v.lease_ms = r.getLeaseMs();
      m.body = std::move(v);
      break;
    }
    case wa::Envelope::Body::FROZEN: {
      auto r = body.getFrozen();
      Frozen v;
      v.job_id = rd.JobId(r.getJobId());
      v.frozen_volumes = rd.Texts(r.getFrozenVolumes(), "frozenVolumes");
      auto sk = r.getSkippedVolumes();
      rd.CheckList(sk, "skippedVolumes");
      for (auto x : sk) {
        v.skipped_volumes.push_back(
            {rd.Text(x.getVolume(), "skipped.volume"), rd.Text(x.getReason(), "skipped.reason")});
      }
      v.writers = Get(r.getWriters(), rd);
      v.frozen_at_ns = r.getFrozenAtNs();
      v.lease_granted_ms = r.getLeaseGrantedMs();
      v.lease_expires_at_ns = r.getLeaseExpiresAtNs();
      v.freeze_duration_ns = r.getFreezeDurationNs();
      m.body = std::move(v);
      break;
    }
    case wa::Envelope::Body::THAW: {
      auto r = body.getThaw();
      m.body = Thaw{rd.JobId(r.getJobId()), r.getSnapshotOk()};
      break;
    }
    case wa::Envelope::Body::THAWED: {
      auto r = body.getThawed();
      Thawed v;
      v.job_id = rd.JobId(r.getJobId());
      v.held_whole_window = r.getHeldWholeWindow();
      v.not_held_reason = rd.Text(r.getNotHeldReason(), "notHeldReason");
      v.lease_expired = r.getLeaseExpired();
      v.lease_expired_at_ns = r.getLeaseExpiredAtNs();
      v.frozen_at_ns = r.getFrozenAtNs();
      v.thawed_at_ns = r.getThawedAtNs();
      v.writers = Get(r.getWriters(), rd);
      v.backup_components_document = rd.Text(r.getBackupComponentsDocument(),
                                             rd.limits().max_document, "backupComponentsDocument");
      v.thawed_volumes = rd.Texts(r.getThawedVolumes(), "thawedVolumes");
      v.already_thawed = r.getAlreadyThawed();
      m.body = std::move(v);
      break;
    }
    case wa::Envelope::Body::STATUS_REQUEST:
      m.body = StatusRequest{};
      break;
    case wa::Envelope::Body::STATUS: {
      auto r = body.getStatus();
      AgentStatus v;
      v.state = Get(r.getState(), rd);
      v.uptime_ms = r.getUptimeMs();
      v.guest_monotonic_ns = r.getGuestMonotonicNs();
      m.body = std::move(v);
      break;
    }
    case wa::Envelope::Body::PING:
      m.body = Ping{};
      break;
    case wa::Envelope::Body::PONG:
      m.body = Pong{body.getPong().getGuestMonotonicNs()};
      break;
    case wa::Envelope::Body::ERROR: {
      auto r = body.getError();
      m.body = ErrorReply{FromWire(r.getCode()), rd.Text(r.getMessage(), "error.message")};
      break;
    }
    default:
      throw LimitExceeded{"unknown message type " + std::to_string(static_cast<int>(body.which()))};
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Control protocol

void Put(capnp::List<wc::SnapshotInfo>::Builder list, const std::vector<SnapshotInfo>& values) {
  for (unsigned i = 0; i < values.size(); ++i) {
    auto o = list[i];
    const auto& v = values[i];
    o.setSnapshotId(v.snapshot_id);
    o.setVm(v.vm);
    o.setJobId(v.job_id);
    o.setBackend(v.backend);
    o.setLun(v.lun);
    o.setArrayName(v.array_name);
    o.setConsistency(v.consistency);
    o.setCreatedAt(v.created_at);
  }
}

void Put(wc::GuestInfo::Builder o, const GuestInfo& v) {
  o.setName(v.name);
  o.setSource(v.source);
  o.setEndpoint(v.endpoint);
  o.setLinkState(v.link_state);
  o.setAgentVersion(v.agent_version);
  o.setOsName(v.os_name);
  o.setFrozen(v.frozen);
  o.setFrozenJobId(v.frozen_job_id);
  o.setLeaseLeftMs(v.lease_left_ms);
  SetTexts(o.initLuns(static_cast<unsigned>(v.luns.size())), v.luns);
  o.setBusyJobId(v.busy_job_id);
  o.setLastError(v.last_error);
}

void Put(wc::JobReport::Builder o, const JobReport& v) {
  o.setJobId(v.job_id);
  SetTexts(o.initVms(static_cast<unsigned>(v.vms.size())), v.vms);
  o.setState(v.state);
  o.setConsistency(v.consistency);
  o.setError(v.error);
  o.setErrorCode(v.error_code);
  auto ph = o.initPhases(static_cast<unsigned>(v.phases.size()));
  for (unsigned i = 0; i < v.phases.size(); ++i) {
    ph[i].setPhase(v.phases[i].phase);
    ph[i].setDurationUs(v.phases[i].duration_us);
  }
  o.setFreezeWindowUs(v.freeze_window_us);
  Put(o.initSnapshots(static_cast<unsigned>(v.snapshots.size())), v.snapshots);
  SetTexts(o.initNotCovered(static_cast<unsigned>(v.not_covered.size())), v.not_covered);
  SetTexts(o.initWriters(static_cast<unsigned>(v.writers.size())), v.writers);
  o.setStartedAt(v.started_at);
  o.setWritersTruncated(v.writers_truncated);
  o.setNotCoveredTruncated(v.not_covered_truncated);
  if (!v.writer_details.empty()) {
    auto wd = o.initWriterDetails(static_cast<unsigned>(v.writer_details.size()));
    for (unsigned i = 0; i < v.writer_details.size(); ++i) {
      const auto& w = v.writer_details[i];
      wd[i].setVm(w.vm);
      wd[i].setName(w.name);
      wd[i].setPhase(static_cast<wc::WriterPhase>(w.phase));
      wd[i].setOk(w.ok);
      wd[i].setState(w.state);
    }
  }
}

std::vector<SnapshotInfo> Get(capnp::List<wc::SnapshotInfo>::Reader list, const Reader& rd) {
  rd.CheckList(list, "snapshots");
  std::vector<SnapshotInfo> out;
  for (auto r : list) {
    SnapshotInfo v;
    v.snapshot_id = rd.Text(r.getSnapshotId(), "snapshotId");
    v.vm = rd.Text(r.getVm(), "vm");
    v.job_id = rd.Text(r.getJobId(), "jobId");
    v.backend = rd.Text(r.getBackend(), "backend");
    v.lun = rd.Text(r.getLun(), "lun");
    v.array_name = rd.Text(r.getArrayName(), "arrayName");
    v.consistency = rd.Text(r.getConsistency(), "consistency");
    v.created_at = rd.Text(r.getCreatedAt(), "createdAt");
    out.push_back(std::move(v));
  }
  return out;
}

GuestInfo Get(wc::GuestInfo::Reader r, const Reader& rd) {
  GuestInfo v;
  v.name = rd.Text(r.getName(), "name");
  v.source = rd.Text(r.getSource(), "source");
  v.endpoint = rd.Text(r.getEndpoint(), "endpoint");
  v.link_state = rd.Text(r.getLinkState(), "linkState");
  v.agent_version = rd.Text(r.getAgentVersion(), "agentVersion");
  v.os_name = rd.Text(r.getOsName(), "osName");
  v.frozen = r.getFrozen();
  v.frozen_job_id = rd.Text(r.getFrozenJobId(), "frozenJobId");
  v.lease_left_ms = r.getLeaseLeftMs();
  v.luns = rd.Texts(r.getLuns(), "luns");
  v.busy_job_id = rd.Text(r.getBusyJobId(), "busyJobId");
  v.last_error = rd.Text(r.getLastError(), "lastError");
  return v;
}

JobReport Get(wc::JobReport::Reader r, const Reader& rd) {
  JobReport v;
  v.job_id = rd.Text(r.getJobId(), "jobId");
  v.vms = rd.Texts(r.getVms(), "vms");
  v.state = rd.Text(r.getState(), "state");
  v.consistency = rd.Text(r.getConsistency(), "consistency");
  v.error = rd.Text(r.getError(), "error");
  v.error_code = r.getErrorCode();
  auto ph = r.getPhases();
  rd.CheckList(ph, "phases");
  for (auto p : ph) v.phases.push_back({rd.Text(p.getPhase(), "phase"), p.getDurationUs()});
  v.freeze_window_us = r.getFreezeWindowUs();
  v.snapshots = Get(r.getSnapshots(), rd);
  v.not_covered = rd.Texts(r.getNotCovered(), "notCovered");
  v.writers = rd.Texts(r.getWriters(), "writers");
  v.started_at = rd.Text(r.getStartedAt(), "startedAt");
  v.writers_truncated = r.getWritersTruncated();
  v.not_covered_truncated = r.getNotCoveredTruncated();
  auto wd = r.getWriterDetails();
  rd.CheckList(wd, "writerDetails");
  for (auto w : wd) {
    auto phase = static_cast<std::uint16_t>(w.getPhase());
    v.writer_details.push_back(
        WriterInfo{rd.Text(w.getVm(), "writer.vm"), rd.Text(w.getName(), "writer.name"),
                   phase <= 2 ? static_cast<WriterPhase>(phase) : WriterPhase::kUnknown, w.getOk(),
                   rd.Text(w.getState(), "writer.state")});
  }
  return v;
}

struct ControlRequestEncoder {
  wc::ControlRequest::Body::Builder b;
  void operator()(const ListGuests&) { b.setListGuests(); }
  void operator()(const GuestStatusRequest& v) { b.setGuestStatus(v.vm); }
  void operator()(const SnapshotRequest& v) {
    auto s = b.initSnapshot();
    SetTexts(s.initVms(static_cast<unsigned>(v.vms.size())), v.vms);
    s.setGroup(v.group);
    s.setVssMode(static_cast<wc::VssMode>(v.vss_mode));
    s.setAllowPartial(v.allow_partial);
    s.setLeaseMs(v.lease_ms);
  }
  void operator()(const ListSnapshots& v) { b.setListSnapshots(v.vm); }
  void operator()(const DeleteSnapshot& v) { b.setDeleteSnapshot(v.snapshot_id); }
  void operator()(const ExposeRequest& v) {
    auto e = b.initExpose();
    e.setSnapshotId(v.snapshot_id);
    e.setAsName(v.as_name);
  }
  void operator()(const RollbackRequest& v) {
    auto e = b.initRollback();
    e.setVm(v.vm);
    e.setSnapshotId(v.snapshot_id);
  }
  void operator()(const PruneRequest& v) { b.setPrune(v.vm); }
  void operator()(const ListJobs&) { b.setListJobs(); }
  void operator()(const ThawRequest& v) { b.setThaw(v.vm); }
};

struct ControlReplyEncoder {
  wc::ControlReply::Body::Builder b;
  void operator()(const ControlError& v) {
    auto e = b.initError();
    e.setCode(v.code);
    e.setMessage(v.message);
  }
  void operator()(const GuestList& v) {
    auto l = b.initGuests(static_cast<unsigned>(v.guests.size()));
    for (unsigned i = 0; i < v.guests.size(); ++i) Put(l[i], v.guests[i]);
  }
  void operator()(const GuestInfo& v) { Put(b.initGuestStatus(), v); }
  void operator()(const JobReport& v) { Put(b.initJob(), v); }
  void operator()(const SnapshotList& v) {
    Put(b.initSnapshots(static_cast<unsigned>(v.snapshots.size())), v.snapshots);
  }
  void operator()(const Done& v) { b.setDone(v.what); }
  void operator()(const JobList& v) {
    auto l = b.initJobs(static_cast<unsigned>(v.jobs.size()));
    for (unsigned i = 0; i < v.jobs.size(); ++i) Put(l[i], v.jobs[i]);
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<std::uint8_t> EncodeAgent(const AgentMessage& message) {
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<wa::Envelope>();
  env.setRequestId(message.request_id);
  env.setNonce(message.nonce);
  std::visit(AgentBodyEncoder{env.initBody()}, message.body);
  return ToBytes(builder);
}

Result<AgentMessage> DecodeAgent(std::span<const std::uint8_t> payload, const CodecLimits& limits) {
  return DecodeWith<AgentMessage, wa::Envelope>(
      payload, limits, [](wa::Envelope::Reader env, const Reader& rd) -> Result<AgentMessage> {
        return DecodeEnvelope(env, rd);
      });
}

std::vector<std::uint8_t> EncodeControlRequest(const ControlRequest& message) {
  capnp::MallocMessageBuilder builder;
  auto req = builder.initRoot<wc::ControlRequest>();
  req.setRequestId(message.request_id);
  req.setProtocolMajor(message.protocol_major);
  std::visit(ControlRequestEncoder{req.initBody()}, message.body);
  if (message.page != Page{}) {
    auto page = req.initPage();
    page.setLimit(message.page.limit);
    page.setOffset(message.page.offset);
  }
  return ToBytes(builder);
}

Result<ControlRequest> DecodeControlRequest(std::span<const std::uint8_t> payload,
                                            const CodecLimits& limits) {
  return DecodeWith<ControlRequest, wc::ControlRequest>(
      payload, limits,
      [](wc::ControlRequest::Reader r, const Reader& rd) -> Result<ControlRequest> {
        ControlRequest m;
        m.request_id = r.getRequestId();
        m.protocol_major = r.getProtocolMajor();
        if (r.hasPage()) m.page = Page{r.getPage().getLimit(), r.getPage().getOffset()};
        auto b = r.getBody();
        switch (b.which()) {
          case wc::ControlRequest::Body::LIST_GUESTS:
            m.body = ListGuests{};
            break;
          case wc::ControlRequest::Body::GUEST_STATUS:
            m.body = GuestStatusRequest{rd.Text(b.getGuestStatus(), "vm")};
            break;
          case wc::ControlRequest::Body::SNAPSHOT: {
            auto s = b.getSnapshot();
            SnapshotRequest v;
            v.vms = rd.Texts(s.getVms(), "vms");
            v.group = rd.Text(s.getGroup(), "group");
            auto mode = static_cast<std::uint16_t>(s.getVssMode());
            if (mode > 1) return Error(Code::kProtocolError, "unknown VSS mode");
            v.vss_mode = static_cast<VssMode>(mode);
            v.allow_partial = s.getAllowPartial();
            v.lease_ms = s.getLeaseMs();
            m.body = std::move(v);
            break;
          }
          case wc::ControlRequest::Body::LIST_SNAPSHOTS:
            m.body = ListSnapshots{rd.Text(b.getListSnapshots(), "vm")};
            break;
          case wc::ControlRequest::Body::DELETE_SNAPSHOT:
            m.body = DeleteSnapshot{rd.Text(b.getDeleteSnapshot(), "snapshotId")};
            break;
          case wc::ControlRequest::Body::EXPOSE: {
            auto e = b.getExpose();
            m.body = ExposeRequest{rd.Text(e.getSnapshotId(), "snapshotId"),
                                   rd.Text(e.getAsName(), "asName")};
            break;
          }
          case wc::ControlRequest::Body::ROLLBACK: {
            auto e = b.getRollback();
            m.body =
                RollbackRequest{rd.Text(e.getVm(), "vm"), rd.Text(e.getSnapshotId(), "snapshotId")};
            break;
          }
          case wc::ControlRequest::Body::PRUNE:
            m.body = PruneRequest{rd.Text(b.getPrune(), "vm")};
            break;
          case wc::ControlRequest::Body::LIST_JOBS:
            m.body = ListJobs{};
            break;
          case wc::ControlRequest::Body::THAW:
            m.body = ThawRequest{rd.Text(b.getThaw(), "vm")};
            break;
          default:
            return Error(Code::kProtocolError, "unknown control request");
        }
        return m;
      });
}

std::vector<std::uint8_t> EncodeControlReply(const ControlReply& message) {
  capnp::MallocMessageBuilder builder;
  auto rep = builder.initRoot<wc::ControlReply>();
  rep.setRequestId(message.request_id);
  std::visit(ControlReplyEncoder{rep.initBody()}, message.body);
  rep.setMore(message.more);
  rep.setNextOffset(message.next_offset);
  return ToBytes(builder);
}

Result<ControlReply> DecodeControlReply(std::span<const std::uint8_t> payload,
                                        const CodecLimits& limits) {
  return DecodeWith<ControlReply, wc::ControlReply>(
      payload, limits, [](wc::ControlReply::Reader r, const Reader& rd) -> Result<ControlReply> {
        ControlReply m;
        m.request_id = r.getRequestId();
        m.more = r.getMore();
        m.next_offset = r.getNextOffset();
        auto b = r.getBody();
        switch (b.which()) {
          case wc::ControlReply::Body::ERROR: {
            auto e = b.getError();
            m.body = ControlError{e.getCode(), rd.Text(e.getMessage(), "message")};
            break;
          }
          case wc::ControlReply::Body::GUESTS: {
            auto l = b.getGuests();
            rd.CheckList(l, "guests");
            GuestList v;
            for (auto g : l) v.guests.push_back(Get(g, rd));
            m.body = std::move(v);
            break;
          }
          case wc::ControlReply::Body::GUEST_STATUS:
            m.body = Get(b.getGuestStatus(), rd);
            break;
          case wc::ControlReply::Body::JOB:
            m.body = Get(b.getJob(), rd);
            break;
          case wc::ControlReply::Body::SNAPSHOTS:
            m.body = SnapshotList{Get(b.getSnapshots(), rd)};
            break;
          case wc::ControlReply::Body::DONE:
            m.body = Done{rd.Text(b.getDone(), "done")};
            break;
          case wc::ControlReply::Body::JOBS: {
            auto l = b.getJobs();
            rd.CheckList(l, "jobs");
            JobList v;
            for (auto j : l) v.jobs.push_back(Get(j, rd));
            m.body = std::move(v);
            break;
          }
          default:
            return Error(Code::kProtocolError, "unknown control reply");
        }
        return m;
      });
}

std::size_t EncodedReplyBytes(const JobReport& entry) {
  return EncodeControlReply(ControlReply{0, JobList{{entry}}}).size();
}

std::size_t EncodedReplyBytes(const SnapshotInfo& entry) {
  return EncodeControlReply(ControlReply{0, SnapshotList{{entry}}}).size();
}

Status CheckProtocolVersion(std::uint16_t peer_major, std::uint16_t peer_minor) {
  if (peer_major != kAgentProtocolMajor) {
    return Error(Code::kVersionMismatch,
                 "peer speaks protocol " + std::to_string(peer_major) + "." +
                     std::to_string(peer_minor) + ", this side speaks " +
                     std::to_string(kAgentProtocolMajor) + "." +
                     std::to_string(kAgentProtocolMinor) + " (major versions must match)");
  }
  return Status::Ok();
}

}  // namespace qb::proto
