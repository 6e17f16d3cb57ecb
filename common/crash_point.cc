#include "common/crash_point.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace qb {
namespace {

// Parsed once: the environment is fixed for the life of the process as far as crash points go.
const std::vector<std::string>& ArmedPoints() {
  static const std::vector<std::string> armed = [] {
    std::vector<std::string> names;
    const char* env = std::getenv(std::string(kCrashPointEnv).c_str());
    if (env == nullptr) return names;
    std::string_view rest(env);
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto name = rest.substr(0, comma);
      if (!name.empty()) names.emplace_back(name);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return names;
  }();
  return armed;
}

}  // namespace

bool CrashPointArmed(std::string_view name) {
  for (const auto& armed : ArmedPoints()) {
    if (armed == name) return true;
  }
  return false;
}

void CrashPoint(std::string_view name) {
  if (ArmedPoints().empty() || !CrashPointArmed(name)) return;
  std::fprintf(stderr, "crash point %.*s\n", static_cast<int>(name.size()), name.data());
  std::fflush(stderr);
#ifdef SIGKILL
  std::raise(SIGKILL);
#endif
  std::_Exit(137);  // platforms without SIGKILL (Windows): the closest equivalent
}

}  // namespace qb
