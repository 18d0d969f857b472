#include "crypto/constant_time.hpp"

#include <openssl/crypto.h>
#include <sodium.h>

namespace tunlab::crypto {

bool equal_constant_time(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept {
    return a.size() == b.size() && (a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0);
}

bool is_zero_constant_time(std::span<const uint8_t> bytes) noexcept {
    return bytes.empty() || sodium_is_zero(bytes.data(), bytes.size()) == 1;
}

}  // namespace tunlab::crypto
