// qb-test-agent: the TestAgent double (test_agent.h) as a process, for tests that run the real
// quiesced binary and kill it. NOT an agent: it freezes nothing. Prints "ready" when listening;
// writes its freeze state to --state-file on every change ("frozen JOB" / "thawed") and runs
// until SIGTERM.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "tests/daemon/test_agent.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  std::string socket_path, wwn = "600a0b8001", state_file;
  std::uint32_t max_lease_ms = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i], value = argv[i + 1];
    if (key == "--socket")
      socket_path = value;
    else if (key == "--wwn")
      wwn = value;
    else if (key == "--state-file")
      state_file = value;
    else if (key == "--max-lease-ms")
      max_lease_ms = static_cast<std::uint32_t>(std::stoul(value));
  }
  if (socket_path.empty()) {
    std::cerr
        << "usage: qb-test-agent --socket PATH [--wwn HEX] [--state-file F] [--max-lease-ms N]\n";
    return 2;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  qb::testing::TestAgentOptions options;
  options.socket_path = socket_path;
  options.inventory = qb::testing::TestAgent::SimpleInventory("/data", "sda", wwn);
  options.max_lease_ms = max_lease_ms;
  qb::testing::TestAgent agent(options);
  std::cout << "ready" << std::endl;
  std::string last;
  while (!g_stop) {
    agent.WaitUntil([] { return g_stop != 0; }, std::chrono::milliseconds(20));
    std::string now = agent.frozen() ? "frozen " + std::to_string(agent.freezes())
                                     : "thawed " + std::to_string(agent.thaws());
    if (now != last && !state_file.empty()) {
      std::ofstream(state_file + ".tmp") << now << "\n";
      std::rename((state_file + ".tmp").c_str(), state_file.c_str());
      last = now;
    }
  }
  return 0;
}
