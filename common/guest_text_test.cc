#include "common/guest_text.h"

#include <gtest/gtest.h>

#include <string>

namespace qb {
namespace {

TEST(GuestText, ValidUtf8IsUnchanged) {
  const std::string text = "Debian GNU/Linux 12 \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  EXPECT_TRUE(IsValidUtf8(text));
  EXPECT_EQ(ValidUtf8(text), text);
}

TEST(GuestText, InvalidUtf8BecomesReplacementCharacters) {
  // A lone continuation byte, a truncated 3-byte sequence at the end (a hook output cut
  // mid-character), an overlong '/', a surrogate and a code point above U+10FFFF.
  EXPECT_EQ(ValidUtf8("a\x80z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(ValidUtf8("ok \xE2\x82"), "ok \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_TRUE(IsValidUtf8(ValidUtf8("\xFF\xFE\xC3")));
}

TEST(GuestText, ForgedLinesAndTerminalEscapesAreEscaped) {
  const std::string forged = "hook\r\nsnapshot X application-consistent\x1b]0;owned\x07\x1b[2J\x7f";
  const std::string out = GuestText(forged);
  EXPECT_EQ(out, "hook\\x0D\\x0Asnapshot X application-consistent\\x1B]0;owned\\x07\\x1B[2J\\x7F");
  for (char c : out) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
}

TEST(GuestText, C1LineSeparatorsAndBidiControlsAreEscaped) {
  // U+0085 (NEL, C1), U+009B (CSI, C1), U+2028, U+2029, U+202E (RLO), U+2066 (LRI), U+2069.
  const std::string in =
      "a\xC2\x85"
      "b\xC2\x9B"
      "c\xE2\x80\xA8"
      "d\xE2\x80\xA9"
      "e\xE2\x80\xAE"
      "f\xE2\x81\xA6"
      "g\xE2\x81\xA9";
  EXPECT_EQ(GuestText(in),
            "a\\u{0085}b\\u{009B}c\\u{2028}d\\u{2029}e\\u{202E}f\\u{2066}g\\u{2069}");
  // Characters next to them are kept: U+00A0, U+2030, U+2065 are not controls.
  EXPECT_EQ(GuestText("\xC2\xA0\xE2\x80\xB0"), "\xC2\xA0\xE2\x80\xB0");
}

TEST(GuestText, BackslashIsEscapedSoEscapesCannotBeForged) {
  EXPECT_EQ(GuestText("a\\x1B"), "a\\\\x1B");
}

TEST(GuestText, LongTextIsCutAtACharacterBoundaryAndSaysSo) {
  std::string big(32 * 1024, 'x');
  auto out = GuestText(big, 100);
  EXPECT_EQ(out, std::string(100, 'x') + "...[32668 more bytes]");
  // A 3-byte character straddling the limit is not split; nor is an escape.
  auto euro = GuestText(std::string(99, 'a') + "\xE2\x82\xAC", 100);
  EXPECT_EQ(euro, std::string(99, 'a') + "...[3 more bytes]");
  auto esc = GuestText(std::string(98, 'a') + "\x1b", 100);
  EXPECT_EQ(esc, std::string(98, 'a') + "...[1 more bytes]");
  EXPECT_TRUE(IsValidUtf8(GuestText(std::string(5000, '\xE2'))));
  EXPECT_LE(GuestText(std::string(5000, '\xE2')).size(), kGuestTextMaxBytes + 32);
}

TEST(GuestText, TruncateKeepsWholeCharacters) {
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
  EXPECT_EQ(TruncateUtf8("ab\xE2\x82\xAC", 4), "ab");
  EXPECT_EQ(TruncateUtf8("ab\xE2\x82\xAC", 5), "ab\xE2\x82\xAC");
  EXPECT_TRUE(IsValidUtf8(TruncateUtf8(std::string(100, 'a') + "\xF0\x9F\x98\x80", 102)));
}

}  // namespace
}  // namespace qb
