#include "guest-agent/linux/freeze_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/unique_fd.h"

namespace qb::agent {
namespace {

constexpr const char* kHeader = "quiesce-agent freeze record 2";
constexpr const char* kHeaderV1 = "quiesce-agent freeze record 1";  // read, never written

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Unescape(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      out += text[i + 1] == 'n' ? '\n' : text[i + 1];
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

FreezeRecordFile::FreezeRecordFile(std::string run_dir) : run_dir_(std::move(run_dir)) {}

Status FreezeRecordFile::Write(const FreezeRecord& record) const {
  // On the freeze path: plain system calls (no iostream), the run dir created only when the
  // file cannot be opened. Written whole to a temp file, then renamed: a reader never sees half.
  std::string text = std::string(kHeader) + "\n";
  text += "job " + Escape(record.job_id) + "\n";
  for (const auto& hook : record.hooks_started) text += "hook-started " + Escape(hook) + "\n";
  for (const auto& hook : record.hooks_done) text += "hook-done " + Escape(hook) + "\n";
  for (const auto& mount : record.mount_points) text += "mount " + Escape(mount) + "\n";
  const std::string temp = path() + ".tmp";
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  int fd = ::open(temp.c_str(), flags, 0600);
  if (fd < 0 && errno == ENOENT) {
    if (::mkdir(run_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
      return Error(Code::kIoError, "run dir " + run_dir_ + ": " + std::strerror(errno));
    }
    fd = ::open(temp.c_str(), flags, 0600);
  }
  if (fd < 0) return Error(Code::kIoError, "cannot write " + temp + ": " + std::strerror(errno));
  UniqueFd owned(fd);
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error(Code::kIoError, "cannot write " + temp + ": " + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  owned.Reset();
  if (std::rename(temp.c_str(), path().c_str()) != 0) {
    return Error(Code::kIoError, "rename " + temp + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::optional<FreezeRecord>> FreezeRecordFile::Read() const {
  std::ifstream in(path());
  if (!in) {
    if (errno == ENOENT) return std::optional<FreezeRecord>();
    return Error(Code::kIoError, "cannot read " + path());
  }
  std::string line;
  if (!std::getline(in, line) || (line != kHeader && line != kHeaderV1)) {
    return Error(Code::kInvalidArgument, path() + ": not a freeze record");
  }
  FreezeRecord record;
  while (std::getline(in, line)) {
    if (line.rfind("job ", 0) == 0) {
      record.job_id = Unescape(std::string_view(line).substr(4));
    } else if (line.rfind("hook-started ", 0) == 0) {
      record.hooks_started.push_back(Unescape(std::string_view(line).substr(13)));
    } else if (line.rfind("hook-done ", 0) == 0) {
      record.hooks_done.push_back(Unescape(std::string_view(line).substr(10)));
    } else if (line.rfind("mount ", 0) == 0) {
      record.mount_points.push_back(Unescape(std::string_view(line).substr(6)));
    } else if (!line.empty()) {
      return Error(Code::kInvalidArgument, path() + ": unexpected line '" + line + "'");
    }
  }
  return std::optional<FreezeRecord>(std::move(record));
}

Status FreezeRecordFile::Remove() const {
  if (std::remove(path().c_str()) != 0 && errno != ENOENT) {
    return Error(Code::kIoError, "remove " + path() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace qb::agent
