#pragma once

// The text forms of keys: base64 as `wg` prints them (44 characters, one '=' of padding) and
// hex as the cross-platform userspace API (UAPI) carries them. Decoding is strict: anything
// that is not exactly one 32-byte key in canonical form is refused (wg does the same), so a key
// has one spelling. The codecs are libsodium's.
//
// Decoding a secret writes straight into its locked storage; the encoded text of a secret (a
// std::string) is the caller's to wipe.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tunlab::crypto {

using KeyBytes = std::array<uint8_t, 32>;

std::string key_to_base64(std::span<const uint8_t, 32> key);
std::optional<KeyBytes> key_from_base64(std::string_view text);
[[nodiscard]] bool key_from_base64(std::string_view text, std::span<uint8_t, 32> out);

std::string to_hex(std::span<const uint8_t> bytes);
// Exactly 64 hex digits (either case).
std::optional<KeyBytes> key_from_hex(std::string_view text);
[[nodiscard]] bool key_from_hex(std::string_view text, std::span<uint8_t, 32> out);

}  // namespace tunlab::crypto
