#include "protocols/wireguard/identity.hpp"

#include <utility>

#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {
namespace {

crypto::Bytes text(std::string_view label) {
    return {reinterpret_cast<const uint8_t*>(label.data()), label.size()};
}

}  // namespace

crypto::Hash mac1_key_for(const crypto::PublicKey& public_key) {
    return crypto::blake2s({text(kLabelMac1), public_key});
}

crypto::Hash cookie_key_for(const crypto::PublicKey& public_key) {
    return crypto::blake2s({text(kLabelCookie), public_key});
}

LocalIdentity::LocalIdentity(crypto::SecretKey private_key)
    : private_key_(std::move(private_key)),
      public_key_(crypto::public_key_of(private_key_)),
      mac1_key_(mac1_key_for(public_key_)),
      cookie_key_(cookie_key_for(public_key_)) {}

LocalIdentity LocalIdentity::generate(crypto::RandomSource& random) {
    return LocalIdentity(crypto::generate_private_key(random));
}

}  // namespace tunlab::wireguard
