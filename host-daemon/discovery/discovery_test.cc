#include "host-daemon/discovery/discovery.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <thread>

namespace qb::discovery {
namespace {

using namespace std::chrono_literals;

config::LibvirtSettings Settings(const std::string& uri) {
  config::LibvirtSettings settings;
  settings.enabled = true;
  settings.uri = uri;
  settings.lun_rules = {
      {.disk_type = "file", .protocol = "", .source_prefix = "/srv/luns/", .backend = "reflink"},
      {.disk_type = "block", .protocol = "", .source_prefix = "", .backend = "exec"},
      {.disk_type = "network", .protocol = "rbd", .source_prefix = "", .backend = "rbd"},
  };
  return settings;
}

const std::string kNodeUri = "test://" + std::string(QB_DISCOVERY_TESTDATA) + "/node.xml";

TEST(DiscoveryTest, ListsRunningDomainsOfTheTestNode) {
  auto discovery = Discovery::Connect(Settings(kNodeUri));
  ASSERT_TRUE(discovery.ok()) << discovery.status().ToString();
  auto domains = (*discovery)->ListRunning();
  ASSERT_TRUE(domains.ok()) << domains.status().ToString();
  ASSERT_EQ(domains->size(), 3u);

  const DiscoveredDomain& app1 = (*domains)[0];
  EXPECT_EQ(app1.name, "app1");
  ASSERT_TRUE(app1.status.ok()) << app1.status.ToString();
  EXPECT_EQ(app1.info.agent.ToString(), "vsock:7:4470");
  auto app1_luns = app1.info.Luns();
  ASSERT_EQ(app1_luns.size(), 2u);
  EXPECT_EQ(app1_luns[0].backend, "rbd");
  EXPECT_EQ(app1_luns[0].volume, "vms/app1-data");
  EXPECT_EQ(app1_luns[1].backend, "exec");

  const DiscoveredDomain& db1 = (*domains)[1];
  EXPECT_EQ(db1.name, "db1");
  ASSERT_TRUE(db1.status.ok()) << db1.status.ToString();
  EXPECT_EQ(db1.info.agent.ToString(), "unix:/run/quiesce-bridge/db1.agent.sock");
  auto db1_luns = db1.info.Luns();
  ASSERT_EQ(db1_luns.size(), 2u);
  EXPECT_EQ(db1_luns[0].volume, "/srv/luns/db1-data.raw");
  EXPECT_EQ(db1_luns[0].wwn, "600a098038303053");
  EXPECT_EQ(db1_luns[1].volume, "/dev/disk/by-id/wwn-0x600a098038303054");

  const DiscoveredDomain& legacy = (*domains)[2];
  EXPECT_EQ(legacy.name, "legacy");
  EXPECT_EQ(legacy.status.code(), Code::kNotFound);

  auto looked_up = (*discovery)->Lookup("db1");
  ASSERT_TRUE(looked_up.ok());
  EXPECT_EQ(looked_up->uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
  EXPECT_EQ((*discovery)->Lookup("nope").status().code(), Code::kNotFound);
}

TEST(DiscoveryTest, BadUriIsAnError) {
  auto discovery = Discovery::Connect(Settings("test:///nonexistent/node.xml"));
  EXPECT_EQ(discovery.status().code(), Code::kIoError);
}

// test:///default is one shared in-process driver: a second connection made here starts and
// destroys a domain, and Discovery must see both events, delivered on our io_context.
TEST(DiscoveryTest, FollowsLifecycleEvents) {
  auto discovery = Discovery::Connect(Settings("test:///default"));
  ASSERT_TRUE(discovery.ok()) << discovery.status().ToString();

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<DomainEvent> events;
  std::thread::id handler_thread;
  ASSERT_TRUE((*discovery)
                  ->WatchLifecycle(io.get_executor(),
                                   [&](DomainEvent e) {
                                     std::lock_guard lock(mutex);
                                     handler_thread = std::this_thread::get_id();
                                     events.push_back(std::move(e));
                                     changed.notify_all();
                                   })
                  .ok());
  EXPECT_EQ((*discovery)->WatchLifecycle(io.get_executor(), [](DomainEvent) {}).code(),
            Code::kConflict);
  std::thread io_thread([&] { io.run(); });

  virConnectPtr admin = virConnectOpen("test:///default");
  ASSERT_NE(admin, nullptr);
  const char* xml = R"(<domain type='test'><name>evt1</name><memory>65536</memory>
      <os><type>hvm</type></os><devices>
      <channel type='unix'><source mode='bind' path='/run/qb/evt1.sock'/>
      <target type='virtio' name='org.quiesce-bridge.agent.0'/></channel></devices></domain>)";
  virDomainPtr domain = virDomainCreateXML(admin, xml, 0);
  ASSERT_NE(domain, nullptr);

  auto seen = [&](LifecycleKind kind) {
    for (const auto& e : events) {
      if (e.name == "evt1" && e.kind == kind) return true;
    }
    return false;
  };
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return seen(LifecycleKind::kStarted); }));
  }
  auto running = (*discovery)->Lookup("evt1");
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_EQ(running->agent.ToString(), "unix:/run/qb/evt1.sock");

  ASSERT_EQ(virDomainDestroy(domain), 0);
  virDomainFree(domain);
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return seen(LifecycleKind::kStopped); }));
    EXPECT_EQ(handler_thread, io_thread.get_id());
  }
  virConnectClose(admin);
  discovery.value().reset();  // stops the event thread; must not hang
  work.reset();
  io.run();
  io_thread.join();
}

}  // namespace
}  // namespace qb::discovery
