#include "crypto/blake2s.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <string>

#include "crypto/error.hpp"
#include "crypto/openssl_algorithms.hpp"

namespace tunlab::crypto {
namespace {

void digest_pieces(EVP_MD_CTX* context, std::span<uint8_t, kHashSize> out, Pieces input) {
    if (EVP_DigestInit_ex2(context, detail::blake2s_256_digest(), nullptr) != 1) {
        throw_openssl_error("BLAKE2s init");
    }
    for (const Bytes piece : input) {
        if (!piece.empty() && EVP_DigestUpdate(context, piece.data(), piece.size()) != 1) {
            throw_openssl_error("BLAKE2s update");
        }
    }
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context, out.data(), &length) != 1 || length != kHashSize) {
        throw_openssl_error("BLAKE2s final");
    }
}

// EVP_MAC_init() keeps the previous key when given a null one, and an empty span's data() may
// be null: a keyed function must always pass a real pointer.
const unsigned char* key_pointer(Bytes key) {
    static const unsigned char empty = 0;
    return key.empty() ? &empty : key.data();
}

void mac_pieces(EVP_MAC_CTX* context, std::span<uint8_t> out, Bytes key, Pieces input,
                const char* what, const OSSL_PARAM* params = nullptr) {
    if (EVP_MAC_init(context, key_pointer(key), key.size(), params) != 1) {
        throw_openssl_error(std::string(what) + " init");
    }
    for (const Bytes piece : input) {
        if (!piece.empty() && EVP_MAC_update(context, piece.data(), piece.size()) != 1) {
            throw_openssl_error(std::string(what) + " update");
        }
    }
    size_t length = 0;
    if (EVP_MAC_final(context, out.data(), &length, out.size()) != 1 || length != out.size()) {
        throw_openssl_error(std::string(what) + " final");
    }
}

}  // namespace

void blake2s(std::span<uint8_t, kHashSize> out, Pieces input) {
    digest_pieces(detail::thread_digest_context(), out, input);
}

Hash blake2s(Pieces input) {
    Hash out;
    blake2s(out, input);
    return out;
}

void keyed_blake2s(std::span<uint8_t> out, Bytes key, Pieces input) {
    if (key.empty() || key.size() > kHashSize || out.empty() || out.size() > kHashSize) {
        throw CryptoError("keyed BLAKE2s: key and digest must be 1 to 32 bytes");
    }
    // The digest length is a BLAKE2 parameter (it changes every output byte), set on each use.
    size_t size = out.size();
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                                 OSSL_PARAM_construct_end()};
    mac_pieces(detail::thread_keyed_blake2s_context(), out, key, input, "keyed BLAKE2s", params);
}

void keyed_blake2s_128(std::span<uint8_t, kMacSize> out, Bytes key, Pieces input) {
    keyed_blake2s(out, key, input);
}

Mac keyed_blake2s_128(Bytes key, Pieces input) {
    Mac out;
    keyed_blake2s_128(out, key, input);
    return out;
}

void hmac_blake2s(std::span<uint8_t, kHashSize> out, Bytes key, Pieces input) {
    mac_pieces(detail::thread_hmac_blake2s_context(), out, key, input, "HMAC-BLAKE2s");
}

Blake2s::Blake2s() : context_(EVP_MD_CTX_new()) {
    if (context_ == nullptr ||
        EVP_DigestInit_ex2(context_, detail::blake2s_256_digest(), nullptr) != 1) {
        EVP_MD_CTX_free(context_);
        throw_openssl_error("BLAKE2s init");
    }
}

Blake2s::~Blake2s() {
    EVP_MD_CTX_free(context_);
}

Blake2s& Blake2s::update(Bytes piece) {
    if (!piece.empty() && EVP_DigestUpdate(context_, piece.data(), piece.size()) != 1) {
        throw_openssl_error("BLAKE2s update");
    }
    return *this;
}

void Blake2s::finish(std::span<uint8_t, kHashSize> out) {
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context_, out.data(), &length) != 1 || length != kHashSize ||
        EVP_DigestInit_ex2(context_, nullptr, nullptr) != 1) {
        throw_openssl_error("BLAKE2s final");
    }
}

Hash Blake2s::finish() {
    Hash out;
    finish(out);
    return out;
}

}  // namespace tunlab::crypto
