#include "host-daemon/catalog/sqlite_handle.h"

namespace qb::catalog {

Status LastError(sqlite3* db, std::string_view context) {
  const int code = sqlite3_extended_errcode(db);
  std::string message = std::string(context) + ": " + sqlite3_errmsg(db);
  switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
      return Error(Code::kConflict, std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(Code::kBusy, std::move(message));
    default:
      return Error(Code::kIoError, std::move(message));
  }
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK) {
    status_ = LastError(db_, "prepare");
  }
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::Fail(const char* what) {
  if (status_.ok()) status_ = LastError(db_, what);
}

Statement& Statement::Bind(int index, int64_t value) {
  if (status_.ok() && sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) Fail("bind");
  return *this;
}

Statement& Statement::Bind(int index, std::string_view value) {
  if (status_.ok() && sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                                        SQLITE_TRANSIENT) != SQLITE_OK) {
    Fail("bind");
  }
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (status_.ok() && sqlite3_bind_null(stmt_, index) != SQLITE_OK) Fail("bind");
  return *this;
}

Statement& Statement::BindOptional(int index, const std::optional<std::string>& value) {
  return value ? Bind(index, std::string_view(*value)) : BindNull(index);
}

bool Statement::Step() {
  if (!status_.ok()) return false;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) Fail("step");
  return false;
}

Status Statement::Run() {
  while (Step()) {
  }
  return status_;
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Status Exec(sqlite3* db, std::string_view sql) {
  char* error = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    Status status = LastError(db, "exec");
    return Error(status.code(), "exec: " + message);
  }
  return Status::Ok();
}

Transaction::Transaction(sqlite3* db) : db_(db) {
  status_ = Exec(db_, "BEGIN IMMEDIATE");
  open_ = status_.ok();
}

Transaction::~Transaction() {
  if (open_) (void)Exec(db_, "ROLLBACK");
}

Status Transaction::Commit() {
  if (!open_) return status_.ok() ? Error(Code::kInternal, "transaction not open") : status_;
  open_ = false;
  return Exec(db_, "COMMIT");
}

}  // namespace qb::catalog
