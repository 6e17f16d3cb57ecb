#include "host-daemon/discovery/domain_xml.h"

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cctype>
#include <charconv>
#include <sstream>

namespace qb::discovery {
namespace {

namespace pt = boost::property_tree;

std::string Attr(const pt::ptree& node, const std::string& name) {
  return node.get<std::string>("<xmlattr>." + name, "");
}

std::string NormaliseWwn(std::string_view text) {
  std::string out;
  std::string_view rest = text;
  if (rest.substr(0, 2) == "0x" || rest.substr(0, 2) == "0X") rest.remove_prefix(2);
  for (char c : rest) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

DiscoveredDisk ReadDisk(const pt::ptree& disk) {
  DiscoveredDisk d;
  d.type = Attr(disk, "type");
  d.device = Attr(disk, "device");
  if (d.device.empty()) d.device = "disk";
  if (auto driver = disk.get_child_optional("driver")) d.format = Attr(*driver, "type");
  if (auto target = disk.get_child_optional("target")) {
    d.target = Attr(*target, "dev");
    d.bus = Attr(*target, "bus");
  }
  if (auto source = disk.get_child_optional("source")) {
    if (d.type == "block") {
      d.source = Attr(*source, "dev");
    } else if (d.type == "file") {
      d.source = Attr(*source, "file");
    } else if (d.type == "network") {
      d.protocol = Attr(*source, "protocol");
      d.source = Attr(*source, "name");
    } else if (d.type == "volume") {
      d.source = Attr(*source, "pool") + "/" + Attr(*source, "volume");
    }
  }
  d.wwn = NormaliseWwn(disk.get<std::string>("wwn", ""));
  d.serial = disk.get<std::string>("serial", "");
  const bool read_only = disk.get_child_optional("readonly").has_value();
  const bool shareable = disk.get_child_optional("shareable").has_value();
  (void)shareable;  // shared LUNs (clusters) are snapshotted like any other

  if (d.device != "disk" && d.device != "lun") {
    d.not_covered_reason = "device='" + d.device + "' is not a disk";
  } else if (read_only) {
    d.not_covered_reason = "read-only disk";
  } else if (d.type != "block" && d.type != "file" && d.type != "network") {
    d.not_covered_reason = "disk type='" + d.type + "' is not a LUN";
  } else if (d.type == "network" && d.protocol != "rbd") {
    d.not_covered_reason = "network protocol '" + d.protocol + "' has no backend";
  } else if (d.source.empty()) {
    d.not_covered_reason = "no source (empty drive)";
  } else if (d.type != "block" && !d.format.empty() && d.format != "raw") {
    d.not_covered_reason = "format '" + d.format + "' is not raw";
  }
  return d;
}

void MapDisk(DiscoveredDisk& d, const config::LibvirtSettings& settings) {
  if (!d.not_covered_reason.empty()) return;
  for (const auto& rule : settings.lun_rules) {
    if (rule.disk_type != d.type) continue;
    if (!rule.protocol.empty() && rule.protocol != d.protocol) continue;
    if (d.source.compare(0, rule.source_prefix.size(), rule.source_prefix) != 0) continue;
    d.backend = rule.backend;
    return;
  }
  d.not_covered_reason = "no libvirt.lun_rules entry matches " + d.type + " " + d.source;
}

}  // namespace

std::vector<arrays::LunSpec> DomainInfo::Luns() const {
  std::vector<arrays::LunSpec> luns;
  for (const auto& d : disks) {
    if (!d.backend.empty())
      luns.push_back({.backend = d.backend, .volume = d.source, .wwn = d.wwn});
  }
  return luns;
}

Result<DomainInfo> ParseDomainXml(std::string_view xml, const config::LibvirtSettings& settings) {
  pt::ptree tree;
  try {
    std::istringstream in{std::string(xml)};
    pt::read_xml(in, tree, pt::xml_parser::no_comments);
  } catch (const pt::xml_parser_error& error) {
    return Error(
        Code::kInvalidArgument,
        "domain XML is malformed (line " + std::to_string(error.line()) + "): " + error.message());
  }
  auto domain = tree.get_child_optional("domain");
  if (!domain) return Error(Code::kInvalidArgument, "domain XML has no <domain> element");
  DomainInfo info;
  info.name = domain->get<std::string>("name", "");
  info.uuid = domain->get<std::string>("uuid", "");
  if (info.name.empty()) return Error(Code::kInvalidArgument, "domain XML has no <name>");

  bool have_agent = false;
  std::string channel_problem;
  if (auto devices = domain->get_child_optional("devices")) {
    for (const auto& [tag, node] : *devices) {
      if (tag == "disk") {
        DiscoveredDisk disk = ReadDisk(node);
        MapDisk(disk, settings);
        info.disks.push_back(std::move(disk));
      } else if (tag == "channel" && !have_agent) {
        auto target = node.get_child_optional("target");
        if (!target || Attr(*target, "type") != "virtio" ||
            Attr(*target, "name") != settings.agent_port) {
          continue;
        }
        if (Attr(node, "type") != "unix") {
          channel_problem = "channel '" + settings.agent_port + "' is type='" + Attr(node, "type") +
                            "', not unix";
          continue;
        }
        auto source = node.get_child_optional("source");
        const std::string mode = source ? Attr(*source, "mode") : "";
        if (!mode.empty() && mode != "bind") {
          // The daemon connects to the socket QEMU listens on; with mode='connect' QEMU would
          // be the client and nobody would listen.
          channel_problem = "channel '" + settings.agent_port + "' has source mode='" + mode +
                            "'; the daemon needs mode='bind'";
          continue;
        }
        const std::string path = source ? Attr(*source, "path") : "";
        auto endpoint = config::ParseAgentEndpoint("unix:" + path);
        if (!endpoint.ok()) {
          channel_problem = "channel '" + settings.agent_port + "': " + endpoint.status().message();
          continue;
        }
        info.agent = *endpoint;
        have_agent = true;
      }
    }
    if (!have_agent) {
      if (auto vsock = devices->get_child_optional("vsock")) {
        if (auto cid = vsock->get_child_optional("cid")) {
          const std::string address = Attr(*cid, "address");
          auto endpoint = config::ParseAgentEndpoint("vsock:" + address + ":" +
                                                     std::to_string(settings.agent_vsock_port));
          if (endpoint.ok()) {
            info.agent = *endpoint;
            have_agent = true;
          } else {
            channel_problem = "<vsock> cid '" + address + "' is unusable";
          }
        }
      }
    }
  }
  if (!have_agent) {
    return Error(Code::kNotFound,
                 "domain '" + info.name + "' has no agent channel: expected <channel type='unix'>" +
                     " with <target type='virtio' name='" + settings.agent_port +
                     "'> or a <vsock> device with a CID" +
                     (channel_problem.empty() ? "" : " (" + channel_problem + ")"));
  }
  return info;
}

}  // namespace qb::discovery
