#include "host-daemon/arrays/exec/exec_backend.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "host-daemon/arrays/exec/script_runner.h"

namespace qb::arrays::exec {
namespace {

namespace json = boost::json;
using std::chrono::steady_clock;

// Error codes a script may answer with, and what they become.
Code CodeFromScript(std::string_view code) {
  if (code == "not-found") return Code::kNotFound;
  if (code == "unsupported") return Code::kUnsupported;
  if (code == "timeout") return Code::kTimeout;
  if (code == "conflict") return Code::kConflict;
  if (code == "invalid-argument") return Code::kInvalidArgument;
  if (code == "busy") return Code::kBusy;
  if (code == "partial") return Code::kPartial;
  return Code::kArrayError;
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

json::object LunJson(const LunSpec& lun) {
  json::object o;
  o["volume"] = lun.volume;
  o["wwn"] = lun.wwn;
  return o;
}

json::object SnapshotJson(const SnapshotRecord& s) {
  json::object o;
  o["volume"] = s.lun;
  o["array_name"] = s.array_name;
  o["job_key"] = s.job_key;
  return o;
}

const json::string* StringField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? &it->value().get_string() : nullptr;
}

class ExecBackend final : public ArrayBackend {
 public:
  explicit ExecBackend(ExecOptions options) : options_(std::move(options)) {}

  // Runs one operation. OK answers come back as their object; error answers, exit codes,
  // garbage and timeouts become Status values naming the script and operation.
  Result<json::object> Call(std::string_view op, json::object request,
                            steady_clock::time_point deadline) const {
    request["version"] = kExecProtocolVersion;
    request["op"] = op;
    const std::string context =
        "exec backend '" + options_.name + "' (" + options_.script + ") " + std::string(op);
    // Checked before every run too: a script that became writable by others since startup is
    // not run as root.
    if (Status trusted = CheckTrustedProgram(options_.script); !trusted.ok()) {
      return trusted.WithContext(context + ": refusing to run the script");
    }
    auto run = RunScript(options_.script, ScriptEnvironment(), json::serialize(request) + "\n",
                         deadline, kMaxAnswerBytes, kMaxStderrBytes);
    if (!run.ok()) return run.status().WithContext(context);
    const std::string stderr_text = Trimmed(run->stderr_text);
    auto with_stderr = [&](std::string message) {
      if (!stderr_text.empty()) message += "; stderr: " + stderr_text;
      return message;
    };
    if (run->stdout_truncated) {
      return Error(Code::kProtocolError, with_stderr(context + ": answer larger than " +
                                                     std::to_string(kMaxAnswerBytes) + " bytes"));
    }
    boost::system::error_code ec;
    json::value answer = json::parse(run->stdout_text, ec);
    if (ec || !answer.is_object()) {
      if (run->exit_code != 0) {
        return Error(Code::kArrayError,
                     with_stderr(context + ": exit status " + std::to_string(run->exit_code)));
      }
      return Error(Code::kProtocolError,
                   with_stderr(context + ": answer is not one JSON object" +
                               (ec ? " (" + ec.message() + ")" : std::string())));
    }
    json::object& object = answer.get_object();
    auto ok = object.find("ok");
    if (ok == object.end() || !ok->value().is_bool()) {
      return Error(Code::kProtocolError, with_stderr(context + ": answer has no boolean \"ok\""));
    }
    if (!ok->value().get_bool()) {
      Code code = Code::kArrayError;
      std::string message = "script reported an error";
      if (auto error = object.find("error"); error != object.end() && error->value().is_object()) {
        const json::object& e = error->value().get_object();
        if (const auto* c = StringField(e, "code")) code = CodeFromScript(*c);
        if (const auto* m = StringField(e, "message")) message = std::string(*m);
      }
      return Error(code, with_stderr(context + ": " + message));
    }
    if (run->exit_code != 0) {
      return Error(Code::kArrayError, with_stderr(context + ": answered ok but exit status " +
                                                  std::to_string(run->exit_code)));
    }
    return std::move(object);
  }

  Status Probe() {
    auto answer = Call("capabilities", {}, steady_clock::now() + options_.timeout);
    if (!answer.ok()) return answer.status();
    auto caps = answer->find("capabilities");
    if (caps == answer->end() || !caps->value().is_object()) {
      return Error(Code::kProtocolError, "exec backend '" + options_.name +
                                             "': capabilities answer has no \"capabilities\"");
    }
    const json::object& c = caps->value().get_object();
    auto flag = [&](std::string_view key) {
      auto it = c.find(key);
      return it != c.end() && it->value().is_bool() && it->value().get_bool();
    };
    capabilities_ = {
        .atomic_group = flag("atomic_group"), .clone = flag("clone"), .rollback = flag("rollback")};
    return Status::Ok();
  }

