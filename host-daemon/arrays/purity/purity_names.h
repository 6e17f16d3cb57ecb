// Pure-specific naming: snapshot suffixes derived from job keys, and the NAA / WWID form of a
// FlashArray volume's serial. Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qb::arrays::purity {

// Pure's rule for a snapshot suffix: 1..63 characters from letters, digits and '-', starting and
// ending with a letter or digit. Names on the array are case-insensitive.
inline constexpr std::size_t kMaxSuffixLength = 63;

// True when `suffix` satisfies Pure's suffix rule.
bool IsValidSuffix(std::string_view suffix);

// The snapshot suffix for a job key (which must pass ValidateJobKey(); the caller checks).
// Deterministic across restarts and injective: "qb-" followed by the key with every character
// outside [a-z0-9] escaped as '-' + code ('A'..'Z' -> "-a".."-z", '_' -> "-0", '.' -> "-1"), so
// two keys that differ only in case (the array ignores case) still get distinct suffixes.
// When that form exceeds 63 characters the suffix is "qb-h-9" + 16 hex digits of a 64-bit FNV-1a
// hash of the key (deterministic; "-9" is no escape, so it never equals an escaped suffix;
// JobKeyOfSuffix() cannot invert it).
std::string SuffixForJobKey(std::string_view job_key);

// Inverse of SuffixForJobKey for the escaped form. "" for a hashed suffix or a name this product
// did not make.
std::string JobKeyOfSuffix(std::string_view suffix);

// The serial (24 upper-case hex digits, as the array reports `serial`) that a host-side LUN
// identifier names, or nullopt when the identifier is not a FlashArray NAA. Accepts, in any case:
//   "624a9370" + serial                     (NAA 6 with Pure's IEEE OUI 24a937, as libvirt's <wwn>)
//   "0x624a9370" + serial, "naa.624a9370…"  (by-id wwn-0x…, VMware-style)
//   "3624a9370" + serial                    (Linux WWID: SCSI designator type 3 + NAA)
//   "/dev/disk/by-id/wwn-0x624a9370…", "/dev/disk/by-id/scsi-3624a9370…",
//   "/dev/disk/by-id/dm-uuid-mpath-3624a9370…"  (basename is parsed)
std::optional<std::string> SerialFromLunId(std::string_view lun_id);

// "624a9370" + lower-case serial: the NAA a host sees in VPD page 0x83 for this volume.
std::string NaaOfSerial(std::string_view serial);

// The protection group that holds exactly `volume_names` (order-insensitive): "qb-pg-" + 16 hex
// digits of a hash of the sorted, lower-cased names. The backend interface does not pass the VM
// name, so the group is named after its member set: a changed set is a different group.
std::string ProtectionGroupNameFor(std::vector<std::string> volume_names);

}  // namespace qb::arrays::purity
