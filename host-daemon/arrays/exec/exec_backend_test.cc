#include "host-daemon/arrays/exec/exec_backend.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "host-daemon/arrays/exec/script_runner.h"

namespace qb::arrays::exec {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class ExecBackendTest : public ::testing::Test {
 protected:
  // Scripts live in a 0700 directory under the working directory (the build tree), whose
  // other tests open up and chown on purpose (CheckTrustedProgram).
  void SetUp() override {
    std::string pattern = (fs::current_path() / "qb-exec-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes an executable script: a shell "case" on the operation named in the request. Every
  // request is appended to requests.log, one per line. `cases` are extra case arms.
  std::string Script(const std::string& cases) {
    const std::string path = dir_ + "/array.sh";
    std::ofstream out(path);
    out << "#!/bin/sh\n"
        << "req=$(cat)\n"
        << "echo \"$req\" >> '" << dir_ << "/requests.log'\n"
        << "case \"$req\" in\n"
        << "  *'\"op\":\"capabilities\"'*) echo "
           "'{\"ok\":true,\"capabilities\":{\"atomic_group\":true,\"clone\":true,"
           "\"rollback\":false}}'; exit 0;;\n"
        << cases << "\n"
        << "esac\n"
        << "echo '{\"ok\":false,\"error\":{\"code\":\"unsupported\",\"message\":\"no such "
           "op\"}}'\n";
    out.close();
    fs::permissions(path, fs::perms::owner_all);
    return path;
  }

  std::unique_ptr<ArrayBackend> Make(const std::string& script,
                                     std::chrono::milliseconds timeout = 20s) {
    auto backend = MakeExecBackend({.name = "exec", .script = script, .timeout = timeout});
    EXPECT_TRUE(backend.ok()) << backend.status().ToString();
    return backend.ok() ? std::move(backend).value() : nullptr;
  }

  int CountRequests(const std::string& op) {
    std::istringstream log(ReadFile(dir_ + "/requests.log"));
    int n = 0;
    for (std::string line; std::getline(log, line);) {
      if (line.find("\"op\":\"" + op + "\"") != std::string::npos) ++n;
    }
    return n;
  }

  static std::chrono::steady_clock::time_point In(std::chrono::milliseconds d) {
    return std::chrono::steady_clock::now() + d;
  }

  const std::vector<LunSpec> luns_ = {{"exec", "vol-a", "600a0b80"}, {"exec", "vol-b", ""}};
  std::string dir_;
};

TEST_F(ExecBackendTest, CapabilitiesComeFromTheScript) {
  auto backend = Make(Script(""));
  ASSERT_NE(backend, nullptr);
  EXPECT_TRUE(backend->capabilities().atomic_group);
  EXPECT_TRUE(backend->capabilities().clone);
  EXPECT_FALSE(backend->capabilities().rollback);
  SnapshotRecord any{
      .lun = "vol-a", .array_name = "x", .job_key = "j", .backend = "exec", .created = {}};
  EXPECT_EQ(backend->Rollback(any).code(), Code::kUnsupported);
  EXPECT_EQ(CountRequests("rollback"), 0);  // refused without running the script
}

TEST_F(ExecBackendTest, SnapshotSendsNamesAndReturnsRecordsInLunOrder) {
  auto backend = Make(
      Script(R"(  *'"op":"snapshot"'*) echo '{"ok":true,"snapshots":[)"
             R"({"volume":"vol-b","array_name":"arr/qb-job1-vol-b","created_unix":1800000000},)"
             R"({"volume":"vol-a","array_name":"arr/qb-job1-vol-a"}]}'; exit 0;;)"));
  ASSERT_NE(backend, nullptr);
  auto made = backend->Snapshot(luns_, "job1", In(20s));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  ASSERT_EQ(made->size(), 2u);
  EXPECT_EQ((*made)[0].lun, "vol-a");
  EXPECT_EQ((*made)[0].array_name, "arr/qb-job1-vol-a");
  EXPECT_EQ((*made)[0].job_key, "job1");
  EXPECT_EQ((*made)[1].created,
            std::chrono::system_clock::time_point(std::chrono::seconds(1800000000)));
  const std::string log = ReadFile(dir_ + "/requests.log");
  EXPECT_NE(log.find(R"("job_key":"job1")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("snapshot_name":"qb-job1-vol-a")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("wwn":"600a0b80")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("deadline_ms":)"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("version":1)"), std::string::npos) << log;
}

TEST_F(ExecBackendTest, ErrorAnswerMapsCodeAndSnapshotCleansUpLeftovers) {
  auto backend = Make(Script(
      R"(  *'"op":"snapshot"'*) echo 'half done' >&2; echo '{"ok":false,"error":{"code":"array-error","message":"controller B offline"}}'; exit 0;;
  *'"op":"find"'*) echo '{"ok":true,"snapshots":[{"volume":"vol-a","array_name":"arr/qb-job1-vol-a"}]}'; exit 0;;
  *'"op":"remove"'*) echo '{"ok":true}'; exit 0;;
  *'"op":"resolve"'*) echo '{"ok":false,"error":{"code":"not-found","message":"no volume vol-x"}}'; exit 0;;)"));
  ASSERT_NE(backend, nullptr);
  auto made = backend->Snapshot(luns_, "job1", In(20s));
  EXPECT_EQ(made.status().code(), Code::kArrayError);
  EXPECT_NE(made.status().message().find("controller B offline"), std::string::npos);
  EXPECT_NE(made.status().message().find("half done"), std::string::npos);
  EXPECT_EQ(CountRequests("find"), 1);
  EXPECT_EQ(CountRequests("remove"), 1);

  const Status resolved = backend->Resolve({"exec", "vol-x", ""});
  EXPECT_EQ(resolved.code(), Code::kNotFound);
  EXPECT_NE(resolved.message().find("no volume vol-x"), std::string::npos);
}

TEST_F(ExecBackendTest, RemoveOfMissingSnapshotIsSuccess) {
  auto backend = Make(Script(
      R"(  *'"op":"remove"'*) echo '{"ok":false,"error":{"code":"not-found","message":"gone"}}'; exit 0;;)"));
  ASSERT_NE(backend, nullptr);
  SnapshotRecord gone{
      .lun = "vol-a", .array_name = "arr/x", .job_key = "j", .backend = "exec", .created = {}};
  EXPECT_TRUE(backend->Remove(gone).ok());
}

TEST_F(ExecBackendTest, GarbageOutputIsAProtocolError) {
  auto backend = Make(Script(R"(  *'"op":"list"'*) echo 'Snapshot list:'; echo ' - foo'; exit 0;;
  *'"op":"find"'*) echo '{"ok":true}'; exit 0;;
  *'"op":"clone"'*) echo '{"ok":true,"volume":42}'; exit 0;;)"));
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->List(luns_[0]).status().code(), Code::kProtocolError);
  EXPECT_EQ(backend->FindByKey(luns_, "job1").status().code(), Code::kProtocolError);
  SnapshotRecord s{
      .lun = "vol-a", .array_name = "arr/x", .job_key = "j", .backend = "exec", .created = {}};
  EXPECT_EQ(backend->Clone(s, "new").status().code(), Code::kProtocolError);
}

TEST_F(ExecBackendTest, OversizedAnswerIsRefused) {
  // 2 MiB of output, more than kMaxAnswerBytes.
  auto backend = Make(Script(
      R"(  *'"op":"list"'*) head -c 2097152 /dev/zero | tr '\0' ' '; echo '{"ok":true,"snapshots":[]}'; exit 0;;)"));
  ASSERT_NE(backend, nullptr);
  const auto listed = backend->List(luns_[0]);
  EXPECT_EQ(listed.status().code(), Code::kProtocolError);
  EXPECT_NE(listed.status().message().find("larger than"), std::string::npos)
      << listed.status().ToString();
}

TEST_F(ExecBackendTest, NonZeroExitIsAnArrayErrorWithStderr) {
  auto backend = Make(
      Script(R"(  *'"op":"resolve"'*) echo 'login to array failed: bad token' >&2; exit 3;;)"));
  ASSERT_NE(backend, nullptr);
  const Status resolved = backend->Resolve(luns_[0]);
  EXPECT_EQ(resolved.code(), Code::kArrayError);
  EXPECT_NE(resolved.message().find("exit status 3"), std::string::npos) << resolved.ToString();
  EXPECT_NE(resolved.message().find("bad token"), std::string::npos) << resolved.ToString();
}

TEST_F(ExecBackendTest, HangPastTimeoutKillsTheWholeProcessGroup) {
  // The script starts a grandchild that would outlive it, records its pid, and hangs.
  auto backend = Make(Script("  *'\"op\":\"resolve\"'*) sleep 600 & echo $! > '" + dir_ +
                             "/grandchild.pid'; wait; exit 0;;"),
                      300ms);
  ASSERT_NE(backend, nullptr);
  const auto started = std::chrono::steady_clock::now();
  const Status resolved = backend->Resolve(luns_[0]);
  EXPECT_EQ(resolved.code(), Code::kTimeout) << resolved.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 60s);
  const pid_t grandchild = std::stoi(ReadFile(dir_ + "/grandchild.pid"));
  // Gone or a zombie about to be reaped by init: never still sleeping.
  bool alive = true;
  for (int i = 0; i < 200 && alive; ++i) {
    const std::string stat = ReadFile("/proc/" + std::to_string(grandchild) + "/stat");
    alive = !stat.empty() && stat.find(") Z") == std::string::npos;
    if (alive) std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(alive) << "grandchild " << grandchild << " survived the timeout";
}

TEST_F(ExecBackendTest, SnapshotDeadlineBoundsTheScript) {
  auto backend = Make(Script(R"(  *'"op":"snapshot"'*) sleep 600; exit 0;;
  *'"op":"find"'*) echo '{"ok":true,"snapshots":[]}'; exit 0;;)"));
  ASSERT_NE(backend, nullptr);
  const auto started = std::chrono::steady_clock::now();
  auto made = backend->Snapshot(luns_, "job1", In(300ms));
  EXPECT_EQ(made.status().code(), Code::kTimeout) << made.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);  // not the 20 s script timeout
  EXPECT_EQ(CountRequests("find"), 1);                         // looked for leftovers

