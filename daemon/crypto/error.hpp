#pragma once

// What the crypto wrappers throw when libcrypto or libsodium itself fails: an algorithm missing
// from the installed OpenSSL, or no memory for a context. Never because of the data they are
// given (a forged packet is a return value, not an exception), and the message carries no
// secret: only what was being done and OpenSSL's own reason.

#include <stdexcept>
#include <string>

namespace tunlab::crypto {

class CryptoError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Throws CryptoError for `what`, with the reason from OpenSSL's error queue (which it clears).
[[noreturn]] void throw_openssl_error(const std::string& what);

}  // namespace tunlab::crypto
