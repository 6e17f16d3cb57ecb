// RAII for SQLite handles, private to the catalog. Only this folder includes <sqlite3.h>.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace qb::catalog {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;

// One prepared statement; finalized on destruction. Bind indexes are 1-based like SQLite's.
// Borrowed: `db` must outlive the statement.
class Statement {
 public:
  // Prepares `sql` on `db`. Check status() before use.
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  const Status& status() const { return status_; }

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& BindNull(int index);
  Statement& BindOptional(int index, const std::optional<std::string>& value);

  // Steps once. true: a row is available; false: done. Errors land in status().
  bool Step();
  // Steps to completion (for statements that return no rows); returns status().
  Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  void Fail(const char* what);

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  Status status_;
};

// Runs `sql` (one or more statements, no results). kIoError with SQLite's message on failure.
Status Exec(sqlite3* db, std::string_view sql);

// Maps the last error on `db` to a Status: constraint violations become kConflict, busy/locked
// become kBusy, everything else kIoError.
Status LastError(sqlite3* db, std::string_view context);

// Begins a transaction (BEGIN IMMEDIATE); rolls it back on destruction unless Commit() ran.
class Transaction {
 public:
  explicit Transaction(sqlite3* db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const Status& status() const { return status_; }
  Status Commit();

 private:
  sqlite3* db_;
  Status status_;
  bool open_ = false;
};

}  // namespace qb::catalog
