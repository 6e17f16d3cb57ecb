#include "host-daemon/discovery/domain_xml.h"

#include <gtest/gtest.h>

namespace qb::discovery {
namespace {

config::LibvirtSettings Rules() {
  config::LibvirtSettings settings;
  settings.enabled = true;
  settings.lun_rules = {
      {.disk_type = "file", .protocol = "", .source_prefix = "/srv/luns/", .backend = "reflink"},
      {.disk_type = "block",
       .protocol = "",
       .source_prefix = "/dev/disk/by-id/",
       .backend = "exec"},
      {.disk_type = "network", .protocol = "rbd", .source_prefix = "", .backend = "rbd"},
  };
  return settings;
}

constexpr const char* kDomain = R"(
<domain type='kvm'>
  <name>db1</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/boot.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/luns/db1-data.raw'/>
      <target dev='sda' bus='scsi'/>
      <wwn>0x600A098038303053</wwn>
      <serial>DB1DATA</serial>
    </disk>
    <disk type='block' device='lun'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/disk/by-id/wwn-0x6001'/>
      <target dev='sdb' bus='scsi'/>
    </disk>
    <disk type='block' device='disk'>
      <source dev='/dev/mapper/other'/>
      <target dev='sdc' bus='scsi'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='vms/db1-rbd'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <source protocol='iscsi' name='iqn.2026-01.x:t/1'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/luns/shared-ro.raw'/>
      <target dev='vdd' bus='virtio'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <channel type='unix'>
      <source mode='bind' path='/run/qga.sock'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='/run/qb/db1.sock'/>
      <target type='virtio' name='org.quiesce-bridge.agent.0'/>
    </channel>
    <vsock model='virtio'><cid auto='no' address='9'/></vsock>
  </devices>
</domain>)";

TEST(DomainXmlTest, FindsChannelAndMapsLunDisks) {
  auto info = ParseDomainXml(kDomain, Rules());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->name, "db1");
  EXPECT_EQ(info->uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
  // The channel wins over vsock, and the qemu-ga channel is not ours.
  EXPECT_EQ(info->agent.ToString(), "unix:/run/qb/db1.sock");
  ASSERT_EQ(info->disks.size(), 8u);

  EXPECT_EQ(info->disks[0].backend, "");
  EXPECT_NE(info->disks[0].not_covered_reason.find("qcow2"), std::string::npos);
  EXPECT_EQ(info->disks[1].backend, "reflink");
  EXPECT_EQ(info->disks[1].wwn, "600a098038303053");
  EXPECT_EQ(info->disks[1].serial, "DB1DATA");
  EXPECT_EQ(info->disks[1].target, "sda");
  EXPECT_EQ(info->disks[2].device, "lun");
  EXPECT_EQ(info->disks[2].backend, "exec");
  EXPECT_EQ(info->disks[3].backend, "");  // block but outside the rule's prefix
  EXPECT_NE(info->disks[3].not_covered_reason.find("no libvirt.lun_rules"), std::string::npos);
  EXPECT_EQ(info->disks[4].backend, "rbd");
  EXPECT_EQ(info->disks[4].source, "vms/db1-rbd");
  EXPECT_EQ(info->disks[4].protocol, "rbd");
  EXPECT_NE(info->disks[5].not_covered_reason.find("iscsi"), std::string::npos);
  EXPECT_EQ(info->disks[6].not_covered_reason, "read-only disk");
  EXPECT_NE(info->disks[7].not_covered_reason.find("cdrom"), std::string::npos);

  const auto luns = info->Luns();
  ASSERT_EQ(luns.size(), 3u);
  EXPECT_EQ(luns[0].volume, "/srv/luns/db1-data.raw");
  EXPECT_EQ(luns[0].wwn, "600a098038303053");
  EXPECT_EQ(luns[2].backend, "rbd");
}

TEST(DomainXmlTest, FallsBackToVsockCid) {
  const char* xml = R"(<domain><name>v</name><devices>
      <vsock model='virtio'><cid auto='no' address='12'/></vsock></devices></domain>)";
  config::LibvirtSettings settings = Rules();
  settings.agent_vsock_port = 4470;
  auto info = ParseDomainXml(xml, settings);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->agent.ToString(), "vsock:12:4470");
}

TEST(DomainXmlTest, MissingChannelIsAClearError) {
  const char* xml = R"(<domain><name>legacy</name><devices>
      <channel type='unix'><source mode='bind' path='/run/qga.sock'/>
        <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
      </devices></domain>)";
  auto info = ParseDomainXml(xml, Rules());
  EXPECT_EQ(info.status().code(), Code::kNotFound);
  EXPECT_NE(info.status().message().find("legacy"), std::string::npos);
  EXPECT_NE(info.status().message().find("org.quiesce-bridge.agent.0"), std::string::npos);
}

TEST(DomainXmlTest, ChannelOfTheWrongKindIsExplained) {
  const char* xml = R"(<domain><name>p</name><devices>
      <channel type='pty'><target type='virtio' name='org.quiesce-bridge.agent.0'/></channel>
      </devices></domain>)";
  auto info = ParseDomainXml(xml, Rules());
  EXPECT_EQ(info.status().code(), Code::kNotFound);
  EXPECT_NE(info.status().message().find("type='pty'"), std::string::npos)
      << info.status().ToString();
  const char* relative = R"(<domain><name>p</name><devices>
      <channel type='unix'><source mode='bind' path='rel.sock'/>
      <target type='virtio' name='org.quiesce-bridge.agent.0'/></channel></devices></domain>)";
  EXPECT_EQ(ParseDomainXml(relative, Rules()).status().code(), Code::kNotFound);
  const char* connect = R"(<domain><name>p</name><devices>
      <channel type='unix'><source mode='connect' path='/run/x.sock'/>
      <target type='virtio' name='org.quiesce-bridge.agent.0'/></channel></devices></domain>)";
  auto connecting = ParseDomainXml(connect, Rules());
  EXPECT_EQ(connecting.status().code(), Code::kNotFound);
  EXPECT_NE(connecting.status().message().find("mode='bind'"), std::string::npos)
      << connecting.status().ToString();
}

TEST(DomainXmlTest, MalformedXmlIsInvalidArgument) {
  EXPECT_EQ(ParseDomainXml("<domain><name>x</name>", Rules()).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseDomainXml("", Rules()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseDomainXml("<node/>", Rules()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseDomainXml("<domain><devices/></domain>", Rules()).status().code(),
            Code::kInvalidArgument);
}

TEST(DomainXmlTest, NoRulesMeansNoLuns) {
  config::LibvirtSettings settings;
  auto info = ParseDomainXml(kDomain, settings);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->Luns().empty());
}

}  // namespace
}  // namespace qb::discovery