  EXPECT_EQ(
      backend->Snapshot(luns_, "job2", std::chrono::steady_clock::now() - 1ms).status().code(),
      Code::kTimeout);
  EXPECT_EQ(CountRequests("snapshot"), 1);
}

TEST_F(ExecBackendTest, StartupRefusesBadScripts) {
  EXPECT_EQ(
      MakeExecBackend({.name = "exec", .script = "relative.sh", .timeout = 1s}).status().code(),
      Code::kInvalidArgument);
  const std::string plain = dir_ + "/plain.sh";
  std::ofstream(plain) << "#!/bin/sh\n";
  EXPECT_EQ(MakeExecBackend({.name = "exec", .script = plain, .timeout = 1s}).status().code(),
            Code::kInvalidArgument);
  const std::string silent = dir_ + "/silent.sh";
  std::ofstream(silent) << "#!/bin/sh\nexit 0\n";
  fs::permissions(silent, fs::perms::owner_all);
  EXPECT_EQ(MakeExecBackend({.name = "exec", .script = silent, .timeout = 5s}).status().code(),
            Code::kProtocolError);
}

// Whoever can write the script, or a directory on its path, could run code as root through
// the daemon: such scripts are refused at startup, naming the path.
TEST_F(ExecBackendTest, ScriptWritableByGroupIsRefused) {
  const std::string script = Script("");
  fs::permissions(script, fs::perms::owner_all | fs::perms::group_all);
  auto backend = MakeExecBackend({.name = "exec", .script = script, .timeout = 5s});
  EXPECT_EQ(backend.status().code(), Code::kPermissionDenied) << backend.status().ToString();
  EXPECT_NE(backend.status().message().find(script + " is writable by group or others"),
            std::string::npos)
      << backend.status().ToString();
  EXPECT_FALSE(fs::exists(dir_ + "/requests.log")) << "the refused script was run";
}

