// LibvirtGuestSync against libvirt's test driver: test:///default is one in-process driver
// shared by every connection, so a second connection made here starts and destroys domains and
// the sync (through a real Discovery and its event loop) must follow.
#include "host-daemon/daemon/libvirt_guest_sync.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <optional>

namespace qb::quiesced {
namespace {

using namespace std::chrono_literals;
constexpr const char* kUri = "test:///default";

config::LibvirtSettings Settings() {
  config::LibvirtSettings settings;
  settings.enabled = true;
  settings.uri = kUri;
  settings.lun_rules.push_back(
      {.disk_type = "file", .protocol = "", .source_prefix = "/srv/luns/", .backend = "reflink"});
  return settings;
}

std::string DomainXml(const std::string& name) {
  return "<domain type='test'><name>" + name +
         "</name><memory>65536</memory><os><type>hvm</type></os><devices>"
         "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
         "<source file='/srv/luns/" +
         name +
         ".raw'/><target dev='sda' bus='scsi'/><wwn>600a098038303099</wwn></disk>"
         "<channel type='unix'><source mode='bind' path='/nonexistent/qb-" +
         name +
         ".sock'/><target type='virtio' name='org.quiesce-bridge.agent.0'/></channel>"
         "</devices></domain>";
}

class GuestSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = virConnectOpen(kUri);
    ASSERT_NE(admin_, nullptr);
    auto discovery = discovery::Discovery::Connect(Settings());
    ASSERT_TRUE(discovery.ok()) << discovery.status().ToString();
    discovery_ = std::move(discovery).value();
  }
  void TearDown() override {
    sync_.reset();
    guests_.StopAll();
    RunFor(50ms);
    for (virDomainPtr d : domains_) {
      virDomainDestroy(d);
      virDomainFree(d);
    }
    discovery_.reset();
    if (admin_ != nullptr) virConnectClose(admin_);
    workers_.join();
  }

  virDomainPtr Start(const std::string& name) {
    virDomainPtr d = virDomainCreateXML(admin_, DomainXml(name).c_str(), 0);
    EXPECT_NE(d, nullptr) << name << ": " << virGetLastErrorMessage();
    if (d != nullptr) domains_.push_back(d);
    return d;
  }

  void Stop(virDomainPtr d) {
    ASSERT_EQ(virDomainDestroy(d), 0);
    std::erase(domains_, d);
    virDomainFree(d);
  }

  // Runs the io_context on this thread (the io thread) for `d`, also when it ran out of work.
  void RunFor(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }

  // Runs the io_context until `done` or 20 s.
  template <typename Pred>
  bool RunUntil(Pred done) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      RunFor(10ms);
    }
    return true;
  }

  void StartSync() {
    sync_ = std::make_unique<LibvirtGuestSync>(
        io_.get_executor(), workers_.get_executor(), *discovery_, guests_,
        [this](const std::string& vm) { return vm == busy_vm_; },
        GuestSyncOptions{.uri = kUri,
                         .host_name = "h",
                         .daemon_version = "t",
                         .busy_poll = 20ms,
                         .on_session = {}});
    std::optional<Status> listed;
    ASSERT_TRUE(sync_->Start([&](Status s) { listed = s; }).ok());
    ASSERT_TRUE(RunUntil([&] { return listed.has_value(); }));
    ASSERT_TRUE(listed->ok()) << listed->ToString();
  }

  void AddStatic(const std::string& name) {
    link::LinkOptions lo;
    lo.guest_name = name;
    lo.endpoint = *link::ParseEndpoint("unix:/nonexistent/static.sock");
    jobs::Guest guest;
    guest.spec.name = name;
    guest.spec.endpoint = "unix:/nonexistent/static.sock";
    guest.link = link::GuestLink::Create(io_.get_executor(), lo);
    ASSERT_TRUE(guests_.Add(guest).ok());
    guest.link->Start();
  }

  boost::asio::io_context io_{1};
  boost::asio::thread_pool workers_{1};
  virConnectPtr admin_ = nullptr;
  std::unique_ptr<discovery::Discovery> discovery_;
  jobs::GuestRegistry guests_;
  std::unique_ptr<LibvirtGuestSync> sync_;
  std::vector<virDomainPtr> domains_;
  std::string busy_vm_;
};

TEST_F(GuestSyncTest, FollowsDomainsAndStaticGuestsWin) {
  Start("sync-a");       // running before the daemon looks
  Start("sync-static");  // also configured statically: the static entry wins
  AddStatic("sync-static");
  StartSync();

  jobs::Guest* a = guests_.Find("sync-a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->spec.source, kUri);
  EXPECT_EQ(a->spec.endpoint, "unix:/nonexistent/qb-sync-a.sock");
  ASSERT_EQ(a->spec.luns.size(), 1u);
  EXPECT_EQ(a->spec.luns[0].backend, "reflink");
  EXPECT_EQ(a->spec.luns[0].volume, "/srv/luns/sync-a.raw");
  EXPECT_EQ(a->spec.luns[0].wwn, "600a098038303099");
  EXPECT_EQ(guests_.Find("sync-static")->spec.source, "config");
  // The test driver's own "test" domain has no agent channel: listed, not served.
  EXPECT_EQ(guests_.Find("test"), nullptr);

  // Started after the sync: adopted from the event.
  virDomainPtr b = Start("sync-b");
  ASSERT_TRUE(RunUntil([&] { return guests_.Find("sync-b") != nullptr; }));
  auto b_link = guests_.Find("sync-b")->link;

  // Stopped: removed, link stopped.
  Stop(b);
  ASSERT_TRUE(RunUntil([&] { return guests_.Find("sync-b") == nullptr; }));
  EXPECT_TRUE(RunUntil([&] { return b_link->Info().state == link::LinkState::kStopped; }));

  // A static guest is never removed by a domain event.
  Stop(domains_[1]);  // sync-static
  RunFor(300ms);
  ASSERT_NE(guests_.Find("sync-static"), nullptr);
  EXPECT_NE(guests_.Find("sync-static")->link->Info().state, link::LinkState::kStopped);
}

TEST_F(GuestSyncTest, GuestLeavingMidJobKeepsItsLinkUntilTheJobEnds) {
  StartSync();
  virDomainPtr c = Start("sync-c");
  ASSERT_TRUE(RunUntil([&] { return guests_.Find("sync-c") != nullptr; }));
  auto link = guests_.Find("sync-c")->link;
  busy_vm_ = "sync-c";
  Stop(c);
  ASSERT_TRUE(RunUntil([&] { return guests_.Find("sync-c") == nullptr; }));
  RunFor(200ms);  // several drain polls: the job still runs
  EXPECT_NE(link->Info().state, link::LinkState::kStopped);
  busy_vm_.clear();  // the job ended (it thawed through the link)
  ASSERT_TRUE(RunUntil([&] { return link->Info().state == link::LinkState::kStopped; }));
}

}  // namespace
}  // namespace qb::quiesced
