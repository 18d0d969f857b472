#include "crypto/x25519.hpp"

#include "crypto/error.hpp"
#include "crypto/sodium.hpp"

namespace tunlab::crypto {

SecretKey generate_private_key(RandomSource& random) {
    SecretKey key;
    random.fill(key.bytes());
    key.data()[0] &= 248;
    key.data()[31] = static_cast<uint8_t>((key.data()[31] & 127) | 64);
    return key;
}

PublicKey public_key_of(const SecretKey& private_key) {
    detail::ensure_sodium();
    PublicKey public_key;
    if (crypto_scalarmult_curve25519_base(public_key.data(), private_key.data()) != 0) {
        throw CryptoError("X25519 base point multiplication failed");
    }
    return public_key;
}

bool x25519(SecretKey& shared, const SecretKey& private_key, const PublicKey& peer_public) {
    detail::ensure_sodium();
    // libsodium returns -1 both for a low-order input point and an all-zero output; check the
    // output as well, so that the rule does not depend on the library version.
    if (crypto_scalarmult_curve25519(shared.data(), private_key.data(), peer_public.data()) != 0 ||
        shared.is_zero()) {
        shared.wipe();
        return false;
    }
    return true;
}

}  // namespace tunlab::crypto