TEST_F(ExecBackendTest, WorldWritableDirectoryOnThePathIsRefused) {
  const std::string script = Script("");
  const std::string open_dir = dir_ + "/open";
  fs::create_directory(open_dir);
  fs::permissions(open_dir, fs::perms::all);
  fs::copy_file(script, open_dir + "/array.sh", fs::copy_options::overwrite_existing);
  auto backend = MakeExecBackend({.name = "exec", .script = open_dir + "/array.sh"});
  EXPECT_EQ(backend.status().code(), Code::kPermissionDenied) << backend.status().ToString();
  EXPECT_NE(backend.status().message().find(open_dir + " is writable by group or others"),
            std::string::npos)
      << backend.status().ToString();
  fs::remove_all(open_dir);
}

// A sticky open directory (like /tmp) owned by root is passed through: nobody else can rename
// or remove the daemon's own entries there. What others own in it is not trusted: their
// symlink (they can repoint it) or their file.
TEST_F(ExecBackendTest, StickyDirectoryIsPassedOnlyThroughEntriesNobodyElseOwns) {
  const std::string script = Script("");
  const std::string sticky = dir_ + "/sticky";
  fs::create_directory(sticky);
  fs::permissions(sticky, fs::perms::all | fs::perms::sticky_bit);
  fs::create_directory(sticky + "/mine");
  fs::permissions(sticky + "/mine", fs::perms::owner_all);
  fs::copy_file(script, sticky + "/mine/array.sh");
  auto ok = MakeExecBackend({.name = "exec", .script = sticky + "/mine/array.sh"});
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  if (::geteuid() != 0) GTEST_SKIP() << "entries owned by another user need root to make";
  const uid_t nobody = 65534;
  fs::create_symlink(sticky + "/mine", sticky + "/theirs");
  ASSERT_EQ(::lchown((sticky + "/theirs").c_str(), nobody, nobody), 0);
  auto via_link = MakeExecBackend({.name = "exec", .script = sticky + "/theirs/array.sh"});
  EXPECT_EQ(via_link.status().code(), Code::kPermissionDenied) << via_link.status().ToString();
  EXPECT_NE(via_link.status().message().find("symlink owned by uid 65534"), std::string::npos)
      << via_link.status().ToString();
  fs::create_directory(sticky + "/their-dir");
  ASSERT_EQ(::chown((sticky + "/their-dir").c_str(), nobody, nobody), 0);
  fs::copy_file(script, sticky + "/their-dir/array.sh");
  auto in_theirs = MakeExecBackend({.name = "exec", .script = sticky + "/their-dir/array.sh"});
  EXPECT_EQ(in_theirs.status().code(), Code::kPermissionDenied) << in_theirs.status().ToString();
  fs::remove_all(sticky);
}

