#include "host-daemon/arrays/rbd/image_spec.h"

#include <algorithm>

namespace qb::arrays::rbd {
namespace {

constexpr std::string_view kGroupRefPrefix = "group:";
constexpr std::size_t kMaxNameLength = 255;

Status CheckPart(std::string_view part, std::string_view what, std::string_view whole) {
  if (part.empty()) {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(whole) + "': empty " + std::string(what));
  }
  if (part.size() > kMaxNameLength) {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(whole) + "': " + std::string(what) + " longer than 255 bytes");
  }
  for (char c : part) {
    if (c == '@' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Error(Code::kInvalidArgument, "'" + std::string(whole) + "': " + std::string(what) +
                                               " holds '@' or a control character");
    }
  }
  return Status::Ok();
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

std::string JoinPath(const std::string& pool, const std::string& ns, const std::string& name) {
  return ns.empty() ? pool + "/" + name : pool + "/" + ns + "/" + name;
}

}  // namespace

std::string ImageSpec::ToString() const { return JoinPath(pool, ns, name); }

Result<ImageSpec> ParseImageSpec(std::string_view volume) {
  const std::vector<std::string_view> parts = Split(volume, '/');
  if (parts.size() != 2 && parts.size() != 3) {
    return Error(Code::kInvalidArgument,
                 "rbd volume '" + std::string(volume) + "' is not pool/image or pool/ns/image");
  }
  QB_RETURN_IF_ERROR(CheckPart(parts.front(), "pool", volume));
  QB_RETURN_IF_ERROR(CheckPart(parts.back(), "image name", volume));
  if (parts.size() == 3) QB_RETURN_IF_ERROR(CheckPart(parts[1], "namespace", volume));
  ImageSpec spec;
  spec.pool = std::string(parts.front());
  if (parts.size() == 3) spec.ns = std::string(parts[1]);
  spec.name = std::string(parts.back());
  return spec;
}

GroupSpec GroupFor(std::vector<ImageSpec> images) {
  std::sort(images.begin(), images.end());
  const ImageSpec& first = images.front();
  return GroupSpec{first.pool, first.ns, "qb-" + first.name};
}

std::string SnapshotRef::ToString() const {
  std::string text = kind == Kind::kGroup ? std::string(kGroupRefPrefix) : std::string();
  return text + JoinPath(pool, ns, object) + "@" + snap;
}

Result<SnapshotRef> ParseSnapshotRef(std::string_view array_name) {
  SnapshotRef ref;
  std::string_view rest = array_name;
  if (rest.substr(0, kGroupRefPrefix.size()) == kGroupRefPrefix) {
    ref.kind = SnapshotRef::Kind::kGroup;
    rest.remove_prefix(kGroupRefPrefix.size());
  }
  const std::size_t at = rest.find('@');
  if (at == std::string_view::npos) {
    return Error(Code::kInvalidArgument,
                 "rbd snapshot name '" + std::string(array_name) + "' has no '@'");
  }
  Result<ImageSpec> object = ParseImageSpec(rest.substr(0, at));
  if (!object.ok()) return object.status().WithContext("rbd snapshot name");
  const std::string_view snap = rest.substr(at + 1);
  QB_RETURN_IF_ERROR(CheckPart(snap, "snapshot name", array_name));
  ref.pool = std::move(object->pool);
  ref.ns = std::move(object->ns);
  ref.object = std::move(object->name);
  ref.snap = std::string(snap);
  return ref;
}

}  // namespace qb::arrays::rbd
