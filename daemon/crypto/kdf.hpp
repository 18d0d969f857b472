#pragma once

// WireGuard's KDF_n(key, input): HKDF (RFC 5869) over HMAC-BLAKE2s with empty info, returning
// the first n 32-byte output blocks:
//   prk = HMAC(key, input); t0 = HMAC(prk, 0x1); t1 = HMAC(prk, t0 ‖ 0x2); t2 = HMAC(prk, t1 ‖ 0x3)
// An output may be the same memory as `key` or `input` (the Noise chaining key is replaced by
// its own derivation): both are read into prk before anything is written. prk is wiped.

#include <cstdint>
#include <span>

#include "crypto/blake2s.hpp"

namespace tunlab::crypto {

using Block = std::span<uint8_t, kHashSize>;

void kdf1(Block t0, Bytes key, Bytes input);
void kdf2(Block t0, Block t1, Bytes key, Bytes input);
void kdf3(Block t0, Block t1, Block t2, Bytes key, Bytes input);

}  // namespace tunlab::crypto
