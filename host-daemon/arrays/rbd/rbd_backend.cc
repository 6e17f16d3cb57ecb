#include "host-daemon/arrays/rbd/rbd_backend.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

namespace qb::arrays::rbd {
namespace {

using Clock = std::chrono::steady_clock;

// librbd calls a progress callback unconditionally; the backend has no use for progress.
int NoProgress(uint64_t, uint64_t, void*) { return 0; }

std::string PoolKey(const std::string& pool, const std::string& ns) { return pool + "/" + ns; }

// (pool id, image name): how a group lists its members.
using MemberKey = std::pair<int64_t, std::string>;

std::string Describe(const std::vector<ImageSpec>& specs) {
  std::string text;
  for (const ImageSpec& spec : specs) text += (text.empty() ? "" : ", ") + spec.ToString();
  return text;
}

}  // namespace

RbdBackend::RbdBackend(RbdConfig config) : config_(std::move(config)) {}

RbdBackend::~RbdBackend() = default;

Capabilities RbdBackend::capabilities() const {
  Capabilities caps;
  caps.atomic_group = true;
  caps.clone = true;
  caps.rollback = true;
  return caps;
}

// --- connection and handle caches ---------------------------------------------------------------

Result<std::shared_ptr<RadosCluster>> RbdBackend::Cluster() {
  std::lock_guard lock(mu_);
  if (cluster_) return cluster_;
  // Connecting under the lock makes concurrent first callers wait for one connect (bounded by
  // config_.connect_timeout) instead of each opening a connection of its own.
  Result<std::shared_ptr<RadosCluster>> cluster = RadosCluster::Connect(config_);
  if (!cluster.ok()) return cluster.status().WithContext("rbd backend '" + config_.name + "'");
  cluster_ = *cluster;
  return cluster_;
}

Result<std::shared_ptr<IoCtx>> RbdBackend::Pool(const std::string& pool, const std::string& ns) {
  Result<std::shared_ptr<RadosCluster>> cluster = Cluster();
  if (!cluster.ok()) return cluster.status();
  std::lock_guard lock(mu_);
  auto it = pools_.find(PoolKey(pool, ns));
  if (it != pools_.end()) return it->second;
  Result<std::shared_ptr<IoCtx>> ioctx = IoCtx::Open(*cluster, pool, ns);
  if (!ioctx.ok()) return ioctx.status();
  pools_.emplace(PoolKey(pool, ns), *ioctx);
  return *ioctx;
}

Result<std::shared_ptr<RbdImage>> RbdBackend::Image(const ImageSpec& spec) {
  const std::string key = spec.ToString();
  {
    std::lock_guard lock(mu_);
    auto it = images_.find(key);
    if (it != images_.end()) return it->second;
  }
  Result<std::shared_ptr<IoCtx>> ioctx = Pool(spec.pool, spec.ns);
  if (!ioctx.ok()) return ioctx.status();
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(*ioctx, spec.name, RbdImage::Mode::kReadWrite);
  if (!image.ok()) return image.status();
  std::lock_guard lock(mu_);
  return images_.emplace(key, *image).first->second;  // keeps a racing opener's handle
}

void RbdBackend::ForgetImage(const ImageSpec& spec) {
  std::shared_ptr<RbdImage> dropped;  // closed outside the lock
  std::lock_guard lock(mu_);
  auto it = images_.find(spec.ToString());
  if (it == images_.end()) return;
  dropped = std::move(it->second);
  images_.erase(it);
}

Result<std::vector<ImageSpec>> RbdBackend::ParseLuns(const std::vector<LunSpec>& luns) const {
  if (luns.empty()) return Error(Code::kInvalidArgument, "no LUNs given");
  std::vector<ImageSpec> specs;
  std::set<ImageSpec> seen;
  for (const LunSpec& lun : luns) {
    Result<ImageSpec> spec = ParseImageSpec(lun.volume);
    if (!spec.ok()) return spec.status();
    if (!seen.insert(*spec).second) {
      return Error(Code::kInvalidArgument, "rbd image '" + spec->ToString() + "' listed twice");
    }
    specs.push_back(std::move(*spec));
  }
  return specs;
}

SnapshotRecord RbdBackend::MakeRecord(const ImageSpec& lun, const SnapshotRef& ref,
                                      std::chrono::system_clock::time_point created) const {
  SnapshotRecord record;
  record.lun = lun.ToString();
  record.array_name = ref.ToString();
  record.job_key = JobKeyOfSnapshotName(ref.snap);
  record.backend = config_.name;
  record.created = created;
  return record;
}

// --- ArrayBackend
// ---------------------------------------------------------------------------------

Status RbdBackend::Resolve(const LunSpec& lun) {
  Result<ImageSpec> spec = ParseImageSpec(lun.volume);
  if (!spec.ok()) return spec.status();
  Result<std::shared_ptr<IoCtx>> ioctx = Pool(spec->pool, spec->ns);
  if (!ioctx.ok()) return ioctx.status();
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(*ioctx, spec->name, RbdImage::Mode::kReadOnly);
  return image.status();
}

Status RbdBackend::EnsureGroup(const std::vector<ImageSpec>& specs,
                               std::vector<std::string>* notes) {
  const GroupSpec group = GroupFor(specs);
  Result<std::shared_ptr<IoCtx>> group_ioctx = Pool(group.pool, group.ns);
  if (!group_ioctx.ok()) return group_ioctx.status();
  RadosCluster& cluster = (*group_ioctx)->cluster();
  Result<int64_t> group_pool_id = cluster.PoolId(group.pool);
  if (!group_pool_id.ok()) return group_pool_id.status();
  const std::string group_text = group.pool + "/" + group.name;

  // Check every image before changing anything, so a conflict leaves the array as it was.
  std::map<MemberKey, ImageSpec> wanted;
  std::vector<std::string> conflicts;
  for (const ImageSpec& spec : specs) {
    Result<int64_t> pool_id = cluster.PoolId(spec.pool);
    if (!pool_id.ok()) return pool_id.status();
    wanted.emplace(MemberKey{*pool_id, spec.name}, spec);
    Result<std::shared_ptr<IoCtx>> ioctx = Pool(spec.pool, spec.ns);
    if (!ioctx.ok()) return ioctx.status();
    // A fresh read-only handle: the group membership it reports is the array's current one.
    Result<std::shared_ptr<RbdImage>> image =
        RbdImage::Open(*ioctx, spec.name, RbdImage::Mode::kReadOnly);
    if (!image.ok()) return image.status();
    Result<std::optional<GroupRef>> current = GroupOfImage(**image);
    if (!current.ok()) return current.status();
    if (*current && !((*current)->pool == *group_pool_id && (*current)->name == group.name)) {
      Result<std::string> pool_name = cluster.PoolName((*current)->pool);
      conflicts.push_back(spec.ToString() + " is in group " +
                          (pool_name.ok() ? *pool_name : std::to_string((*current)->pool)) + "/" +
                          (*current)->name);
    }
  }
  if (!conflicts.empty()) {
    std::string message = "cannot put " + Describe(specs) + " into group " + group_text + ": ";
    for (size_t i = 0; i < conflicts.size(); ++i) message += (i ? "; " : "") + conflicts[i];
    return Error(Code::kConflict,
                 message + " (an image can be in one group only; take it out of that group)");
  }

  int rc = rbd_group_create((*group_ioctx)->get(), group.name.c_str());
  if (rc == 0) {
    notes->push_back("created rbd group " + group_text);
  } else if (rc != -EEXIST) {
    return RbdError(rc, "creating rbd group " + group_text);
  }

  Result<std::vector<GroupImage>> members = ListGroupImages(**group_ioctx, group.name);
  if (!members.ok()) return members.status();
  std::set<MemberKey> attached;
  for (const GroupImage& member : *members) {
    const MemberKey key{member.pool, member.name};
    if (wanted.count(key) != 0 && member.attached) {
      attached.insert(key);
      continue;
    }
    // Not one of this VM's images, or half-added by an interrupted call: take it out. The
    // group is the product's own (its name derives from these LUNs).
    Result<std::string> pool_name = cluster.PoolName(member.pool);
    if (!pool_name.ok()) return pool_name.status();
    Result<std::shared_ptr<IoCtx>> member_ioctx = Pool(*pool_name, group.ns);
    if (!member_ioctx.ok()) return member_ioctx.status();
    rc = rbd_group_image_remove((*group_ioctx)->get(), group.name.c_str(), (*member_ioctx)->get(),
                                member.name.c_str());
    if (rc < 0 && rc != -ENOENT) {
      return RbdError(rc, "removing " + *pool_name + "/" + member.name + " from " + group_text);
    }
    notes->push_back("removed " + *pool_name + "/" + member.name + " from rbd group " + group_text);
  }
  for (const auto& [key, spec] : wanted) {
    if (attached.count(key) != 0) continue;
    Result<std::shared_ptr<IoCtx>> ioctx = Pool(spec.pool, spec.ns);
    if (!ioctx.ok()) return ioctx.status();
    rc = rbd_group_image_add((*group_ioctx)->get(), group.name.c_str(), (*ioctx)->get(),
                             spec.name.c_str());
    if (rc < 0 && rc != -EEXIST) {
      return RbdError(rc, "adding " + spec.ToString() + " to rbd group " + group_text);
    }
    notes->push_back("added " + spec.ToString() + " to rbd group " + group_text);
  }

  members = ListGroupImages(**group_ioctx, group.name);
  if (!members.ok()) return members.status();
  std::set<MemberKey> now;
  for (const GroupImage& member : *members) {
    if (member.attached) now.insert({member.pool, member.name});
  }
  std::set<MemberKey> want_keys;
  for (const auto& entry : wanted) want_keys.insert(entry.first);
  if (now != want_keys) {
    return Error(Code::kConflict, "rbd group " + group_text +
                                      " changed while it was being set up (another client?)");
  }
  return Status::Ok();
}

Result<PrepareReport> RbdBackend::Prepare(const std::vector<LunSpec>& luns,
                                          std::chrono::milliseconds budget) {
  Result<std::vector<ImageSpec>> specs = ParseLuns(luns);
  if (!specs.ok()) return specs.status();
  PrepareReport report;
  for (const ImageSpec& spec : *specs) {
    ForgetImage(spec);  // reopen: the image may have been replaced since the last job
    Result<std::shared_ptr<RbdImage>> image = Image(spec);
    if (!image.ok()) return image.status();
    report.extent_counts.emplace_back(spec.ToString(), 0);
  }
  if (specs->size() > 1) {
    QB_RETURN_IF_ERROR(EnsureGroup(*specs, &report.warnings));
    report.projected_cut = kProjectedGroupSnapshotBase +
                           kProjectedGroupSnapshotPerImage * static_cast<int64_t>(specs->size());
  } else {
    report.projected_cut = kProjectedImageSnapshot;
  }
  if (report.projected_cut > budget) {
    return Error(Code::kTimeout, "rbd snapshot of " + Describe(*specs) + " is projected at " +
                                     std::to_string(report.projected_cut.count()) +
                                     " ms, over the budget of " + std::to_string(budget.count()) +
                                     " ms");
  }
  return report;
}

Result<std::vector<SnapshotRecord>> RbdBackend::Snapshot(const std::vector<LunSpec>& luns,
                                                         const std::string& job_key,
                                                         Clock::time_point deadline) {
  QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
  Result<std::vector<ImageSpec>> parsed = ParseLuns(luns);
  if (!parsed.ok()) return parsed.status();
  const std::vector<ImageSpec>& specs = *parsed;
  if (Clock::now() >= deadline) {
    return Error(Code::kTimeout, "deadline passed before the rbd snapshot of " + Describe(specs) +
                                     " was started; nothing was created");
  }

  // Everything from here on (a first connect and image open included, when Prepare did not run)
  // happens inside the deadline-bound call. `this` outlives the call: calls_ joins it first.
  if (specs.size() == 1) {
    const ImageSpec spec = specs.front();
    const SnapshotRef ref{SnapshotRef::Kind::kImage, spec.pool, spec.ns, spec.name,
                          SnapshotName(job_key, spec.name)};
    QB_RETURN_IF_ERROR(calls_.Run(
        job_key, "rbd snapshot " + ref.ToString(),
        [this, spec, ref] { return CutImage(spec, ref); }, deadline));
    return std::vector<SnapshotRecord>{MakeRecord(spec, ref, std::chrono::system_clock::now())};
  }
  const GroupSpec group = GroupFor(specs);
  const SnapshotRef ref{SnapshotRef::Kind::kGroup, group.pool, group.ns, group.name,
                        SnapshotName(job_key, group.name)};
  QB_RETURN_IF_ERROR(calls_.Run(
      job_key, "rbd group snapshot " + ref.ToString(),
      [this, specs, ref] { return CutGroup(specs, ref); }, deadline));
  std::vector<SnapshotRecord> records;
  const auto now = std::chrono::system_clock::now();
  for (const ImageSpec& spec : specs) records.push_back(MakeRecord(spec, ref, now));
  return records;
}

Status RbdBackend::CutImage(const ImageSpec& spec, const SnapshotRef& ref) {
  const std::string what = "rbd snapshot " + ref.ToString();
  Result<std::shared_ptr<RbdImage>> image = Image(spec);
  if (!image.ok()) {
    if (image.status().code() == Code::kNotFound) ForgetImage(spec);
    return image.status();
  }
  const int rc = rbd_snap_create2((*image)->get(), ref.snap.c_str(), RBD_SNAP_CREATE_SKIP_QUIESCE,
                                  NoProgress, nullptr);
  if (rc == 0) return Status::Ok();
  if (rc == -ENOENT) ForgetImage(spec);  // the image went away under the cached handle
  Status failure = RbdError(rc, "creating " + what);
  // A snapshot of this name existed before the call: it is not ours to remove.
  if (rc == -EEXIST) return failure;
  bool exists = false;
  if (rbd_snap_exists((*image)->get(), ref.snap.c_str(), &exists) == 0 && !exists) {
    return failure;
  }
  const int removed = rbd_snap_remove((*image)->get(), ref.snap.c_str());
  if (removed == 0 || removed == -ENOENT) return failure;
  return Error(Code::kPartial,
               failure.message() + "; the half-made snapshot " + ref.ToString() +
                   " could not be removed: " + RbdError(removed, "remove").message());
}

Status RbdBackend::CutGroup(const std::vector<ImageSpec>& specs, const SnapshotRef& ref) {
  const std::string what = "rbd group snapshot " + ref.ToString();
  Result<std::shared_ptr<IoCtx>> ioctx = Pool(ref.pool, ref.ns);
  if (!ioctx.ok()) return ioctx.status();
  std::set<MemberKey> wanted;
  for (const ImageSpec& spec : specs) {
    Result<int64_t> pool_id = (*ioctx)->cluster().PoolId(spec.pool);
    if (!pool_id.ok()) return pool_id.status();
    wanted.insert({*pool_id, spec.name});
  }
  // Nothing is created unless the group holds exactly these images: a group snapshot of a group
  // missing one would silently leave that LUN out of the cut.
  Result<std::vector<GroupImage>> members = ListGroupImages(**ioctx, ref.object);
  if (!members.ok()) {
    if (members.status().code() != Code::kNotFound) return members.status();
    return Error(Code::kConflict, what + ": the group does not exist (Prepare creates it)");
  }
  std::set<MemberKey> attached;
  for (const GroupImage& member : *members) {
    if (member.attached) attached.insert({member.pool, member.name});
  }
  if (attached != wanted) {
    return Error(Code::kConflict, what +
                                      ": the group does not hold exactly the LUNs asked for "
                                      "(Prepare sets it up); nothing was created");
  }
  const int rc = rbd_group_snap_create2((*ioctx)->get(), ref.object.c_str(), ref.snap.c_str(),
                                        RBD_SNAP_CREATE_SKIP_QUIESCE);
  Status failure;
  if (rc == 0) {
    // librbd marks a group snapshot complete only when every image's share landed.
    Result<std::vector<GroupSnap>> snaps = ListGroupSnaps(**ioctx, ref.object);
    if (!snaps.ok()) return snaps.status().WithContext(what + " (verifying)");
    const auto it = std::find_if(snaps->begin(), snaps->end(),
                                 [&](const GroupSnap& s) { return s.name == ref.snap; });
    if (it != snaps->end() && it->complete) return Status::Ok();
    failure = Error(Code::kArrayError, what + " is missing or incomplete after creation");
  } else {
    failure = RbdError(rc, "creating " + what);
    if (rc == -EEXIST) return failure;  // made before this call: not ours to remove
  }
  const int removed = rbd_group_snap_remove((*ioctx)->get(), ref.object.c_str(), ref.snap.c_str());
  if (removed == 0 || removed == -ENOENT) return failure;
  return Error(Code::kPartial, failure.message() +
                                   "; the half-made group snapshot could not be removed: " +
                                   RbdError(removed, "remove").message());
}

Result<std::vector<SnapshotRecord>> RbdBackend::ListImage(const ImageSpec& spec) {
  Result<std::shared_ptr<IoCtx>> ioctx = Pool(spec.pool, spec.ns);
  if (!ioctx.ok()) return ioctx.status();
  // A fresh read-only handle sees snapshots other clients (or a late call) made.
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(*ioctx, spec.name, RbdImage::Mode::kReadOnly);
  if (!image.ok()) return image.status();
  Result<std::vector<ImageSnap>> snaps = ListImageSnaps(**image);
  if (!snaps.ok()) return snaps.status();
  std::vector<SnapshotRecord> records;
  for (const ImageSnap& snap : *snaps) {
    if (snap.ns_type == RBD_SNAP_NAMESPACE_TYPE_USER) {
      if (JobKeyOfSnapshotName(snap.name).empty()) continue;
      records.push_back(MakeRecord(
          spec, SnapshotRef{SnapshotRef::Kind::kImage, spec.pool, spec.ns, spec.name, snap.name},
          snap.created));
    } else if (snap.ns_type == RBD_SNAP_NAMESPACE_TYPE_GROUP) {
      if (JobKeyOfSnapshotName(snap.group_snap_name).empty()) continue;
      Result<std::string> group_pool = (*ioctx)->cluster().PoolName(snap.group_pool);
      if (!group_pool.ok()) return group_pool.status();
      // librbd keeps a group in one namespace with its images.
      records.push_back(MakeRecord(spec,
                                   SnapshotRef{SnapshotRef::Kind::kGroup, *group_pool, spec.ns,
                                               snap.group_name, snap.group_snap_name},
                                   snap.created));
    }
  }
  return records;
}

Result<std::vector<SnapshotRecord>> RbdBackend::FindByKey(const std::vector<LunSpec>& luns,
                                                          const std::string& job_key) {
  QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
  Result<std::vector<ImageSpec>> specs = ParseLuns(luns);
  if (!specs.ok()) return specs.status();
  if (!calls_.WaitForKey(job_key, Clock::now() + kRbdSettleLimit)) {
    return Error(Code::kBusy,
                 "an rbd snapshot call for job " + job_key + " is still running; look again later");
  }
  std::vector<SnapshotRecord> found;
  for (const ImageSpec& spec : *specs) {
    Result<std::vector<SnapshotRecord>> records = ListImage(spec);
    if (!records.ok()) {
      if (records.status().code() == Code::kNotFound) continue;
      return records.status();
    }
    for (SnapshotRecord& record : *records) {
      if (record.job_key == job_key) found.push_back(std::move(record));
    }
  }
  return found;
}

Result<std::vector<SnapshotRecord>> RbdBackend::List(const LunSpec& lun) {
  Result<ImageSpec> spec = ParseImageSpec(lun.volume);
  if (!spec.ok()) return spec.status();
  return ListImage(*spec);
}

Status RbdBackend::Remove(const SnapshotRecord& snapshot) {
  Result<SnapshotRef> ref = ParseSnapshotRef(snapshot.array_name);
  if (!ref.ok()) return ref.status();
  Result<std::shared_ptr<IoCtx>> ioctx = Pool(ref->pool, ref->ns);
  if (!ioctx.ok()) {
    return ioctx.status().code() == Code::kNotFound ? Status::Ok() : ioctx.status();
  }
  if (ref->kind == SnapshotRef::Kind::kGroup) {
    const int rc = rbd_group_snap_remove((*ioctx)->get(), ref->object.c_str(), ref->snap.c_str());
    if (rc < 0 && rc != -ENOENT) return RbdError(rc, "removing " + ref->ToString());
    return Status::Ok();
  }
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(*ioctx, ref->object, RbdImage::Mode::kReadWrite);
  if (!image.ok()) {
    return image.status().code() == Code::kNotFound ? Status::Ok() : image.status();
  }
  int is_protected = 0;
  int rc = rbd_snap_is_protected((*image)->get(), ref->snap.c_str(), &is_protected);
  if (rc == -ENOENT) return Status::Ok();
  if (rc < 0) return RbdError(rc, "checking protection of " + ref->ToString());
  if (is_protected) {
    rc = rbd_snap_unprotect((*image)->get(), ref->snap.c_str());
    if (rc == -EBUSY) {
      return Error(Code::kConflict,
                   ref->ToString() + " has clones; remove or flatten them before the snapshot");
    }
    if (rc < 0 && rc != -EINVAL) return RbdError(rc, "unprotecting " + ref->ToString());
  }
  rc = rbd_snap_remove2((*image)->get(), ref->snap.c_str(), 0, NoProgress, nullptr);
  if (rc < 0 && rc != -ENOENT) return RbdError(rc, "removing " + ref->ToString());
  return Status::Ok();
}

Result<std::string> RbdBackend::Clone(const SnapshotRecord& snapshot, const std::string& new_name) {
  Result<SnapshotRef> ref = ParseSnapshotRef(snapshot.array_name);
  if (!ref.ok()) return ref.status();
  Result<ImageSpec> source = ParseImageSpec(snapshot.lun);
  if (!source.ok()) return source.status();
  Result<ImageSpec> target =
      new_name.find('/') == std::string::npos
          ? ParseImageSpec(source->pool + "/" + (source->ns.empty() ? "" : source->ns + "/") +
                           new_name)
          : ParseImageSpec(new_name);
  if (!target.ok()) return target.status();
  Result<std::shared_ptr<IoCtx>> source_ioctx = Pool(source->pool, source->ns);
  if (!source_ioctx.ok()) return source_ioctx.status();
  Result<std::shared_ptr<IoCtx>> target_ioctx = Pool(target->pool, target->ns);
  if (!target_ioctx.ok()) return target_ioctx.status();
  const std::string what = "cloning " + ref->ToString() + " into " + target->ToString();

  if (ref->kind == SnapshotRef::Kind::kImage) {
    Result<std::shared_ptr<RbdImage>> image =
        RbdImage::Open(*source_ioctx, source->name, RbdImage::Mode::kReadWrite);
    if (!image.ok()) return image.status().WithContext(what);
    int rc = rbd_snap_protect((*image)->get(), ref->snap.c_str());
    if (rc < 0 && rc != -EBUSY) return RbdError(rc, what + " (protecting the snapshot)");
    uint64_t features = 0;
    rc = rbd_get_features((*image)->get(), &features);
    if (rc < 0) return RbdError(rc, what + " (reading features)");
    int order = 0;
    rc = rbd_clone((*source_ioctx)->get(), source->name.c_str(), ref->snap.c_str(),
                   (*target_ioctx)->get(), target->name.c_str(), features, &order);
    if (rc < 0) return RbdError(rc, what);
    return target->ToString();
  }

  // A group snapshot: find this image's share of it and copy the data as of that snapshot.
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(*source_ioctx, source->name, RbdImage::Mode::kReadOnly);
  if (!image.ok()) return image.status().WithContext(what);
  Result<std::vector<ImageSnap>> snaps = ListImageSnaps(**image);
  if (!snaps.ok()) return snaps.status().WithContext(what);
  const auto it = std::find_if(snaps->begin(), snaps->end(), [&](const ImageSnap& snap) {
    return snap.ns_type == RBD_SNAP_NAMESPACE_TYPE_GROUP && snap.group_name == ref->object &&
           snap.group_snap_name == ref->snap;
  });
  if (it == snaps->end()) {
    return Error(Code::kNotFound, what + ": " + source->ToString() + " has no part in it");
  }
  int rc = rbd_snap_set_by_id((*image)->get(), it->id);
  if (rc < 0) return RbdError(rc, what + " (opening the snapshot)");
  rc = rbd_copy((*image)->get(), (*target_ioctx)->get(), target->name.c_str());
  if (rc < 0) return RbdError(rc, what);
  return target->ToString();
}

Status RbdBackend::Rollback(const SnapshotRecord& snapshot) {
  Result<SnapshotRef> ref = ParseSnapshotRef(snapshot.array_name);
  if (!ref.ok()) return ref.status();
  Result<std::shared_ptr<IoCtx>> ioctx = Pool(ref->pool, ref->ns);
  if (!ioctx.ok()) return ioctx.status();
  if (ref->kind == SnapshotRef::Kind::kGroup) {
    const int rc = rbd_group_snap_rollback_with_progress((*ioctx)->get(), ref->object.c_str(),
                                                         ref->snap.c_str(), NoProgress, nullptr);
    if (rc < 0) return RbdError(rc, "rolling back to " + ref->ToString());
    return Status::Ok();
  }
  // A handle of its own, closed at the end, so the exclusive lock rollback takes is released.
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(*ioctx, ref->object, RbdImage::Mode::kReadWrite);
  if (!image.ok()) return image.status().WithContext("rolling back to " + ref->ToString());
  const int rc =
      rbd_snap_rollback_with_progress((*image)->get(), ref->snap.c_str(), NoProgress, nullptr);
  if (rc < 0) return RbdError(rc, "rolling back to " + ref->ToString());
  return Status::Ok();
}

}  // namespace qb::arrays::rbd
