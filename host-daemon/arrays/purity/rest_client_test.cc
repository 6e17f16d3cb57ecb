#include "host-daemon/arrays/purity/rest_client.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "host-daemon/arrays/purity/purity_test_support.h"

namespace qb::arrays::purity {
namespace {

using namespace std::chrono_literals;
using qb::testing::FakeArrayFault;
using Clock = std::chrono::steady_clock;

// Generous: the machine is shared and noisy; no test asserts a duration below this.
constexpr auto kTestDeadline = 20s;

RestRequest GetVolumes() { return {HttpMethod::kGet, "/volumes", {}, std::nullopt, true}; }

int Count(const std::vector<std::string>& requests, const std::string& what) {
  return static_cast<int>(std::count(requests.begin(), requests.end(), what));
}

TEST(PurityRestClient, NegotiatesHighestV2AndLogsIn) {
  SimulatedArray sim;
  sim.array.SetVersions({"1.17", "2.0", "2.4", "2.36", "2.5"});
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.EnsureSession(Clock::now() + kTestDeadline).ok());
  EXPECT_EQ(client.api_version(), "2.36");
  auto reply = client.Call(GetVolumes(), Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(sim.array.logins(), 1);
  EXPECT_EQ(client.requests_sent(), 3u);  // api_version, login, volumes
}

TEST(PurityRestClient, HonoursAPinnedVersionOnlyWhenOffered) {
  SimulatedArray sim;
  auto options = sim.Options();
  options.api_version = "2.4";
  RestClient pinned(options, kTestApiToken);
  ASSERT_TRUE(pinned.Call(GetVolumes(), Clock::now() + kTestDeadline).ok());
  EXPECT_EQ(pinned.api_version(), "2.4");
  options.api_version = "2.99";
  RestClient missing(options, kTestApiToken);
  EXPECT_EQ(missing.EnsureSession(Clock::now() + kTestDeadline).code(), Code::kVersionMismatch);
}

TEST(PurityRestClient, RefusesAnArrayWithoutRest2) {
  SimulatedArray sim;
  sim.array.SetVersions({"1.17", "1.19"});
  RestClient client(sim.Options(), kTestApiToken);
  EXPECT_EQ(client.EnsureSession(Clock::now() + kTestDeadline).code(), Code::kVersionMismatch);
}

TEST(PurityRestClient, WrongTokenIsPermissionDenied) {
  SimulatedArray sim;
  RestClient client(sim.Options(), "not-the-token");
  const Status status = client.EnsureSession(Clock::now() + kTestDeadline);
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_EQ(status.message().find("not-the-token"), std::string::npos) << "token leaked";
}

TEST(PurityRestClient, VerifiesTheCertificateByDefault) {
  SimulatedArray sim;
  auto options = sim.Options();
  options.ca_file.clear();  // system store: does not know the throw-away certificate
  RestClient strict(options, kTestApiToken);
  const Status status = strict.EnsureSession(Clock::now() + kTestDeadline);
  EXPECT_EQ(status.code(), Code::kIoError) << status.ToString();
  EXPECT_NE(status.message().find("TLS handshake"), std::string::npos) << status.ToString();

  options.insecure_skip_verify = true;
  RestClient lab(options, kTestApiToken);
  EXPECT_TRUE(lab.EnsureSession(Clock::now() + kTestDeadline).ok());
}

TEST(PurityRestClient, RefusesACertificateForAnotherHostName) {
  SimulatedArray sim;
  auto options = sim.Options();
  options.host = "localhost";  // resolves to 127.0.0.1, but the certificate names only the IP
  RestClient client(options, kTestApiToken);
  const Status status = client.EnsureSession(Clock::now() + kTestDeadline);
  EXPECT_EQ(status.code(), Code::kIoError);
  EXPECT_NE(status.message().find("TLS handshake"), std::string::npos) << status.ToString();
}

TEST(PurityRestClient, LogsInAgainOnceWhenTheSessionExpired) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.Call(GetVolumes(), Clock::now() + kTestDeadline).ok());
  sim.array.ExpireSessions();
  auto reply = client.Call(GetVolumes(), Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(sim.array.logins(), 2);
}

TEST(PurityRestClient, A401AfterReloginIsReturnedNotLooped) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.EnsureSession(Clock::now() + kTestDeadline).ok());
  sim.array.Inject({FakeArrayFault::Kind::kStatus, "GET", "/volumes", 401, std::nullopt,
                    "Invalid or expired session token.", 0ms, 2});
  auto reply = client.Call(GetVolumes(), Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 401u);
  EXPECT_EQ(sim.array.logins(), 2);  // exactly one re-login
}

