#include "crypto/encoding.hpp"

#include <sodium.h>

#include "crypto/secret_key.hpp"

namespace tunlab::crypto {
namespace {

constexpr size_t kBase64KeyLength = 44;  // 4 * ceil(32 / 3)
constexpr size_t kHexKeyLength = 64;
constexpr int kVariant = sodium_base64_VARIANT_ORIGINAL;

}  // namespace

std::string key_to_base64(std::span<const uint8_t, 32> key) {
    char text[kBase64KeyLength + 1];
    sodium_bin2base64(text, sizeof text, key.data(), key.size(), kVariant);
    return std::string(text, kBase64KeyLength);
}

bool key_from_base64(std::string_view text, std::span<uint8_t, 32> out) {
    // libsodium rejects bad padding and leftover bits (a non-canonical last character); the
    // length and the single '=' are checked here so that no other spelling decodes.
    if (text.size() != kBase64KeyLength || text[kBase64KeyLength - 1] != '=' ||
        text[kBase64KeyLength - 2] == '=') {
        return false;
    }
    size_t length = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, &end,
                          kVariant) != 0 ||
        length != out.size() || end != text.data() + text.size()) {
        secure_wipe(out);
        return false;
    }
    return true;
}

std::optional<KeyBytes> key_from_base64(std::string_view text) {
    KeyBytes key;
    if (!key_from_base64(text, key)) {
        return std::nullopt;
    }
    return key;
}

std::string to_hex(std::span<const uint8_t> bytes) {
    std::string text(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(text.data(), text.size(), bytes.data(), bytes.size());
    text.pop_back();
    return text;
}

bool key_from_hex(std::string_view text, std::span<uint8_t, 32> out) {
    if (text.size() != kHexKeyLength) {
        return false;
    }
    size_t length = 0;
    const char* end = nullptr;
    if (sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, &end) !=
            0 ||
        length != out.size() || end != text.data() + text.size()) {
        secure_wipe(out);
        return false;
    }
    return true;
}

std::optional<KeyBytes> key_from_hex(std::string_view text) {
    KeyBytes key;
    if (!key_from_hex(text, key)) {
        return std::nullopt;
    }
    return key;
}

}  // namespace tunlab::crypto