  const std::string& name() const override { return options_.name; }
  Capabilities capabilities() const override { return capabilities_; }

  Status Resolve(const LunSpec& lun) override {
    json::object request;
    request["lun"] = LunJson(lun);
    return Call("resolve", std::move(request), Deadline()).status();
  }

  Result<PrepareReport> Prepare(const std::vector<LunSpec>& luns,
                                std::chrono::milliseconds budget) override {
    json::object request;
    request["luns"] = LunsJson(luns);
    request["budget_ms"] = budget.count();
    auto answer = Call("prepare", std::move(request), Deadline());
    if (!answer.ok()) return answer.status();
    PrepareReport report;
    if (auto it = answer->find("projected_cut_ms");
        it != answer->end() && it->value().is_int64() && it->value().get_int64() >= 0) {
      report.projected_cut = std::chrono::milliseconds(it->value().get_int64());
    }
    if (auto it = answer->find("warnings"); it != answer->end() && it->value().is_array()) {
      for (const auto& w : it->value().get_array()) {
        if (w.is_string()) report.warnings.emplace_back(w.get_string());
      }
    }
    for (const auto& lun : luns) report.extent_counts.emplace_back(lun.volume, 0);
    if (report.projected_cut > budget) {
      return Error(Code::kTimeout, "exec backend '" + options_.name + "': projected cut " +
                                       std::to_string(report.projected_cut.count()) +
                                       " ms exceeds the budget of " +
                                       std::to_string(budget.count()) + " ms");
    }
    return report;
  }