TEST(PurityRestClient, HonoursRetryAfterWhenItFits) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.EnsureSession(Clock::now() + kTestDeadline).ok());
  sim.array.Inject(
      {FakeArrayFault::Kind::kStatus, "GET", "/volumes", 429, 1, "Too many requests", 0ms, 1});
  const auto started = Clock::now();
  auto reply = client.Call(GetVolumes(), Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 200u);
  EXPECT_GE(Clock::now() - started, 1s);  // waited as told (lower bound only)
  EXPECT_EQ(Count(sim.array.Requests(), "GET /volumes"), 2);
}

TEST(PurityRestClient, DoesNotWaitPastTheDeadline) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.EnsureSession(Clock::now() + kTestDeadline).ok());
  sim.array.Inject(
      {FakeArrayFault::Kind::kStatus, "GET", "/volumes", 503, 3600, "Server is busy", 0ms, 1});
  auto reply = client.Call(GetVolumes(), Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 503u);
  EXPECT_TRUE(reply->overloaded());
  EXPECT_EQ(ErrorFromReply(*reply, "list").code(), Code::kBusy);
  EXPECT_EQ(Count(sim.array.Requests(), "GET /volumes"), 1);
}

TEST(PurityRestClient, NeverResendsANonIdempotentRequestByItself) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.EnsureSession(Clock::now() + kTestDeadline).ok());
  sim.array.Inject(
      {FakeArrayFault::Kind::kStatus, "POST", "/volumes", 503, 0, "Server is busy", 0ms, 1});
  RestRequest create{HttpMethod::kPost, "/volumes", {{"names", "v"}}, boost::json::object{}, false};
  auto reply = client.Call(create, Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 503u);
  EXPECT_EQ(Count(sim.array.Requests(), "POST /volumes"), 1);
}

TEST(PurityRestClient, ASlowAnswerEndsAtTheDeadline) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.EnsureSession(Clock::now() + kTestDeadline).ok());
  sim.array.Inject(
      {FakeArrayFault::Kind::kSlowAnswer, "GET", "/volumes", 200, std::nullopt, "", 30s, 1});
  const auto started = Clock::now();
  auto reply = client.Call(GetVolumes(), Clock::now() + 500ms);
  EXPECT_EQ(reply.status().code(), Code::kTimeout) << reply.status().ToString();
  EXPECT_LT(Clock::now() - started, 15s);  // returned near the deadline, not after the answer
  // The connection was dropped; the next call works on a new one.
  auto again = client.Call(GetVolumes(), Clock::now() + kTestDeadline);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status, 200u);
}

TEST(PurityRestClient, AnIdempotentCallSurvivesADroppedKeepAliveConnection) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.Call(GetVolumes(), Clock::now() + kTestDeadline).ok());
  sim.array.Inject(
      {FakeArrayFault::Kind::kDropAnswer, "GET", "/volumes", 200, std::nullopt, "", 0ms, 1});
  auto reply = client.Call(GetVolumes(), Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(Count(sim.array.Requests(), "GET /volumes"), 3);
}

