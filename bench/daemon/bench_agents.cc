// qb-bench-agents: N TestAgent doubles (tests/daemon/test_agent.h) in one process, for the
// daemon benchmarks (RSS with 1/100/1000 connected guests, job throughput). NOT real agents:
// they freeze nothing. Agent i listens on DIR/vmI.sock and reports one data disk "sda" with
// WWN 600a0b80<i in hex>. Prints "ready", runs until SIGTERM.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tests/daemon/test_agent.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: qb-bench-agents DIR COUNT\n";
    return 2;
  }
  std::string dir = argv[1];
  int count = std::stoi(argv[2]);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::vector<std::unique_ptr<qb::testing::TestAgent>> agents;
  for (int i = 0; i < count; ++i) {
    char wwn[32];
    std::snprintf(wwn, sizeof(wwn), "600a0b80%06x", i);
    qb::testing::TestAgentOptions o;
    o.socket_path = dir + "/vm" + std::to_string(i) + ".sock";
    o.inventory = qb::testing::TestAgent::SimpleInventory("/data", "sda", wwn);
    agents.push_back(std::make_unique<qb::testing::TestAgent>(o));
  }
  std::cout << "ready" << std::endl;
  while (!g_stop)
    agents.front()->WaitUntil([] { return g_stop != 0; }, std::chrono::milliseconds(100));
  return 0;
}
