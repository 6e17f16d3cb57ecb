#include "host-daemon/arrays/purity/purity_names.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace qb::arrays::purity {
namespace {

constexpr std::string_view kSuffixPrefix = "qb-";
// "-9" is never produced by the escaping, so a hashed suffix can never equal an escaped one.
constexpr std::string_view kHashedPrefix = "qb-h-9";
// Pure's IEEE OUI in a volume's NAA: NAA type 6, OUI 24a937, then a 0 nibble, then the serial.
constexpr std::string_view kPureNaaPrefix = "624a9370";
constexpr std::size_t kSerialHexDigits = 24;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

uint64_t Fnv1a(std::string_view bytes) {
  uint64_t hash = 1469598103934665603ULL;
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

}  // namespace

bool IsValidSuffix(std::string_view suffix) {
  if (suffix.empty() || suffix.size() > kMaxSuffixLength) return false;
  if (!IsAlnum(suffix.front()) || !IsAlnum(suffix.back())) return false;
  return std::all_of(suffix.begin(), suffix.end(), [](char c) { return IsAlnum(c) || c == '-'; });
}

std::string SuffixForJobKey(std::string_view job_key) {
  std::string out(kSuffixPrefix);
  for (char c : job_key) {
    if (IsLowerAlnum(c)) {
      out += c;
    } else if (c >= 'A' && c <= 'Z') {
      out += '-';
      out += static_cast<char>(c - 'A' + 'a');
    } else if (c == '_') {
      out += "-0";
    } else if (c == '.') {
      out += "-1";
    } else {
      out += "-2";  // not a valid key character; keeps the function total
    }
  }
  if (out.size() <= kMaxSuffixLength) return out;
  return fmt::format("{}{:016x}", kHashedPrefix, Fnv1a(job_key));
}

std::string JobKeyOfSuffix(std::string_view suffix) {
  if (suffix.substr(0, kSuffixPrefix.size()) != kSuffixPrefix) return "";
  std::string_view body = suffix.substr(kSuffixPrefix.size());
  if (body.empty()) return "";
  std::string key;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (IsLowerAlnum(c)) {
      key += c;
      continue;
    }
    if (c != '-' || i + 1 >= body.size()) return "";
    const char code = body[++i];
    if (code >= 'a' && code <= 'z') {
      key += static_cast<char>(code - 'a' + 'A');
    } else if (code == '0') {
      key += '_';
    } else if (code == '1') {
      key += '.';
    } else {
      return "";
    }
  }
  // The escaped form never exceeds the limit by construction; a longer one came from elsewhere.
  if (SuffixForJobKey(key) != suffix) return "";
  return key;
}

std::optional<std::string> SerialFromLunId(std::string_view lun_id) {
  std::string id = Lower(lun_id);
  if (const auto slash = id.rfind('/'); slash != std::string::npos) id = id.substr(slash + 1);
  for (std::string_view prefix : {"wwn-0x", "scsi-3", "dm-uuid-mpath-3", "naa.", "0x"}) {
    if (id.rfind(prefix, 0) == 0) {
      id = id.substr(prefix.size());
      break;
    }
  }
  // Linux WWID: '3' (designator type NAA) in front of the 32-hex NAA.
  if (id.size() == kPureNaaPrefix.size() + kSerialHexDigits + 1 && id.front() == '3') {
    id = id.substr(1);
  }
  if (id.size() != kPureNaaPrefix.size() + kSerialHexDigits) return std::nullopt;
  if (id.rfind(kPureNaaPrefix, 0) != 0 || !IsHex(id)) return std::nullopt;
  std::string serial = id.substr(kPureNaaPrefix.size());
  for (char& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return serial;
}

std::string NaaOfSerial(std::string_view serial) {
  return std::string(kPureNaaPrefix) + Lower(serial);
}

std::string ProtectionGroupNameFor(std::vector<std::string> volume_names) {
  for (auto& name : volume_names) name = Lower(name);
  std::sort(volume_names.begin(), volume_names.end());
  std::string joined;
  for (const auto& name : volume_names) {
    joined += name;
    joined += '\n';
  }
  return fmt::format("qb-pg-{:016x}", Fnv1a(joined));
}

}  // namespace qb::arrays::purity