TEST(PurityRestClient, ADroppedCreateIsReportedNotResent) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  ASSERT_TRUE(client.Call(GetVolumes(), Clock::now() + kTestDeadline).ok());
  sim.array.Inject(
      {FakeArrayFault::Kind::kDropAnswer, "POST", "/volumes", 200, std::nullopt, "", 0ms, 1});
  RestRequest create{HttpMethod::kPost, "/volumes", {{"names", "v"}}, boost::json::object{}, false};
  auto reply = client.Call(create, Clock::now() + kTestDeadline);
  EXPECT_EQ(reply.status().code(), Code::kIoError) << reply.status().ToString();
  EXPECT_EQ(Count(sim.array.Requests(), "POST /volumes"), 1);
  EXPECT_TRUE(sim.array.HasVolume("v"));  // it landed; the caller must look it up
}

TEST(PurityRestClient, APassedDeadlineSendsNothing) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  auto reply = client.Call(GetVolumes(), Clock::now() - 1ms);
  EXPECT_EQ(reply.status().code(), Code::kTimeout);
  EXPECT_EQ(client.requests_sent(), 0u);
}

TEST(PurityRestClient, ErrorBodiesAreParsed) {
  SimulatedArray sim;
  RestClient client(sim.Options(), kTestApiToken);
  auto reply = client.Call({HttpMethod::kGet, "/volumes", {{"names", "nope"}}, std::nullopt, true},
                           Clock::now() + kTestDeadline);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 400u);
  EXPECT_TRUE(IsNotFound(*reply));
  EXPECT_NE(reply->error_text.find("(context: nope)"), std::string::npos) << reply->error_text;
  EXPECT_EQ(ErrorFromReply(*reply, "get").code(), Code::kNotFound);
}

TEST(PurityApiToken, RefusesGroupOrWorldReadableFiles) {
  SimulatedArray sim;
  const std::string good = sim.WriteFile("token", std::string(kTestApiToken) + "\n", 0600);
  auto token = LoadApiTokenFile(good);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, kTestApiToken);
  const std::string loose = sim.WriteFile("loose", "secret", 0640);
  auto refused = LoadApiTokenFile(loose);
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(refused.status().message().find("secret"), std::string::npos);
  EXPECT_EQ(LoadApiTokenFile(sim.certificate.dir() + "/missing").status().code(), Code::kNotFound);
  EXPECT_EQ(LoadApiTokenFile(sim.WriteFile("empty", "\n", 0600)).status().code(),
            Code::kInvalidArgument);
}

// The file is opened once and the open file is checked: a symlink (which someone could point
// elsewhere between a check by path and the open) is refused, even to a good file.
TEST(PurityApiToken, RefusesASymlinkAndChecksTheOpenFile) {
  SimulatedArray sim;
  const std::string good = sim.WriteFile("token", std::string(kTestApiToken) + "\n", 0600);
  const std::string link = sim.certificate.dir() + "/token-link";
  ASSERT_EQ(::symlink(good.c_str(), link.c_str()), 0);
  auto refused = LoadApiTokenFile(link);
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("symlink"), std::string::npos)
      << refused.status().ToString();
  const std::string fifo = sim.certificate.dir() + "/token-fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(LoadApiTokenFile(fifo).status().code(), Code::kInvalidArgument);  // and no hang
}

TEST(PurityApiToken, ReadsASystemdCredential) {
  SimulatedArray sim;
  sim.WriteFile("purity-token", kTestApiToken, 0400);
  ::setenv("CREDENTIALS_DIRECTORY", sim.certificate.dir().c_str(), 1);
  auto token = LoadApiTokenCredential("purity-token");
  EXPECT_EQ(LoadApiTokenCredential("../etc/passwd").status().code(), Code::kInvalidArgument);
  ::unsetenv("CREDENTIALS_DIRECTORY");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, kTestApiToken);
  EXPECT_EQ(LoadApiTokenCredential("purity-token").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace qb::arrays::purity
