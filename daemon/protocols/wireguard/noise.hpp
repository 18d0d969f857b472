#pragma once

// Internal to the handshake: the Noise symmetric state operations (whitepaper §5.4).
//   initial chaining key Ci = HASH(CONSTRUCTION), initial hash Hi = HASH(Ci ‖ IDENTIFIER)
//   mix_hash: H = HASH(H ‖ data)      mix_key: C = KDF1(C, data)

#include <string_view>

#include "crypto/blake2s.hpp"
#include "crypto/secret_key.hpp"

namespace tunlab::wireguard::noise {

const crypto::Hash& initial_chaining_key();
const crypto::Hash& initial_hash();

void mix_hash(crypto::Hash& hash, crypto::Bytes data);
void mix_key(crypto::SecretKey& chaining_key, crypto::Bytes data);

inline crypto::Bytes text(std::string_view value) {
    return {reinterpret_cast<const uint8_t*>(value.data()), value.size()};
}

}  // namespace tunlab::wireguard::noise