// A symlink is followed hop by hop: a link to a script in an open directory is refused, and so
// is a link that itself sits in an open directory (whoever can write there can repoint it).
TEST_F(ExecBackendTest, SymlinksIntoOrFromOpenDirectoriesAreRefused) {
  const std::string script = Script("");
  const std::string open_dir = dir_ + "/open";
  fs::create_directory(open_dir);
  fs::copy_file(script, open_dir + "/array.sh");
  fs::create_symlink(open_dir + "/array.sh", dir_ + "/into-open.sh");
  fs::create_symlink(script, open_dir + "/from-open.sh");
  fs::permissions(open_dir, fs::perms::all);
  for (const auto& path : {dir_ + "/into-open.sh", open_dir + "/from-open.sh"}) {
    auto backend = MakeExecBackend({.name = "exec", .script = path});
    EXPECT_EQ(backend.status().code(), Code::kPermissionDenied)
        << path << ": " << backend.status().ToString();
    EXPECT_NE(backend.status().message().find(open_dir + " is writable"), std::string::npos)
        << backend.status().ToString();
  }
  // A symlink whose every hop is trusted is fine.
  fs::create_symlink(script, dir_ + "/good-link.sh");
  EXPECT_NE(Make(dir_ + "/good-link.sh"), nullptr);
}