  Result<std::vector<SnapshotRecord>> Snapshot(const std::vector<LunSpec>& luns,
                                               const std::string& job_key,
                                               steady_clock::time_point deadline) override {
    QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
    if (steady_clock::now() >= deadline) {
      return Error(Code::kTimeout, "exec snapshot deadline already passed");
    }
    json::object request;
    request["job_key"] = job_key;
    request["luns"] = LunsJson(luns, job_key);
    request["deadline_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now())
            .count();
    const auto run_deadline = std::min(deadline, Deadline());
    auto answer = Call("snapshot", std::move(request), run_deadline);
    Result<std::vector<SnapshotRecord>> records =
        answer.ok() ? ParseSnapshots(*answer, job_key, &luns) : answer.status();
    if (records.ok()) return records;
    return RemoveLeftovers(luns, job_key, records.status());
  }

  Result<std::vector<SnapshotRecord>> FindByKey(const std::vector<LunSpec>& luns,
                                                const std::string& job_key) override {
    QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
    json::object request;
    request["job_key"] = job_key;
    request["luns"] = LunsJson(luns, job_key);
    auto answer = Call("find", std::move(request), Deadline());
    if (!answer.ok()) return answer.status();
    return ParseSnapshots(*answer, job_key, nullptr);
  }

  Result<std::vector<SnapshotRecord>> List(const LunSpec& lun) override {
    json::object request;
    request["lun"] = LunJson(lun);
    auto answer = Call("list", std::move(request), Deadline());
    if (!answer.ok()) return answer.status();
    return ParseSnapshots(*answer, "", nullptr);
  }

  Status Remove(const SnapshotRecord& snapshot) override {
    json::object request;
    request["snapshot"] = SnapshotJson(snapshot);
    auto answer = Call("remove", std::move(request), Deadline());
    if (!answer.ok() && answer.status().code() == Code::kNotFound) return Status::Ok();
    return answer.status();
  }

  Result<std::string> Clone(const SnapshotRecord& snapshot, const std::string& new_name) override {
    if (!capabilities_.clone) {
      return Error(Code::kUnsupported, "exec backend '" + options_.name + "' cannot clone");
    }
    json::object request;
    request["snapshot"] = SnapshotJson(snapshot);
    request["new_name"] = new_name;
    auto answer = Call("clone", std::move(request), Deadline());
    if (!answer.ok()) return answer.status();
    const auto* volume = StringField(*answer, "volume");
    if (volume == nullptr) {
      return Error(Code::kProtocolError, "exec clone answer has no \"volume\" string");
    }
    return std::string(*volume);
  }

  Status Rollback(const SnapshotRecord& snapshot) override {
    if (!capabilities_.rollback) {
      return Error(Code::kUnsupported, "exec backend '" + options_.name + "' cannot roll back");
    }
    json::object request;
    request["snapshot"] = SnapshotJson(snapshot);
    return Call("rollback", std::move(request), Deadline()).status();
  }

 private:
  steady_clock::time_point Deadline() const { return steady_clock::now() + options_.timeout; }

  // Each LUN with the snapshot name the script must use (names derive only from key + LUN).
  static json::array LunsJson(const std::vector<LunSpec>& luns, const std::string& job_key = "") {
    json::array array;
    for (const auto& lun : luns) {
      json::object o = LunJson(lun);
      if (!job_key.empty()) o["snapshot_name"] = SnapshotName(job_key, lun.volume);
      array.push_back(std::move(o));
    }
    return array;
  }

  // Parses "snapshots": [{volume, array_name, created?}]. With `expected`, the answer must
  // cover exactly those LUNs (returned in their order).
  Result<std::vector<SnapshotRecord>> ParseSnapshots(const json::object& answer,
                                                     const std::string& job_key,
                                                     const std::vector<LunSpec>* expected) const {
    auto it = answer.find("snapshots");
    if (it == answer.end() || !it->value().is_array()) {
      return Error(Code::kProtocolError,
                   "exec backend '" + options_.name + "': answer has no \"snapshots\" array");
    }
    std::vector<SnapshotRecord> records;
    for (const auto& item : it->value().get_array()) {
      if (!item.is_object()) return Error(Code::kProtocolError, "snapshot entry is not an object");
      const json::object& o = item.get_object();
      const auto* volume = StringField(o, "volume");
      const auto* array_name = StringField(o, "array_name");
      if (volume == nullptr || array_name == nullptr || array_name->empty()) {
        return Error(Code::kProtocolError, "snapshot entry needs \"volume\" and \"array_name\"");
      }
      SnapshotRecord record{.lun = std::string(*volume),
                            .array_name = std::string(*array_name),
                            .job_key = job_key,
                            .backend = options_.name,
                            .created = std::chrono::system_clock::now()};
      if (auto created = o.find("created_unix");
          created != o.end() && created->value().is_int64()) {
        record.created = std::chrono::system_clock::time_point(
            std::chrono::seconds(created->value().get_int64()));
      }
      if (record.job_key.empty()) {
        if (const auto* key = StringField(o, "job_key")) record.job_key = std::string(*key);
      }
      records.push_back(std::move(record));
    }
    if (expected == nullptr) return records;
    std::vector<SnapshotRecord> ordered;
    for (const auto& lun : *expected) {
      auto found = std::find_if(records.begin(), records.end(),
                                [&](const SnapshotRecord& r) { return r.lun == lun.volume; });
      if (found == records.end()) {
        return Error(Code::kProtocolError, "exec backend '" + options_.name +
                                               "': snapshot answer misses LUN " + lun.volume);
      }
      ordered.push_back(*found);
    }
    return ordered;
  }

  // After a failed snapshot: ask the script what the key created and remove it, so the call
  // stays all-or-nothing. kPartial when leftovers remain (FindByKey will find them later).
  Status RemoveLeftovers(const std::vector<LunSpec>& luns, const std::string& job_key,
                         const Status& failure) {
    auto found = FindByKey(luns, job_key);
    if (!found.ok()) {
      return Error(Code::kPartial, failure.ToString() + "; could not check for leftovers: " +
                                       found.status().ToString());
    }
    std::string leftovers;
    for (const auto& record : *found) {
      if (!Remove(record).ok()) leftovers += " " + record.array_name;
    }
    if (!leftovers.empty()) {
      return Error(Code::kPartial, failure.ToString() + "; could not remove:" + leftovers);
    }
    return failure;
  }

  const ExecOptions options_;
  Capabilities capabilities_;
};

}  // namespace

Result<std::unique_ptr<ArrayBackend>> MakeExecBackend(const ExecOptions& options) {
  if (options.script.empty() || options.script.front() != '/') {
    return Error(Code::kInvalidArgument, "exec backend '" + options.name + "': script '" +
                                             options.script + "' is not an absolute path");
  }
  if (Status trusted = CheckTrustedProgram(options.script); !trusted.ok()) {
    return trusted.WithContext("exec backend '" + options.name + "': script '" + options.script +
                               "' refused");
  }
  if (::access(options.script.c_str(), X_OK) != 0) {
    return Error(Code::kInvalidArgument, "exec backend '" + options.name + "': script '" +
                                             options.script + "' is not executable");
  }
  if (options.timeout.count() <= 0) {
    return Error(Code::kInvalidArgument,
                 "exec backend '" + options.name + "': timeout must be > 0");
  }
  auto backend = std::make_unique<ExecBackend>(options);
  QB_RETURN_IF_ERROR(backend->Probe());
  return std::unique_ptr<ArrayBackend>(std::move(backend));
}

}  // namespace qb::arrays::exec
