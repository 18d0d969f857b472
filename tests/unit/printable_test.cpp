#include "util/printable.hpp"

#include <gtest/gtest.h>

#include <string>

namespace tunlab {
namespace {

TEST(Printable, ControlCharactersAreEscapedAndUtf8Kept) {
    EXPECT_EQ(quote_input(std::string("a\0b\nc\x7f", 6)), "a\\x00b\\x0ac\\x7f");
    EXPECT_EQ(quote_input("tünnel-ü"), "tünnel-ü");
}

TEST(Printable, AQuoteStopsAfterItsCharacters) {
    const std::string long_name(9'000'000, '\x01');
    const std::string shown = quote_input(long_name);
    // 64 escapes of four bytes, then the mark.
    EXPECT_EQ(shown, [] {
        std::string expected;
        for (size_t i = 0; i < kQuotedCharacters; ++i) {
            expected += "\\x01";
        }
        return expected + "…";
    }());
    EXPECT_EQ(quote_input(std::string(kQuotedCharacters, 'n')),
              std::string(kQuotedCharacters, 'n'));
    EXPECT_EQ(quote_input(std::string(kQuotedCharacters + 1, 'n')),
              std::string(kQuotedCharacters, 'n') + "…");
}

TEST(Printable, MultibyteCharactersCountOnceAndAreNeverCut) {
    std::string umlauts;
    for (size_t i = 0; i < 100; ++i) {
        umlauts += "ü";
    }
    std::string expected;
    for (size_t i = 0; i < kQuotedCharacters; ++i) {
        expected += "ü";
    }
    EXPECT_EQ(quote_input(umlauts), expected + "…");
}

TEST(Printable, StrayContinuationBytesAreBoundedToo) {
    // Not UTF-8 (a file need not be): no character starts, yet the quote ends.
    const std::string stray(1'000'000, '\x80');
    EXPECT_EQ(quote_input(stray).size(), 4 * kQuotedCharacters + std::string("…").size());
}

TEST(Printable, AWholeMessageHasItsOwnBound) {
    const std::string message(100'000, 'm');
    EXPECT_EQ(printable(message, kMessageCharacters), std::string(kMessageCharacters, 'm') + "…");
}

}  // namespace
}  // namespace tunlab
