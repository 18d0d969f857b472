#pragma once

// Curve25519 Diffie-Hellman (RFC 7748), from libsodium. Private keys are clamped by the
// function itself (as RFC 7748 and every implementation do), so any 32 bytes are a valid
// private key; generate_private_key() stores them clamped, as `wg genkey` prints them.

#include <array>
#include <cstdint>

#include "crypto/random.hpp"
#include "crypto/secret_key.hpp"

namespace tunlab::crypto {

using PublicKey = std::array<uint8_t, kKeySize>;

SecretKey generate_private_key(RandomSource& random);
PublicKey public_key_of(const SecretKey& private_key);

// shared = X25519(private_key, peer_public). False when the result is all zeros (the peer's
// key is a low-order point: the "shared" secret would be known to anyone); `shared` is then
// zeroed.
[[nodiscard]] bool x25519(SecretKey& shared, const SecretKey& private_key,
                          const PublicKey& peer_public);

}  // namespace tunlab::crypto
