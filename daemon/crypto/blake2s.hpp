#pragma once

// WireGuard's hash functions, all BLAKE2s from OpenSSL 3 (libsodium 1.0.18 has no BLAKE2s):
//   HASH(input)       BLAKE2s-256                     blake2s()
//   MAC(key, input)   keyed BLAKE2s, 16-byte digest   keyed_blake2s_128()  (mac1, mac2, cookies)
//   HMAC(key, input)  HMAC over BLAKE2s-256           hmac_blake2s()       (the KDF, kdf.hpp)
// MAC is BLAKE2s computed with a 16-byte digest length, which is a different function from the
// first 16 bytes of a 32-byte one (the length is part of BLAKE2's parameter block).
//
// Inputs are lists of pieces, hashed as their concatenation, so that HASH(a ‖ b) needs no copy.
// Only an OpenSSL failure (no memory) throws CryptoError; no input makes these fail.

#include <openssl/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

namespace tunlab::crypto {

inline constexpr size_t kHashSize = 32;
inline constexpr size_t kMacSize = 16;

using Hash = std::array<uint8_t, kHashSize>;
using Mac = std::array<uint8_t, kMacSize>;
using Bytes = std::span<const uint8_t>;
using Pieces = std::initializer_list<Bytes>;

void blake2s(std::span<uint8_t, kHashSize> out, Pieces input);
Hash blake2s(Pieces input);

// Keyed BLAKE2s with a digest of out.size() bytes (1..32). `key` is 1..32 bytes (WireGuard uses
// 32-byte hash values and 16-byte cookies as keys).
void keyed_blake2s(std::span<uint8_t> out, Bytes key, Pieces input);
void keyed_blake2s_128(std::span<uint8_t, kMacSize> out, Bytes key, Pieces input);
Mac keyed_blake2s_128(Bytes key, Pieces input);

// `key` may have any length, empty included.
void hmac_blake2s(std::span<uint8_t, kHashSize> out, Bytes key, Pieces input);

// BLAKE2s-256 fed piece by piece, for callers that hold the pieces at different times. Owns its
// context (one allocation); the one-shot functions above use a per-thread one instead.
class Blake2s {
  public:
    Blake2s();
    Blake2s(const Blake2s&) = delete;
    Blake2s& operator=(const Blake2s&) = delete;
    ~Blake2s();

    Blake2s& update(Bytes piece);
    // Writes the digest and starts over, ready for a new input.
    void finish(std::span<uint8_t, kHashSize> out);
    Hash finish();

  private:
    EVP_MD_CTX* context_;
};

}  // namespace tunlab::crypto
