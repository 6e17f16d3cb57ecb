# quiesce-bridge agent protocol: quiesced (host daemon) <-> quiesce-agent (in the guest).
#
# Roles: the agent is the server side of every transport (guest end of the virtio-serial
# port; listener on vsock, hv_sock, unix). The daemon connects and speaks first: it sends
# Hello with a fresh session nonce. Every message travels in one Envelope inside one frame
# (protocol/frame.h: magic, version, length, CRC32C). Every request carries a request id;
# the reply echoes it and the session nonce, so a daemon discards replies meant for an old
# session (virtio-serial keeps bytes across daemon restarts).
#
# Compatibility rules: ordinals are never reused or renumbered; new fields are added at the
# end of a struct and new union members at the end of a union. A peer ignores fields it does
# not know. The protocol major version changes only when an old peer would misread a new
# message; minor versions add fields and messages a peer may ignore.
#
# All sizes the guest sends are bounded by the codec (protocol/codec.h): text, lists and the
# whole frame; the host never trusts a count or length from the guest.

@0xe1838b5d80e7765f;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("qb::wire::agent");

# Current protocol version. Major: incompatible changes. Minor: additive changes.
const protocolMajor :UInt16 = 1;
const protocolMinor :UInt16 = 0;

# One message on the wire.
struct Envelope {
  requestId @0 :UInt64;
  # Request: chosen by the sender, unique within the session (the daemon counts from 1).
  # Reply: the id of the request it answers. 0 only on an unsolicited Error.

  nonce @1 :UInt64;
  # The session nonce, chosen at random by the daemon and sent in Hello. Every later request
  # and every reply in that session carries it. A reply with another nonce belongs to an old
  # session and is discarded; an agent drops requests of a session it no longer serves.

  body :union {
    hello @2 :Hello;               # daemon -> agent: open a session
    helloReply @3 :HelloReply;     # agent -> daemon
    inventoryRequest @4 :Void;     # daemon -> agent: describe your volumes and disks
    inventory @5 :Inventory;       # agent -> daemon
    freeze @6 :Freeze;             # daemon -> agent: quiesce and freeze these volumes
    frozen @7 :Frozen;             # agent -> daemon: everything requested is frozen
    thaw @8 :Thaw;                 # daemon -> agent: release the freeze of a job
    thawed @9 :Thawed;             # agent -> daemon: released, with the verdict
    statusRequest @10 :Void;       # daemon -> agent: report the freeze state
    status @11 :Status;            # agent -> daemon
    ping @12 :Void;                # daemon -> agent: liveness
    pong @13 :Pong;                # agent -> daemon
    error @14 :Error;              # agent -> daemon: the request failed (or was refused)
  }
}

# ---------------------------------------------------------------------------------------------
# Session

struct Hello {
  protocolMajor @0 :UInt16;    # the daemon's protocol major version
  protocolMinor @1 :UInt16;    # the daemon's protocol minor version
  daemonVersion @2 :Text;      # quiesced release string, for logs only
  hostName @3 :Text;           # host name, for the agent's logs only
}

struct HelloReply {
  protocolMajor @0 :UInt16;          # the agent's protocol major version
  protocolMinor @1 :UInt16;          # the agent's protocol minor version
  agentVersion @2 :Text;             # quiesce-agent release string
  os @3 :OsInfo;                     # what the guest runs
  capabilities @4 :List(Text);
  # Features the agent offers, by name: "fsfreeze", "vss", "hooks", "inventory",
  # "thaw-guard", "lease". Unknown names are ignored by the daemon.
  freezeState @5 :FreezeState;       # the freeze the agent holds right now, if any
  staleFreezeCleared @6 :StaleFreeze;
  # What a previous agent instance left frozen and this one thawed at start (empty when
  # nothing was left). Reported in every HelloReply until a Freeze starts a new job.
  guestMonotonicNs @7 :UInt64;       # the agent's monotonic clock when it replied
}

