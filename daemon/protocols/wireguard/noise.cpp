#include "protocols/wireguard/noise.hpp"

#include "crypto/kdf.hpp"
#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard::noise {

const crypto::Hash& initial_chaining_key() {
    static const crypto::Hash value = crypto::blake2s({text(kConstruction)});
    return value;
}

const crypto::Hash& initial_hash() {
    static const crypto::Hash value = crypto::blake2s({initial_chaining_key(), text(kIdentifier)});
    return value;
}

void mix_hash(crypto::Hash& hash, crypto::Bytes data) {
    crypto::blake2s(hash, {hash, data});
}

void mix_key(crypto::SecretKey& chaining_key, crypto::Bytes data) {
    crypto::kdf1(chaining_key.bytes(), chaining_key.bytes(), data);
}

}  // namespace tunlab::wireguard::noise
