#include "common/guest_text.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace qb {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at text[i] and its code point, or 0 when the bytes
// there do not start one (Unicode table 3-7).
std::size_t SequenceAt(std::string_view text, std::size_t i, char32_t* cp) {
  auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  const std::uint8_t b0 = byte(i);
  const std::size_t left = text.size() - i;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  std::size_t n;
  std::uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (left < n) return 0;
  const std::uint8_t b1 = byte(i + 1);
  if (b1 < lo || b1 > hi) return 0;
  char32_t c = b0 & (0x7F >> n);
  c = (c << 6) | (b1 & 0x3F);
  for (std::size_t k = 2; k < n; ++k) {
    const std::uint8_t bk = byte(i + k);
    if (bk < 0x80 || bk > 0xBF) return 0;
    c = (c << 6) | (bk & 0x3F);
  }
  *cp = c;
  return n;
}

bool NeedsEscape(char32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  char32_t cp;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = SequenceAt(text, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ValidUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  char32_t cp;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = SequenceAt(text, i, &cp);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string TruncateUtf8(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t end = max_bytes;
  // Back up over continuation bytes to the start of the character that does not fit.
  while (end > 0 && (static_cast<std::uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

std::string GuestText(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 24);
  char32_t cp;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t n = SequenceAt(text, i, &cp);
    std::string piece;
    if (n == 0) {
      piece = kReplacement;
      n = 1;
    } else if (cp == U'\\') {
      piece = "\\\\";
    } else if (NeedsEscape(cp)) {
      char buf[16];
      if (cp < 0x80)
        std::snprintf(buf, sizeof(buf), "\\x%02X", static_cast<unsigned>(cp));
      else
        std::snprintf(buf, sizeof(buf), "\\u{%04X}", static_cast<unsigned>(cp));
      piece = buf;
    } else {
      piece.assign(text.substr(i, n));
    }
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += n;
  }
  if (i < text.size()) out += "...[" + std::to_string(text.size() - i) + " more bytes]";
  return out;
}

}  // namespace qb
