// One fully populated sample of every message, shared by the codec round-trip tests, the
// golden-bytes tests and the fuzz seed corpus. Changing a sample changes the golden files.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "protocol/control_messages.h"
#include "protocol/messages.h"

namespace qb::proto::testing {

inline std::vector<std::pair<std::string, AgentMessage>> SampleAgentMessages() {
  const std::uint64_t nonce = 0x1122334455667788ull;
  FreezeState frozen_state{true, "job-20261122-0001",   {"/mnt/data", "/mnt/logs"}, 123456789,
                           8500, FreezeMode::kFsfreeze, "job-20261121-0009",        true,
                           ""};
  WriterResult hook{"10-sqlite", WriterKind::kHook, true, "exit 0", "checkpointed 12 pages\n",
                    42,          "freeze"};
  WriterResult vss{
      "SqlServerWriter", WriterKind::kVssWriter, false, "VSS_WS_FAILED_AT_FREEZE", "", 10001,
      "freeze"};
  std::vector<std::pair<std::string, AgentMessage>> out;
  out.emplace_back("hello", AgentMessage{1, nonce, Hello{1, 0, "quiesced 0.1.0", "kvm-host-1"}});
  out.emplace_back(
      "hello_reply",
      AgentMessage{
          1, nonce,
          HelloReply{1,
                     3,
                     "quiesce-agent 0.1.0",
                     OsInfo{OsFamily::kLinux, "Debian GNU/Linux 12", "6.1.0-cloud", "guest-1"},
                     {"fsfreeze", "hooks", "inventory", "thaw-guard", "lease"},
                     frozen_state,
                     StaleFreeze{"job-old", {"/mnt/data"}, 99},
                     555}});
  out.emplace_back("inventory_request", AgentMessage{2, nonce, InventoryRequest{}});
  out.emplace_back(
      "inventory",
      AgentMessage{2, nonce,
                   Inventory{{Volume{"/mnt/data",
                                     "/dev/sda1",
                                     "xfs",
                                     true,
                                     {"sda"},
                                     1 << 30,
                                     {"/mnt/data", "/srv/data"}},
                              Volume{"/", "/dev/vda1", "ext4", true, {"vda"}, 8ull << 30, {"/"}},
                              Volume{"/run", "tmpfs", "tmpfs", false, {}, 0, {"/run"}}},
                             {Disk{"sda", "624a93701234567890abcdef", "PURE-1234", "PURE",
                                   "FlashArray", "scsi", 1 << 30},
                              Disk{"vda", "", "boot-disk-1", "", "", "virtio", 8ull << 30}}}});
  out.emplace_back(
      "freeze",
      AgentMessage{3, nonce,
                   Freeze{"job-20261122-0001", {"/mnt/data"}, false, FreezeMode::kVssCopy, 9000}});
  out.emplace_back(
      "frozen",
      AgentMessage{3, nonce,
                   Frozen{"job-20261122-0001",
                          {"/mnt/data"},
                          {SkippedVolume{"/mnt/tmp", "file system does not support freezing"}},
                          {hook, vss},
                          1000000,
                          9000,
                          9001000000,
                          45000000}});
  out.emplace_back("thaw", AgentMessage{4, nonce, Thaw{"job-20261122-0001", true}});
  out.emplace_back(
      "thawed", AgentMessage{4, nonce,
                             Thawed{"job-20261122-0001",
                                    false,
                                    "lease expired before thaw",
                                    true,
                                    9001000000,
                                    1000000,
                                    9002000000,
                                    {hook},
                                    "<BACKUP_COMPONENTS xmlns=\"x-schema:#VssComponentMetadata\"/>",
                                    {"/mnt/data"},
                                    true}});
  out.emplace_back("status_request", AgentMessage{5, nonce, StatusRequest{}});
  out.emplace_back("status", AgentMessage{5, nonce, AgentStatus{frozen_state, 3600000, 777}});
  out.emplace_back("ping", AgentMessage{6, nonce, Ping{}});
  out.emplace_back("pong", AgentMessage{6, nonce, Pong{888}});
  out.emplace_back("error",
                   AgentMessage{7, nonce,
                                ErrorReply{ErrorCode::kAlreadyFrozen,
                                           "/mnt/data is already frozen by someone else"}});
  return out;
}

inline std::vector<std::pair<std::string, ControlRequest>> SampleControlRequests() {
  std::vector<std::pair<std::string, ControlRequest>> out;
  out.emplace_back("ctl_guests", ControlRequest{1, 1, ListGuests{}});
  out.emplace_back("ctl_status", ControlRequest{2, 1, GuestStatusRequest{"vm1"}});
  out.emplace_back(
      "ctl_snapshot",
      ControlRequest{3, 1, SnapshotRequest{{"vm1", "vm2"}, "db", VssMode::kFull, true, 8000}});
  out.emplace_back("ctl_snapshots", ControlRequest{4, 1, ListSnapshots{"vm1"}});
  out.emplace_back("ctl_delete", ControlRequest{5, 1, DeleteSnapshot{"snap-1"}});
  out.emplace_back("ctl_expose", ControlRequest{6, 1, ExposeRequest{"snap-1", "vm1-copy"}});
  out.emplace_back("ctl_rollback", ControlRequest{7, 1, RollbackRequest{"vm1", "snap-1"}});
  out.emplace_back("ctl_prune", ControlRequest{8, 1, PruneRequest{""}});
  out.emplace_back("ctl_jobs", ControlRequest{9, 1, ListJobs{}});
  out.emplace_back("ctl_thaw", ControlRequest{10, 1, ThawRequest{"vm1"}});
  // 1.1: pages for the list verbs.
  out.emplace_back("ctl_jobs_page_v1_1", ControlRequest{11, 1, ListJobs{}, Page{50, 100}});
  out.emplace_back("ctl_snapshots_page_v1_1",
                   ControlRequest{12, 1, ListSnapshots{"vm1"}, Page{500, 1000}});
  return out;
}

inline std::vector<std::pair<std::string, ControlReply>> SampleControlReplies() {
  SnapshotInfo snap{"snap-1",
                    "vm1",
                    "job-1",
                    "reflink",
                    "/luns/vm1.raw",
                    "qb-job-1-vm1.raw",
                    "application-consistent",
                    "2026-11-22T01:00:00Z"};
  GuestInfo guest{"vm1",
                  "config",
                  "unix:/run/vm1.sock",
                  "connected",
                  "quiesce-agent 0.1.0",
                  "Debian GNU/Linux 12",
                  false,
                  "",
                  0,
                  {"reflink:/luns/vm1.raw"},
                  "",
                  ""};
  JobReport job{"job-1",
                {"vm1"},
                "done",
                "application-consistent",
                "",
                0,
                {{"plan", 120}, {"freeze", 45000}, {"snapshot", 3100}, {"thaw", 5200}},
                53000,
                {snap},
                {"/"},
                {"vm1: 10-sqlite: exit 0"},
                "2026-11-22T01:00:00Z"};
  std::vector<std::pair<std::string, ControlReply>> out;
  out.emplace_back("ctl_error", ControlReply{1, ControlError{7, "vm1 is busy with job-2"}});
  out.emplace_back("ctl_guest_list", ControlReply{2, GuestList{{guest}}});
  out.emplace_back("ctl_guest_status", ControlReply{3, guest});
  out.emplace_back("ctl_job", ControlReply{4, job});
  out.emplace_back("ctl_snapshot_list", ControlReply{5, SnapshotList{{snap}}});
  out.emplace_back("ctl_done", ControlReply{6, Done{"deleted snap-1"}});
  out.emplace_back("ctl_job_list", ControlReply{7, JobList{{job}}});
  // 1.1: truncated counts, typed writer results, pages.
  JobReport job11 = job;
  job11.writers = {"vm1: 10-sqlite [freeze]: exit 0", "vm1: 10-sqlite [thaw]: exit 0"};
  job11.writers_truncated = 2100;
  job11.not_covered_truncated = 7;
  job11.writer_details = {{"vm1", "10-sqlite", WriterPhase::kFreeze, true, "exit 0"},
                          {"vm1", "10-sqlite", WriterPhase::kThaw, true, "exit 0"}};
  out.emplace_back("ctl_job_v1_1", ControlReply{8, job11});
  out.emplace_back("ctl_job_list_more_v1_1", ControlReply{9, JobList{{job11}}, true, 150});
  out.emplace_back("ctl_snapshot_list_more_v1_1", ControlReply{10, SnapshotList{{snap}}, true, 1});
  return out;
}

}  // namespace qb::proto::testing
