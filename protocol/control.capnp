# quiesce-bridge control protocol: quiescectl (and orchestration hooks) <-> quiesced.
#
# Carried over the daemon's unix control socket in the same frames as the agent protocol
# (protocol/frame.h). One ControlRequest, one ControlReply with the same request id.
# Same compatibility rules as agent.capnp: ordinals never reused, additions at the end.

@0xb3293829392cbea1;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("qb::wire::control");

const protocolMajor :UInt16 = 1;
const protocolMinor :UInt16 = 1;
# 1.1: ControlRequest.page, ControlReply.more / nextOffset, JobReport.writersTruncated /
# notCoveredTruncated / writerDetails. A 1.0 peer ignores them: a 1.0 client gets the first
# page only; a 1.0 daemon ignores `page` and answers as before.

struct ControlRequest {
  requestId @0 :UInt64;        # chosen by the client; echoed in the reply
  protocolMajor @1 :UInt16;    # the client's control protocol major version
  body :union {
    listGuests @2 :Void;              # quiescectl guests
    guestStatus @3 :Text;             # quiescectl status VM
    snapshot @4 :SnapshotRequest;     # quiescectl snapshot VM... [--group G]
    listSnapshots @5 :Text;           # quiescectl snapshots [VM] ("" = all)
    deleteSnapshot @6 :Text;          # quiescectl delete SNAP (snapshot id)
    expose @7 :ExposeRequest;         # quiescectl expose SNAP --as NAME
    rollback @8 :RollbackRequest;     # quiescectl rollback VM SNAP
    prune @9 :Text;                   # quiescectl prune [VM] ("" = all)
    listJobs @10 :Void;               # quiescectl jobs
    thaw @11 :Text;                   # quiescectl thaw VM (emergency thaw)
  }
  page @12 :Page;
  # Since 1.1. For listJobs and listSnapshots only: which part of the list to send (unset =
  # from the start, at most the daemon's default page). Other verbs ignore it.
}

struct Page {
  limit @0 :UInt32;     # at most this many entries (0 = the daemon's default; it may cap it)
  offset @1 :UInt32;    # skip this many entries first (ControlReply.nextOffset of the last page)
}

struct SnapshotRequest {
  vms @0 :List(Text);          # VM names; more than one makes a group job
  group @1 :Text;              # a named group from the config ("" = none)
  vssMode @2 :VssMode;         # VSS backup type for Windows guests
  allowPartial @3 :Bool;       # accept volumes that span snapshotted and other disks
  leaseMs @4 :UInt32;          # requested lease (0 = derived from the named limits)
}

enum VssMode {
  copy @0;   # VSS_BT_COPY: no log truncation (default)
  full @1;   # VSS_BT_FULL: writers truncate logs after success
}

struct ExposeRequest {
  snapshotId @0 :Text;   # the snapshot to clone
  asName @1 :Text;       # the new volume / file name
}

struct RollbackRequest {
  vm @0 :Text;           # the VM whose LUNs are reverted
  snapshotId @1 :Text;   # the snapshot to revert to
}

struct ControlReply {
  requestId @0 :UInt64;        # echoes ControlRequest.requestId
  body :union {
    error @1 :ControlError;             # the request failed
    guests @2 :List(GuestInfo);         # listGuests
    guestStatus @3 :GuestInfo;          # guestStatus
    job @4 :JobReport;                  # snapshot
    snapshots @5 :List(SnapshotInfo);   # listSnapshots, prune (removed ones)
    done @6 :Text;                      # delete / expose / rollback / thaw: what was done
    jobs @7 :List(JobReport);           # listJobs
  }
  more @8 :Bool;
  # Since 1.1. listJobs / listSnapshots: the list goes on after this reply (the page limit or
  # the daemon's reply byte budget ended it); ask again with page.offset = nextOffset.
  nextOffset @9 :UInt32;
  # Since 1.1. With `more`: the offset of the first entry not sent. 0 when `more` is false.
}

struct ControlError {
  code @0 :UInt16;       # a qb::Code value (common/status.h)
  message @1 :Text;      # human-readable detail
}

struct GuestInfo {
  name @0 :Text;               # VM name
  source @1 :Text;             # "config" or the libvirt URI it was discovered through
  endpoint @2 :Text;           # agent endpoint ("unix:/path", "vsock:CID:PORT")
  linkState @3 :Text;          # "connected", "connecting", "down"
  agentVersion @4 :Text;       # from HelloReply
  osName @5 :Text;             # from HelloReply
  frozen @6 :Bool;             # the agent's own freeze state
  frozenJobId @7 :Text;        # the job it is frozen for
  leaseLeftMs @8 :UInt32;      # the agent's lease left
  luns @9 :List(Text);         # "backend:volume" of each LUN the host snapshots
  busyJobId @10 :Text;         # the daemon job that owns this VM now ("" = idle)
  lastError @11 :Text;         # last link error
}

struct PhaseTiming {
  phase @0 :Text;              # plan, prepare, freeze, snapshot, thaw, verify, record
  durationUs @1 :UInt64;       # how long it took
}

struct JobReport {
  jobId @0 :Text;              # the job key (snapshot names derive from it)
  vms @1 :List(Text);          # the VMs in the job
  state @2 :Text;              # running, done, failed, reconciled
  consistency @3 :Text;        # application-consistent, crash-consistent, none
  error @4 :Text;              # why it failed or is not application-consistent
  errorCode @5 :UInt16;        # a qb::Code value (0 = ok)
  phases @6 :List(PhaseTiming);
  freezeWindowUs @7 :UInt64;   # guest frozen -> thaw sent (host view)
  snapshots @8 :List(SnapshotInfo);
  notCovered @9 :List(Text);   # guest volumes not frozen because they are on other disks
  writers @10 :List(Text);     # "vm: name [phase]: state" of each hook / writer (guest text)
  startedAt @11 :Text;         # ISO 8601 UTC
  writersTruncated @12 :UInt32;
  # Since 1.1. Writer results the guests reported beyond the daemon's per-job bound (count or
  # bytes) and not kept: neither in `writers` / `writerDetails` nor in the catalog.
  notCoveredTruncated @13 :UInt32;
  # Since 1.1. Not-covered volumes beyond the daemon's per-job bound, not listed.
  writerDetails @14 :List(WriterInfo);
  # Since 1.1. The same results as `writers`, typed; one entry per (vm, name, phase).
}

struct WriterInfo {
  vm @0 :Text;                 # the VM whose agent reported it
  name @1 :Text;               # hook file name or VSS writer name (guest text)
  phase @2 :WriterPhase;       # the step it reports on
  ok @3 :Bool;                 # the step succeeded
  state @4 :Text;              # "exit 0", "timeout", a VSS writer state (guest text)
}

enum WriterPhase {
  unknown @0;   # the agent named no phase (or one this daemon does not know)
  freeze @1;    # a freeze hook / the writers' state at freeze
  thaw @2;      # a thaw hook / the writers' state after thaw
}

struct SnapshotInfo {
  snapshotId @0 :Text;         # catalog id
  vm @1 :Text;                 # the VM
  jobId @2 :Text;              # the job that made it
  backend @3 :Text;            # reflink, rbd, purity, exec
  lun @4 :Text;                # the LUN (backend volume)
  arrayName @5 :Text;          # the snapshot's name on the array
  consistency @6 :Text;        # application-consistent or crash-consistent
  createdAt @7 :Text;          # ISO 8601 UTC
}
