// Turns a libvirt domain XML into what the daemon needs: how to reach the guest's agent and
// which of its disks are LUNs, each mapped to an array backend by the config's rules.
// Pure parsing: no libvirt connection, safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "host-daemon/arrays/backend.h"
#include "host-daemon/config/config.h"

namespace qb::discovery {

struct DiscoveredDisk {
  std::string type{};      // "block" | "file" | "network" (others are listed, never mapped)
  std::string device{};    // "disk" | "lun" | "cdrom" | ...
  std::string protocol{};  // network disks: "rbd", "iscsi", ...
  std::string source{};    // block: dev path; file: file path; rbd: "pool/image"
  std::string format{};    // <driver type=...>: "raw", "qcow2", or "" when not given
  std::string target{};    // guest device name ("sda", "vdb")
  std::string bus{};       // "scsi", "virtio", ...
  std::string wwn{};       // <wwn>, lower-case hex; "" when absent
  std::string serial{};    // <serial>; "" when absent
  std::string backend{};   // backend chosen by the first matching rule; "" = not snapshotted
  std::string not_covered_reason{};  // why backend is empty (read-only, not raw, no rule...)
};

struct DomainInfo {
  std::string name{};
  std::string uuid{};
  config::AgentEndpoint agent{};
  std::vector<DiscoveredDisk> disks{};  // every <disk>, in XML order

  // The mapped disks as LunSpecs (backend, volume = source, wwn), in XML order.
  std::vector<arrays::LunSpec> Luns() const;
};

// Parses `xml` (as returned by virDomainGetXMLDesc). The agent endpoint is the unix (bind)
// <channel> whose <target type='virtio' name=settings.agent_port> has a source path, else
// "vsock:<cid>:<settings.agent_vsock_port>" from <vsock><cid address=.../>.
// kInvalidArgument: malformed XML or no <domain>/<name>. kNotFound: no agent channel and no
// vsock CID (message names the domain and the expected port name).
// Disk mapping: only writable raw disks of type block (device disk or lun), file, or network
// rbd are candidates; the first settings.lun_rules entry matching type, protocol and source
// prefix names the backend.
Result<DomainInfo> ParseDomainXml(std::string_view xml, const config::LibvirtSettings& settings);

}  // namespace qb::discovery