// Checked before every run too, not only at startup.
TEST_F(ExecBackendTest, ScriptThatBecameWritableIsNotRunAgain) {
  const std::string script = Script("");
  auto backend = Make(script);
  ASSERT_NE(backend, nullptr);
  fs::permissions(script, fs::perms::owner_all | fs::perms::others_all);
  const int before = CountRequests("snapshot");
  auto snapshot = backend->Snapshot(luns_, "job_w", std::chrono::steady_clock::now() + 10s);
  EXPECT_FALSE(snapshot.ok());
  EXPECT_NE(snapshot.status().message().find("refusing to run the script: " + script +
                                             " is writable by group or others"),
            std::string::npos)
      << snapshot.status().ToString();
  EXPECT_EQ(CountRequests("snapshot"), before);
}

// The script sees a defined environment, none of the daemon's (CREDENTIALS_DIRECTORY above all).
TEST_F(ExecBackendTest, ScriptGetsOnlyTheDefinedEnvironment) {
  ::setenv("CREDENTIALS_DIRECTORY", "/run/credentials/quiesced.service", 1);
  ::setenv("QB_DAEMON_PRIVATE", "secret", 1);
  const std::string script = Script("  *'\"op\":\"list\"'*) env > '" + dir_ +
                                    "/env.txt'; echo '{\"ok\":true,"
                                    "\"snapshots\":[]}'; exit 0;;");
  auto backend = Make(script);
  ASSERT_NE(backend, nullptr);
  (void)backend->List(luns_[0]);
  ::unsetenv("CREDENTIALS_DIRECTORY");
  ::unsetenv("QB_DAEMON_PRIVATE");
  std::istringstream env(ReadFile(dir_ + "/env.txt"));
  std::map<std::string, std::string> seen;
  for (std::string line; std::getline(env, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) seen[line.substr(0, eq)] = line.substr(eq + 1);
  }
  ASSERT_FALSE(seen.empty()) << "the script did not run";
  EXPECT_EQ(seen["PATH"], "/usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_EQ(seen["LANG"], "C.UTF-8");
  for (const auto& [name, value] : seen) {
    // PWD, SHLVL and _ are set by the shell itself.
    EXPECT_TRUE(name == "PATH" || name == "LANG" || name == "PWD" || name == "SHLVL" || name == "_")
        << "unexpected variable in the script's environment: " << name << "=" << value;
  }
}

TEST(ScriptRunnerTest, ScriptThatIgnoresStdinStillAnswers) {
  std::string pattern = (fs::temp_directory_path() / "qb-run-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string script = pattern + "/s.sh";
  std::ofstream(script) << "#!/bin/sh\necho hello\necho oops >&2\n";
  fs::permissions(script, fs::perms::owner_all);
  const std::string big(1 << 20, 'x');  // more than a socket buffer, never read
  auto run = RunScript(script, ScriptEnvironment(), big, std::chrono::steady_clock::now() + 20s,
                       1024, 1024);
  fs::remove_all(pattern);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->exit_code, 0);
  EXPECT_EQ(run->stdout_text, "hello\n");
  EXPECT_EQ(run->stderr_text, "oops\n");
}

}  // namespace
}  // namespace qb::arrays::exec
