#include "util/printable.hpp"

#include <algorithm>

namespace tunlab {

namespace {

bool is_continuation_byte(unsigned char byte) {
    return (byte & 0xc0) == 0x80;
}

}  // namespace

std::string printable(std::string_view text, size_t max_characters) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(std::min(text.size(), max_characters * 4) + 3);
    // A character is at most four bytes of UTF-8; the byte bound also stops a run of stray
    // continuation bytes (a file need not be UTF-8), which start no character.
    const size_t max_bytes = max_characters * 4;
    size_t characters = 0;
    size_t bytes = 0;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        const bool starts_character = !is_continuation_byte(byte);
        if ((starts_character && characters++ == max_characters) || bytes++ == max_bytes) {
            out += "…";
            break;
        }
        if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        } else {
            out += c;
        }
    }
    return out;
}

std::string quote_input(std::string_view text) {
    return printable(text, kQuotedCharacters);
}

}  // namespace tunlab
