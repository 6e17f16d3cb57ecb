// qb-sqlite: the guest application the freeze hook quiesces (end-to-end test 2). Statically
// linked with Debian's libsqlite3.a, since the guest has only busybox.
//
//   qb-sqlite work DB --lock FILE --status FILE [--interval-ms N]
//       SQLite in WAL mode (synchronous=FULL, no automatic checkpoints): commits one row per
//       transaction, id 1, 2, 3..., payload printf('%-200s', 'qb-row-' || id). Each commit is
//       made holding a shared flock on FILE (the application's "writes allowed" lock); after it
//       the last committed id is rewritten into the status file. Runs until SIGTERM.
//   qb-sqlite checkpoint DB --lock FILE --hold-ms N --holder-pid FILE --out FILE
//       The freeze hook's half: takes the lock exclusively (waits for the commit in flight; the
//       workload then blocks), PRAGMA wal_checkpoint(TRUNCATE) (every committed row into the
//       database file, WAL emptied), writes "last_id=N rows=M" to --out and stdout, then leaves a
//       child holding the lock for at most N ms or until SIGTERM (the thaw hook's `kill`), whose
//       PID goes to --holder-pid, and exits 0.
// Exit status: 0 ok, 1 SQLite or I/O error, 2 usage.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int Usage() {
  std::fprintf(stderr,
               "usage: qb-sqlite work DB --lock FILE --status FILE [--interval-ms N]\n"
               "       qb-sqlite checkpoint DB --lock FILE --hold-ms N --holder-pid FILE "
               "--out FILE\n");
  return 2;
}

struct Args {
  std::string mode, db, lock, status, holder_pid, out;
  long interval_ms = 20;
  long hold_ms = 10000;
};

bool Parse(int argc, char** argv, Args& a) {
  if (argc < 3) return false;
  a.mode = argv[1];
  a.db = argv[2];
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--lock") {
      a.lock = v;
    } else if (k == "--status") {
      a.status = v;
    } else if (k == "--holder-pid") {
      a.holder_pid = v;
    } else if (k == "--out") {
      a.out = v;
    } else if (k == "--interval-ms") {
      a.interval_ms = std::strtol(v, nullptr, 10);
    } else if (k == "--hold-ms") {
      a.hold_ms = std::strtol(v, nullptr, 10);
    } else {
      return false;
    }
  }
  if ((argc - 3) % 2 != 0 || a.lock.empty()) return false;
  if (a.mode == "work") return !a.status.empty();
  if (a.mode == "checkpoint") return !a.holder_pid.empty() && !a.out.empty();
  return false;
}

int SqlFail(sqlite3* db, const char* what) {
  std::fprintf(stderr, "qb-sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : "open failed");
  return 1;
}

bool Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "qb-sqlite: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    return false;
  }
  return true;
}

bool WriteFile(const std::string& path, const std::string& text) {
  // Rewritten in place (tmpfs): a reader sees the old or the new short line.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

int OpenLock(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) std::fprintf(stderr, "qb-sqlite: %s: %s\n", path.c_str(), std::strerror(errno));
  return fd;
}

bool Flock(int fd, int op) {
  while (::flock(fd, op) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

int Work(const Args& a) {
  int lock = OpenLock(a.lock);
  if (lock < 0) return 1;
  sqlite3* db = nullptr;
  if (sqlite3_open(a.db.c_str(), &db) != SQLITE_OK) return SqlFail(db, "open");
  sqlite3_busy_timeout(db, 60000);
  if (!Exec(db, "PRAGMA journal_mode=WAL") || !Exec(db, "PRAGMA synchronous=FULL") ||
      !Exec(db, "PRAGMA wal_autocheckpoint=0") ||
      !Exec(db, "CREATE TABLE IF NOT EXISTS rows(id INTEGER PRIMARY KEY, payload TEXT NOT NULL)"))
    return 1;
  sqlite3_stmt* insert = nullptr;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO rows(payload) VALUES (printf('%-200s', 'qb-row-' || "
                         "(SELECT IFNULL(MAX(id), 0) + 1 FROM rows)))",
                         -1, &insert, nullptr) != SQLITE_OK)
    return SqlFail(db, "prepare");
  std::printf("QB-SQLITE: working on %s\n", a.db.c_str());
  std::fflush(stdout);
  auto last_report = std::chrono::steady_clock::now();
  long long last = 0;
  while (!g_stop) {
    if (!Flock(lock, LOCK_SH)) return 1;
    int rc = sqlite3_step(insert);
    sqlite3_reset(insert);
    if (rc != SQLITE_DONE) return SqlFail(db, "insert");
    last = sqlite3_last_insert_rowid(db);
    if (!WriteFile(a.status, std::to_string(last) + "\n")) return 1;
    Flock(lock, LOCK_UN);
    auto now = std::chrono::steady_clock::now();
    if (now - last_report >= std::chrono::seconds(5)) {
      std::printf("QB-SQLITE: committed %lld\n", last);
      std::fflush(stdout);
      last_report = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);
  std::printf("QB-SQLITE: stopped at %lld\n", last);
  return 0;
}

int Checkpoint(const Args& a) {
  int lock = OpenLock(a.lock);
  if (lock < 0) return 1;
  if (!Flock(lock, LOCK_EX)) return 1;
  sqlite3* db = nullptr;
  if (sqlite3_open(a.db.c_str(), &db) != SQLITE_OK) return SqlFail(db, "open");
  sqlite3_busy_timeout(db, 10000);
  // Reading the journal mode opens the database (a checkpoint on an unopened connection is a
  // no-op reported as -1 frames).
  if (!Exec(db, "PRAGMA journal_mode")) return 1;
  int wal_frames = -1, checkpointed = -1;
  if (sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE, &wal_frames,
                                &checkpointed) != SQLITE_OK)
    return SqlFail(db, "wal_checkpoint(TRUNCATE)");
  if (wal_frames != 0 || checkpointed != 0) {  // TRUNCATE leaves an empty log: both are 0
    std::fprintf(stderr, "qb-sqlite: checkpoint incomplete: log %d frames, %d checkpointed\n",
                 wal_frames, checkpointed);
    return 1;
  }
  sqlite3_stmt* q = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT IFNULL(MAX(id), 0), COUNT(*) FROM rows", -1, &q, nullptr) !=
          SQLITE_OK ||
      sqlite3_step(q) != SQLITE_ROW)
    return SqlFail(db, "count");
  std::string line = "last_id=" + std::to_string(sqlite3_column_int64(q, 0)) +
                     " rows=" + std::to_string(sqlite3_column_int64(q, 1)) + "\n";
  sqlite3_finalize(q);
  sqlite3_close(db);
  if (!WriteFile(a.out, line)) return 1;
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);

  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    // The holder: keeps the exclusive lock (inherited fd) until SIGTERM or --hold-ms.
    ::setsid();
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(a.hold_ms);
    while (!g_stop && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::_exit(0);
  }
  return WriteFile(a.holder_pid, std::to_string(child) + "\n") ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!Parse(argc, argv, a)) return Usage();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  return a.mode == "work" ? Work(a) : Checkpoint(a);
}
