#include "crypto/openssl_algorithms.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include <memory>
#include <string>

#include "crypto/error.hpp"

namespace tunlab::crypto {

void throw_openssl_error(const std::string& what) {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    std::string message = what;
    if (code != 0) {
        char reason[256];
        ERR_error_string_n(code, reason, sizeof reason);
        message += ": ";
        message += reason;
    }
    throw CryptoError(message);
}

namespace detail {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* pointer) const { Free(pointer); }
};

template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

EVP_MAC* fetch_mac(const char* name) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, name, nullptr);
    if (mac == nullptr) {
        throw_openssl_error(std::string("EVP_MAC_fetch ") + name);
    }
    return mac;
}

// Fetched algorithms are kept for the life of the process (as OpenSSL's own default
// implementations are): contexts in other threads may still use them at exit.
EVP_MAC* blake2s_mac_algorithm() {
    static EVP_MAC* const mac = fetch_mac("BLAKE2SMAC");
    return mac;
}

EVP_MAC* hmac_algorithm() {
    static EVP_MAC* const mac = fetch_mac("HMAC");
    return mac;
}

EVP_CIPHER_CTX* new_cipher_context() {
    EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
    if (context == nullptr) {
        throw_openssl_error("EVP_CIPHER_CTX_new");
    }
    return context;
}

EVP_MAC_CTX* new_mac_context(EVP_MAC* mac, const OSSL_PARAM* params, const char* what) {
    EVP_MAC_CTX* context = EVP_MAC_CTX_new(mac);
    if (context == nullptr || EVP_MAC_CTX_set_params(context, params) != 1) {
        EVP_MAC_CTX_free(context);
        throw_openssl_error(what);
    }
    return context;
}

}  // namespace

const EVP_CIPHER* chacha20_poly1305_cipher() {
    static EVP_CIPHER* const cipher = [] {
        EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
        if (fetched == nullptr) {
            throw_openssl_error("EVP_CIPHER_fetch ChaCha20-Poly1305");
        }
        return fetched;
    }();
    return cipher;
}

const EVP_MD* blake2s_256_digest() {
    static EVP_MD* const digest = [] {
        EVP_MD* fetched = EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr);
        if (fetched == nullptr) {
            throw_openssl_error("EVP_MD_fetch BLAKE2S-256");
        }
        return fetched;
    }();
    return digest;
}

namespace {

// One per thread and direction; the context is freed with the thread.
struct ThreadAeadContext {
    Owned<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free> owned;
    AeadContext aead;

    explicit ThreadAeadContext(bool encrypt) : owned(new_cipher_context()) {
        const int initialized = encrypt
                                    ? EVP_EncryptInit_ex2(owned.get(), chacha20_poly1305_cipher(),
                                                          nullptr, nullptr, nullptr)
                                    : EVP_DecryptInit_ex2(owned.get(), chacha20_poly1305_cipher(),
                                                          nullptr, nullptr, nullptr);
        if (initialized != 1) {
            throw_openssl_error("EVP_CipherInit_ex2 ChaCha20-Poly1305");
        }
        aead.context = owned.get();
    }
};

}  // namespace

AeadContext& thread_seal_context() {
    thread_local ThreadAeadContext context(true);
    return context.aead;
}

AeadContext& thread_open_context() {
    thread_local ThreadAeadContext context(false);
    return context.aead;
}

EVP_MD_CTX* thread_digest_context() {
    thread_local const Owned<EVP_MD_CTX, EVP_MD_CTX_free> context = [] {
        Owned<EVP_MD_CTX, EVP_MD_CTX_free> created(EVP_MD_CTX_new());
        if (!created) {
            throw_openssl_error("EVP_MD_CTX_new");
        }
        return created;
    }();
    return context.get();
}

EVP_MAC_CTX* thread_keyed_blake2s_context() {
    thread_local const Owned<EVP_MAC_CTX, EVP_MAC_CTX_free> context = [] {
        const OSSL_PARAM params[] = {OSSL_PARAM_construct_end()};
        return Owned<EVP_MAC_CTX, EVP_MAC_CTX_free>(
            new_mac_context(blake2s_mac_algorithm(), params, "BLAKE2SMAC context"));
    }();
    return context.get();
}

EVP_MAC_CTX* thread_hmac_blake2s_context() {
    thread_local const Owned<EVP_MAC_CTX, EVP_MAC_CTX_free> context = [] {
        char digest[] = "BLAKE2S-256";
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
            OSSL_PARAM_construct_end()};
        return Owned<EVP_MAC_CTX, EVP_MAC_CTX_free>(
            new_mac_context(hmac_algorithm(), params, "HMAC-BLAKE2s context"));
    }();
    return context.get();
}

}  // namespace detail
}  // namespace tunlab::crypto
