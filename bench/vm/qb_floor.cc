// qb-floor PORT MOUNT: the benchmark's floor in the guest. A minimal line protocol on a
// virtio-serial port, as fast as the channel allows: FREEZE -> FIFREEZE on MOUNT, "FROZEN";
// THAW -> FITHAW, "THAWED"; PING -> "PONG"; errors "ERROR <what>: <strerror>". No lease, no
// hooks, no process per request (the rig's shell responder forks busybox fsfreeze each time).
// With no host connected a read on the port returns end-of-file at once: sleep, do not spin.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

void Reply(int port, const std::string& line) {
  std::string out = line + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::write(port, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the host went away: the reply is lost, as on any channel
    done += static_cast<size_t>(n);
  }
}

std::string Error(const char* what) {
  return std::string("ERROR ") + what + ": " + std::strerror(errno);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: qb-floor PORT MOUNT\n");
    return 2;
  }
  int port = ::open(argv[1], O_RDWR | O_CLOEXEC);
  if (port < 0) {
    std::perror(argv[1]);
    return 1;
  }
  int mnt = ::open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mnt < 0) {
    std::perror(argv[2]);
    return 1;
  }
  std::string buf;
  char chunk[512];
  for (;;) {
    ssize_t n = ::read(port, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::usleep(50000);
      continue;
    }
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line == "FREEZE") {
        Reply(port, ::ioctl(mnt, FIFREEZE, 0) == 0 ? "FROZEN" : Error("FIFREEZE"));
      } else if (line == "THAW") {
        Reply(port, ::ioctl(mnt, FITHAW, 0) == 0 ? "THAWED" : Error("FITHAW"));
      } else if (line == "PING") {
        Reply(port, "PONG");
      } else if (!line.empty()) {
        Reply(port, "ERROR unknown request " + line);
      }
    }
  }
}
