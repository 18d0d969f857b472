#pragma once

// The AEADs of WireGuard.
//
// ChaCha20-Poly1305 (RFC 8439, OpenSSL) for transport data and the handshake: the 96-bit nonce
// is 4 zero bytes then the 64-bit counter, little-endian. It works in place on the caller's
// buffer, with this thread's context and no allocation: this is the per-packet path.
//
// XChaCha20-Poly1305 (libsodium; OpenSSL 3.0 has none) only for cookie replies.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace tunlab::crypto {

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kXNonceSize = 24;

inline constexpr size_t kAeadNonceSize = 12;

using AeadKey = std::span<const uint8_t, kAeadKeySize>;
using AeadNonce = std::span<const uint8_t, kAeadNonceSize>;

// Encrypts `data` in place and writes the tag. False only if libcrypto fails (then nothing may
// be sent: `data` is wiped).
[[nodiscard]] bool seal_in_place(AeadKey key, uint64_t counter, std::span<uint8_t> data,
                                 std::span<uint8_t, kAeadTagSize> tag,
                                 std::span<const uint8_t> ad = {}) noexcept;

// `sealed` is ciphertext then tag. On success it is decrypted in place and the plaintext length
// (sealed.size() - 16) is returned; on failure (too short, forged, wrong key or counter) nothing
// is returned and the buffer is wiped, so that unauthenticated plaintext is never left behind.
[[nodiscard]] std::optional<size_t> open_in_place(AeadKey key, uint64_t counter,
                                                  std::span<uint8_t> sealed,
                                                  std::span<const uint8_t> ad = {}) noexcept;

// The same with any 96-bit nonce, for RFC 8439's own test vectors.
[[nodiscard]] bool seal_in_place_with_nonce(AeadKey key, AeadNonce nonce, std::span<uint8_t> data,
                                            std::span<uint8_t, kAeadTagSize> tag,
                                            std::span<const uint8_t> ad = {}) noexcept;
[[nodiscard]] std::optional<size_t> open_in_place_with_nonce(
    AeadKey key, AeadNonce nonce, std::span<uint8_t> sealed,
    std::span<const uint8_t> ad = {}) noexcept;

// Copying forms for the handshake's small fields: `out` is plaintext.size() + 16 bytes.
[[nodiscard]] bool seal(AeadKey key, uint64_t counter, std::span<const uint8_t> plaintext,
                        std::span<uint8_t> out, std::span<const uint8_t> ad = {}) noexcept;
// `out` is sealed.size() - 16 bytes; wiped on failure.
[[nodiscard]] bool open(AeadKey key, uint64_t counter, std::span<const uint8_t> sealed,
                        std::span<uint8_t> out, std::span<const uint8_t> ad = {}) noexcept;

// XChaCha20-Poly1305: `out` is plaintext.size() + 16 bytes.
void xseal(AeadKey key, std::span<const uint8_t, kXNonceSize> nonce,
           std::span<const uint8_t> plaintext, std::span<uint8_t> out, std::span<const uint8_t> ad);
// `out` is sealed.size() - 16 bytes; false (and `out` wiped) if the tag does not verify.
[[nodiscard]] bool xopen(AeadKey key, std::span<const uint8_t, kXNonceSize> nonce,
                         std::span<const uint8_t> sealed, std::span<uint8_t> out,
                         std::span<const uint8_t> ad);

}  // namespace tunlab::crypto
