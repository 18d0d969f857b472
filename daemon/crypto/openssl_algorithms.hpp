#pragma once

// Internal to daemon/crypto: OpenSSL algorithms fetched once per process and contexts kept per
// thread. OpenSSL 3.0 resolves an algorithm name under a global lock; doing that per packet (or
// per handshake under a flood) contends across threads, so nothing here looks a name up twice.

#include <openssl/evp.h>

#include "crypto/secret_key.hpp"

namespace tunlab::crypto::detail {

// An AEAD context and the key last set in it (in locked memory, like every key), so that a
// packet under the same key as the one before (every packet of a session in a row) sets only
// its nonce: setting a key runs OpenSSL 3's parameter lookups again, a measurable part of what
// one packet costs.
struct AeadContext {
    EVP_CIPHER_CTX* context = nullptr;
    SecretKey key;
    bool keyed = false;  // `key` is the one in `context`
};

const EVP_CIPHER* chacha20_poly1305_cipher();
const EVP_MD* blake2s_256_digest();

// This thread's contexts, created on first use and freed when the thread ends. A caller uses
// one from start to final before anything else on the same thread may: none of the wrappers
// calls another while it holds one.
AeadContext& thread_seal_context();
AeadContext& thread_open_context();
EVP_MD_CTX* thread_digest_context();
EVP_MAC_CTX* thread_keyed_blake2s_context();  // BLAKE2SMAC (digest size set on each use)
EVP_MAC_CTX* thread_hmac_blake2s_context();   // HMAC with BLAKE2s-256

}  // namespace tunlab::crypto::detail
