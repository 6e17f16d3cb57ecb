// Text that came from a guest, made safe for where the host shows it.
//
// A guest is not trusted (DESIGN.md). Its agent version, OS and host names, writer and volume
// names and states, reasons and error messages reach quiescectl's terminal output, its JSON and
// the daemon's log. Two steps keep them from forging lines, retitling a terminal, hiding text
// behind bidi overrides or breaking a JSON parser:
//   1. ValidUtf8() at the trust boundary (the agent-message codec): invalid UTF-8 becomes
//      U+FFFD. Nothing is rejected for it (an honest agent may cut a hook's output
//      mid-character, and a rejected Frozen would leave the guest frozen until its lease).
//   2. GuestText() at every sink: one bounded line with every control and reordering
//      character escaped.
// No allocation beyond the returned string; work is linear in the input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qb {

// The longest GuestText() result by default: long enough for any honest name, state or
// message, short enough that one guest field cannot flood a log line or a terminal.
inline constexpr std::size_t kGuestTextMaxBytes = 1024;

// `text` with every byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequence) replaced by
// U+FFFD. Valid text is returned unchanged.
std::string ValidUtf8(std::string_view text);

// True when `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

// At most the first `max_bytes` bytes of `text`, cut at a character boundary when `text` is
// valid UTF-8 (for keeping a bounded copy of guest text; no escaping).
std::string TruncateUtf8(std::string_view text, std::size_t max_bytes);

// `text` (any bytes) as one printable line of valid UTF-8 of at most `max_bytes` bytes plus a
// short "...[N more bytes]" marker when cut:
//   - invalid UTF-8 becomes U+FFFD;
//   - C0 controls (CR, LF, ESC, ...) and DEL become \xNN; a backslash becomes \\ (so an
//     escape in the output always means the guest sent that character);
//   - C1 controls (U+0080-009F), U+2028/2029, the bidi embeddings/overrides U+202A-202E and
//     isolates U+2066-2069 become \u{NNNN};
//   - the cut never splits a character or an escape.
std::string GuestText(std::string_view text, std::size_t max_bytes = kGuestTextMaxBytes);

}  // namespace qb
