#pragma once

// Our side of every handshake: the interface's static key pair, and the two keys derived from
// our public key that every peer uses towards us (the mac1 key checks that a handshake message
// was meant for us; the cookie key encrypts the cookies we hand out).

#include "crypto/blake2s.hpp"
#include "crypto/random.hpp"
#include "crypto/secret_key.hpp"
#include "crypto/x25519.hpp"

namespace tunlab::wireguard {

// HASH(LABEL_MAC1 ‖ public key) and HASH(LABEL_COOKIE ‖ public key): the keys for the MACs of
// messages sent to the owner of `public_key`, and for cookie replies sent by it.
crypto::Hash mac1_key_for(const crypto::PublicKey& public_key);
crypto::Hash cookie_key_for(const crypto::PublicKey& public_key);

class LocalIdentity {
  public:
    explicit LocalIdentity(crypto::SecretKey private_key);
    static LocalIdentity generate(crypto::RandomSource& random);

    const crypto::SecretKey& private_key() const { return private_key_; }
    const crypto::PublicKey& public_key() const { return public_key_; }
    const crypto::Hash& mac1_key() const { return mac1_key_; }
    const crypto::Hash& cookie_key() const { return cookie_key_; }

  private:
    crypto::SecretKey private_key_;
    crypto::PublicKey public_key_;
    crypto::Hash mac1_key_;
    crypto::Hash cookie_key_;
};

}  // namespace tunlab::wireguard
