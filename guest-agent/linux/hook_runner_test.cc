#include "guest-agent/linux/hook_runner.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/guest_text.h"
#include "guest-agent/linux/testing/loop_fs.h"

namespace qb::agent {
namespace {

using namespace std::chrono_literals;

class HookRunnerTest : public ::testing::Test {
 protected:
  void Write(const std::string& name, const std::string& body, mode_t mode = 0755) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), mode);
  }
  HookOptions Options(std::chrono::milliseconds timeout = 10s) {
    return HookOptions{dir_.path(), timeout, 64};
  }
  testing::TempDir dir_;
};

TEST_F(HookRunnerTest, ListsExecutablesInNameOrderOnly) {
  Write("20-b", "true");
  Write("10-a", "true");
  Write("15-not-exec", "true", 0644);
  Write(".hidden", "true");
  Write("30-backup~", "true");
  ::mkdir((dir_.path() + "/40-dir").c_str(), 0755);
  auto names = ListHooks(dir_.path());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"10-a", "20-b"}));
  auto missing = ListHooks(dir_.path() + "/none");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());
}

TEST_F(HookRunnerTest, CapturesBoundedOutputAndExitStatus) {
  Write("loud",
        "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done; echo err >&2; "
        "exit 4");
  auto result = RunHook(Options(), "loud", "freeze", "j", false);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.state, "exit 4");
  EXPECT_EQ(result.kind, proto::WriterKind::kHook);
  EXPECT_EQ(result.output.rfind("line0\n", 0), 0u);
  EXPECT_NE(result.output.find("[output truncated]"), std::string::npos);
  EXPECT_LE(result.output.size(), 64u + 32u);
}

// Issue 11 item 3: the agent sends valid UTF-8 even when the cut at max_output splits a
// character or the hook prints bytes that are not UTF-8.
TEST_F(HookRunnerTest, OutputIsValidUtf8EvenWhenCutMidCharacter) {
  // 63 ASCII bytes, then a 3-byte euro sign: the 64-byte limit cuts it after its first byte.
  Write("euro", "printf '%063d\\342\\202\\254rest' 0; printf '\\377\\376' >&2");
  auto result = RunHook(Options(), "euro", "freeze", "j", false);
  EXPECT_TRUE(result.ok) << result.state;
  EXPECT_TRUE(IsValidUtf8(result.output)) << result.output;
  EXPECT_NE(result.output.find("[output truncated]"), std::string::npos);
  Write("binary", "printf 'a\\377\\300\\257b'");
  auto binary = RunHook(Options(), "binary", "freeze", "j", false);
  EXPECT_EQ(binary.output,
            "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
}

TEST_F(HookRunnerTest, TimeoutKillsTheHookAndItsChildren) {
  Write("slow", "sleep 60 & sleep 60");
  auto start = std::chrono::steady_clock::now();
  auto result = RunHook(Options(200ms), "slow", "freeze", "j", false);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.state.find("timeout"), std::string::npos) << result.state;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
}

TEST_F(HookRunnerTest, FreezeStopsAtTheFirstFailureAndThawRunsInReverse) {
  std::string log = dir_.path() + "/log";
  Write("1-a", "echo a $1 $QUIESCE_SNAPSHOT_OK >> " + log);
  Write("2-b", "echo b $1 >> " + log + "; [ $1 = thaw ]");
  Write("3-c", "echo c $1 >> " + log);
  auto run = RunFreezeHooks(Options(), "job");
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.ran, (std::vector<std::string>{"1-a", "2-b"}));
  auto thaw = RunThawHooks(Options(), run.ran, "job", true);
  ASSERT_EQ(thaw.size(), 2u);
  EXPECT_EQ(thaw[0].name, "2-b");
  EXPECT_TRUE(thaw[0].ok);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "a freeze\nb freeze\nb thaw\na thaw 1\n");
}

TEST_F(HookRunnerTest, MissingHookFailsToSpawn) {
  auto result = RunHook(Options(), "absent", "freeze", "j", false);
  EXPECT_FALSE(result.ok);
}

}  // namespace
}  // namespace qb::agent