struct OsInfo {
  family @0 :OsFamily;   # linux or windows
  name @1 :Text;         # "Debian GNU/Linux 12", "Windows Server 2022 Datacenter"
  version @2 :Text;      # kernel release (Linux) or build number (Windows)
  hostName @3 :Text;     # the guest's own host name
}

enum OsFamily {
  unknown @0;
  linux @1;
  windows @2;
}

struct StaleFreeze {
  jobId @0 :Text;               # the job the dead agent was running ("" if unknown)
  volumes @1 :List(Text);       # mount points / volume names thawed at start
  thawedAtNs @2 :UInt64;        # guest monotonic time of that thaw
}

# ---------------------------------------------------------------------------------------------
# Inventory: which volumes exist and which disks they lie on. The host uses it only to
# cross-check coverage; which LUNs are snapshotted always comes from the host's own config.

struct Inventory {
  volumes @0 :List(Volume);
  disks @1 :List(Disk);
}

struct Volume {
  name @0 :Text;            # mount point (Linux) or volume GUID path (Windows)
  device @1 :Text;          # block device (/dev/sda1) or device path
  fsType @2 :Text;          # ext4, xfs, btrfs, NTFS, ...
  freezable @3 :Bool;       # the agent can freeze it (fs supports FIFREEZE / VSS)
  diskNames @4 :List(Text); # names of the whole disks (Disk.name) it lies on, all of them
  sizeBytes @5 :UInt64;     # file system size
  mountPoints @6 :List(Text); # Windows: drive letters / mount folders; Linux: bind mounts
}

struct Disk {
  name @0 :Text;        # kernel name (sda, vda, nvme0n1) or PhysicalDriveN
  wwn @1 :Text;         # WWN / NAA from VPD page 0x83, lower-case hex, no prefix; "" if none
  serial @2 :Text;      # unit serial (VPD 0x80, or virtio-blk serial)
  vendor @3 :Text;      # SCSI vendor id
  model @4 :Text;       # SCSI product id / model
  bus @5 :Text;         # scsi, virtio, nvme, ata, usb, unknown
  sizeBytes @6 :UInt64; # capacity
}

# ---------------------------------------------------------------------------------------------
# Freeze / thaw

enum FreezeMode {
  fsfreeze @0;   # Linux: hooks + FIFREEZE per file system
  vssCopy @1;    # Windows: VSS_BT_COPY; writers do not truncate logs (default)
  vssFull @2;    # Windows: VSS_BT_FULL; SQL Server / Exchange truncate logs after success
}

struct Freeze {
  jobId @0 :Text;           # the daemon's job key (ASCII, at most 64 bytes)
  volumes @1 :List(Text);   # volumes to freeze, as named in Inventory.volumes[].name
  allVolumes @2 :Bool;
  # Freeze every freezable local volume instead of `volumes` (an admin's explicit request
  # only; the daemon never sets it for a snapshot job).
  mode @3 :FreezeMode;
  leaseMs @4 :UInt32;
  # How long the freeze may last, counted from the moment the agent receives this message.
  # 0: the agent's default. The agent caps it (config; VSS hold limit on Windows) and reports
  # the lease it granted in Frozen.
}

struct Frozen {
  jobId @0 :Text;                    # echoes Freeze.jobId
  frozenVolumes @1 :List(Text);      # volumes now frozen
  skippedVolumes @2 :List(SkippedVolume); # requested but not frozen, with the reason
  writers @3 :List(WriterResult);    # freeze hooks (Linux) / VSS writers (Windows)
  frozenAtNs @4 :UInt64;             # guest monotonic time when the last volume froze
  leaseGrantedMs @5 :UInt32;         # the lease in force, counted from Freeze receipt
  leaseExpiresAtNs @6 :UInt64;       # guest monotonic time the lease runs out
  freezeDurationNs @7 :UInt64;       # Freeze receipt -> all frozen, hooks included
}

struct SkippedVolume {
  volume @0 :Text;   # the volume
  reason @1 :Text;   # "file system does not support freezing", ...
}

