#include "crypto/sodium.hpp"

#include "crypto/error.hpp"

namespace tunlab::crypto::detail {

void ensure_sodium() {
    static const bool initialised = [] {
        if (sodium_init() < 0) {
            throw CryptoError("sodium_init failed");
        }
        return true;
    }();
    (void)initialised;
}

}  // namespace tunlab::crypto::detail
