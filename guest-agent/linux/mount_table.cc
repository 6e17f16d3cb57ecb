#include "guest-agent/linux/mount_table.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace qb::agent {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string DecodeOctalEscapes(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
    if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) &&
        is_octal(field[i + 2]) && is_octal(field[i + 3])) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
      continue;
    }
    out.push_back(field[i]);
  }
  return out;
}

std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::string NormalizeMountPath(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

Result<std::vector<MountEntry>> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> table;
  std::size_t line_number = 0;
  while (!text.empty()) {
    auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    ++line_number;
    if (line.empty()) continue;
    auto bad = [&](std::string_view why) {
      return Error(Code::kInvalidArgument,
                   "mountinfo line " + std::to_string(line_number) + ": " + std::string(why));
    };
    auto fields = SplitSpaces(line);
    // id parent maj:min root mount-point options [optional...] - fstype source super-options
    std::size_t separator = 0;
    for (std::size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        separator = i;
        break;
      }
    }
    if (separator == 0) return bad("missing '-' separator");
    if (separator + 2 >= fields.size()) return bad("missing fields after '-'");
    MountEntry entry;
    if (!ParseNumber(fields[0], &entry.mount_id) || !ParseNumber(fields[1], &entry.parent_id)) {
      return bad("bad mount id");
    }
    auto colon = fields[2].find(':');
    if (colon == std::string_view::npos ||
        !ParseNumber(fields[2].substr(0, colon), &entry.dev_major) ||
        !ParseNumber(fields[2].substr(colon + 1), &entry.dev_minor)) {
      return bad("bad major:minor");
    }
    entry.root = DecodeOctalEscapes(fields[3]);
    entry.mount_point = NormalizeMountPath(DecodeOctalEscapes(fields[4]));
    entry.fs_type = DecodeOctalEscapes(fields[separator + 1]);
    entry.source = DecodeOctalEscapes(fields[separator + 2]);
    entry.position = table.size();
    table.push_back(std::move(entry));
  }
  return table;
}

Result<std::vector<MountEntry>> ReadMountTable(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kIoError, "cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseMountInfo(buffer.str());
}

std::optional<MountEntry> FindMount(const std::vector<MountEntry>& table,
                                    std::string_view mount_point) {
  std::string wanted = NormalizeMountPath(mount_point);
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    if (it->mount_point == wanted) return *it;
  }
  return std::nullopt;
}

}  // namespace qb::agent