struct WriterResult {
  name @0 :Text;          # hook file name, or VSS writer name
  kind @1 :WriterKind;
  ok @2 :Bool;            # the step succeeded
  state @3 :Text;         # VSS writer state name, or "exit 0", "timeout", "signal 9"
  output @4 :Text;        # hook output (stdout + stderr), truncated by the agent
  durationMs @5 :UInt32;  # how long this step took
  phase @6 :Text;         # "freeze" or "thaw"
}

enum WriterKind {
  hook @0;        # an executable in the agent's hooks directory
  vssWriter @1;   # a VSS writer
}

struct Thaw {
  jobId @0 :Text;         # the job to thaw
  snapshotOk @1 :Bool;
  # The array snapshot succeeded. Windows: true -> BackupComplete (FULL: writers may truncate
  # logs); false -> AbortBackup. Linux: passed to thaw hooks in the environment.
}

struct Thawed {
  jobId @0 :Text;                  # echoes Thaw.jobId
  heldWholeWindow @1 :Bool;
  # True only if every volume stayed frozen from the Frozen reply until this Thaw arrived:
  # no lease expiry, no guard or error thaw, nobody else thawed it, no hook/writer failure.
  notHeldReason @2 :Text;          # why heldWholeWindow is false ("" when true)
  leaseExpired @3 :Bool;           # the lease ran out before Thaw arrived
  leaseExpiredAtNs @4 :UInt64;     # guest monotonic time of that expiry (0 if none)
  frozenAtNs @5 :UInt64;           # as in Frozen
  thawedAtNs @6 :UInt64;           # guest monotonic time of the last FITHAW / release
  writers @7 :List(WriterResult);  # thaw hooks / VSS writer states after thaw
  backupComponentsDocument @8 :Text; # VSS backup components document (SaveAsXML); "" on Linux
  thawedVolumes @9 :List(Text);    # volumes released by this Thaw
  alreadyThawed @10 :Bool;         # the job had already ended (lease, guard): nothing to do
}

# ---------------------------------------------------------------------------------------------
# Status and liveness

struct FreezeState {
  frozen @0 :Bool;              # a freeze is in progress (any volume frozen or freezing)
  jobId @1 :Text;               # its job ("" when none)
  frozenVolumes @2 :List(Text); # volumes currently frozen
  frozenSinceNs @3 :UInt64;     # guest monotonic time of the first FIFREEZE
  leaseLeftMs @4 :UInt32;       # time left before the guest thaws itself
  mode @5 :FreezeMode;          # the mode of the freeze
  lastJobId @6 :Text;           # the most recent finished job
  lastHeldWholeWindow @7 :Bool; # its verdict
  lastNotHeldReason @8 :Text;   # and why not
}

struct Status {
  state @0 :FreezeState;        # the current freeze state
  uptimeMs @1 :UInt64;          # agent process uptime
  guestMonotonicNs @2 :UInt64;  # the agent's monotonic clock when it replied
}

struct Pong {
  guestMonotonicNs @0 :UInt64;  # the agent's monotonic clock when it replied
}

# ---------------------------------------------------------------------------------------------
# Errors

enum ErrorCode {
  unknown @0;             # unspecified failure
  badRequest @1;          # malformed or out-of-range request
  versionMismatch @2;     # incompatible protocol major version
  busy @3;                # frozen mode: only Hello, Status, Ping and Thaw are accepted
  unknownJob @4;          # Thaw/Status for a job the agent does not know
  freezeFailed @5;        # a FIFREEZE / VSS step failed; everything was thawed
  hookFailed @6;          # a freeze hook failed or timed out; everything was thawed
  alreadyFrozen @7;       # a file system is already frozen by someone else (EBUSY)
  unsupported @8;         # the agent cannot do this (mode, platform)
  internal @9;            # a bug in the agent
  staleSession @10;       # the request's nonce is not the current session's
  notFound @11;           # a named volume does not exist
}

struct Error {
  code @0 :ErrorCode;   # what kind of failure
  message @1 :Text;     # human-readable detail
}
