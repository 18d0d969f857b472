#include "crypto/aead.hpp"

#include <openssl/evp.h>

#include <array>
#include <climits>
#include <cstring>

#include "crypto/constant_time.hpp"
#include "crypto/error.hpp"
#include "crypto/openssl_algorithms.hpp"
#include "crypto/secret_key.hpp"
#include "crypto/sodium.hpp"

namespace tunlab::crypto {
namespace {

std::array<uint8_t, 12> nonce_for(uint64_t counter) {
    std::array<uint8_t, 12> nonce{};
    for (size_t i = 0; i < 8; ++i) {
        nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
    }
    return nonce;
}

bool fits_int(size_t size) {
    return size <= static_cast<size_t>(INT_MAX);
}

// The contexts are created on a thread's first packet; a failure there (no memory) is reported
// as a failed seal/open rather than an exception on the packet path.
detail::AeadContext* seal_context() noexcept {
    try {
        return &detail::thread_seal_context();
    } catch (...) {
        return nullptr;
    }
}

detail::AeadContext* open_context() noexcept {
    try {
        return &detail::thread_open_context();
    } catch (...) {
        return nullptr;
    }
}

// Sets `nonce`, and `key` unless it is already the context's; afterwards the context's key is
// known only if this succeeded.
bool start(detail::AeadContext& aead, AeadKey key, AeadNonce nonce, bool encrypt) {
    const bool same_key = aead.keyed && equal_constant_time(aead.key.bytes(), key);
    const uint8_t* new_key = same_key ? nullptr : key.data();
    aead.keyed = false;
    const int started =
        encrypt ? EVP_EncryptInit_ex2(aead.context, nullptr, new_key, nonce.data(), nullptr)
                : EVP_DecryptInit_ex2(aead.context, nullptr, new_key, nonce.data(), nullptr);
    if (started != 1) {
        return false;
    }
    if (!same_key) {
        aead.key.assign(key);
    }
    aead.keyed = true;
    return true;
}

bool add_ad(EVP_CIPHER_CTX* context, std::span<const uint8_t> ad, bool encrypt) {
    if (ad.empty()) {
        return true;
    }
    int length = 0;
    const int size = static_cast<int>(ad.size());
    return encrypt ? EVP_EncryptUpdate(context, nullptr, &length, ad.data(), size) == 1
                   : EVP_DecryptUpdate(context, nullptr, &length, ad.data(), size) == 1;
}

bool seal_raw(AeadKey key, AeadNonce nonce, const uint8_t* in, uint8_t* out, size_t size,
              uint8_t* tag, std::span<const uint8_t> ad) noexcept {
    detail::AeadContext* aead = seal_context();
    if (aead == nullptr || !fits_int(size) || !fits_int(ad.size())) {
        return false;
    }
    EVP_CIPHER_CTX* context = aead->context;
    int length = 0;
    if (!start(*aead, key, nonce, true) || !add_ad(context, ad, true)) {
        return false;
    }
    if (size > 0 && EVP_EncryptUpdate(context, out, &length, in, static_cast<int>(size)) != 1) {
        return false;
    }
    // Nothing is written by the final step of a stream cipher, but it wants a valid pointer.
    uint8_t scratch[kAeadTagSize];
    return EVP_EncryptFinal_ex(context, size > 0 ? out + length : scratch, &length) == 1 &&
           EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, kAeadTagSize, tag) == 1;
}

bool open_raw(AeadKey key, AeadNonce nonce, const uint8_t* in, uint8_t* out, size_t size,
              const uint8_t* tag, std::span<const uint8_t> ad) noexcept {
    detail::AeadContext* aead = open_context();
    if (aead == nullptr || !fits_int(size) || !fits_int(ad.size())) {
        return false;
    }
    EVP_CIPHER_CTX* context = aead->context;
    int length = 0;
    // OpenSSL copies the expected tag; the cast only satisfies the ctrl() signature.
    if (!start(*aead, key, nonce, false) ||
        EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, kAeadTagSize,
                            const_cast<uint8_t*>(tag)) != 1 ||
        !add_ad(context, ad, false)) {
        return false;
    }
    if (size > 0 && EVP_DecryptUpdate(context, out, &length, in, static_cast<int>(size)) != 1) {
        return false;
    }
    uint8_t scratch[kAeadTagSize];
    return EVP_DecryptFinal_ex(context, size > 0 ? out + length : scratch, &length) == 1;
}

}  // namespace

bool seal_in_place_with_nonce(AeadKey key, AeadNonce nonce, std::span<uint8_t> data,
                              std::span<uint8_t, kAeadTagSize> tag,
                              std::span<const uint8_t> ad) noexcept {
    if (seal_raw(key, nonce, data.data(), data.data(), data.size(), tag.data(), ad)) {
        return true;
    }
    secure_wipe(data);
    return false;
}

std::optional<size_t> open_in_place_with_nonce(AeadKey key, AeadNonce nonce,
                                               std::span<uint8_t> sealed,
                                               std::span<const uint8_t> ad) noexcept {
    if (sealed.size() < kAeadTagSize) {
        return std::nullopt;
    }
    const size_t size = sealed.size() - kAeadTagSize;
    if (open_raw(key, nonce, sealed.data(), sealed.data(), size, sealed.data() + size, ad)) {
        return size;
    }
    secure_wipe(sealed.first(size));
    return std::nullopt;
}

bool seal_in_place(AeadKey key, uint64_t counter, std::span<uint8_t> data,
                   std::span<uint8_t, kAeadTagSize> tag, std::span<const uint8_t> ad) noexcept {
    return seal_in_place_with_nonce(key, nonce_for(counter), data, tag, ad);
}

std::optional<size_t> open_in_place(AeadKey key, uint64_t counter, std::span<uint8_t> sealed,
                                    std::span<const uint8_t> ad) noexcept {
    return open_in_place_with_nonce(key, nonce_for(counter), sealed, ad);
}

bool seal(AeadKey key, uint64_t counter, std::span<const uint8_t> plaintext, std::span<uint8_t> out,
          std::span<const uint8_t> ad) noexcept {
    if (out.size() != plaintext.size() + kAeadTagSize) {
        return false;
    }
    if (seal_raw(key, nonce_for(counter), plaintext.data(), out.data(), plaintext.size(),
                 out.data() + plaintext.size(), ad)) {
        return true;
    }
    secure_wipe(out);
    return false;
}

bool open(AeadKey key, uint64_t counter, std::span<const uint8_t> sealed, std::span<uint8_t> out,
          std::span<const uint8_t> ad) noexcept {
    if (sealed.size() < kAeadTagSize || out.size() != sealed.size() - kAeadTagSize) {
        return false;
    }
    if (open_raw(key, nonce_for(counter), sealed.data(), out.data(), out.size(),
                 sealed.data() + out.size(), ad)) {
        return true;
    }
    secure_wipe(out);
    return false;
}

void xseal(AeadKey key, std::span<const uint8_t, kXNonceSize> nonce,
           std::span<const uint8_t> plaintext, std::span<uint8_t> out,
           std::span<const uint8_t> ad) {
    detail::ensure_sodium();
    if (out.size() != plaintext.size() + kAeadTagSize) {
        throw CryptoError("XChaCha20-Poly1305: output size must be the plaintext size + 16");
    }
    unsigned long long length = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &length, plaintext.data(),
                                               plaintext.size(), ad.data(), ad.size(), nullptr,
                                               nonce.data(), key.data());
}

bool xopen(AeadKey key, std::span<const uint8_t, kXNonceSize> nonce,
           std::span<const uint8_t> sealed, std::span<uint8_t> out, std::span<const uint8_t> ad) {
    detail::ensure_sodium();
    if (sealed.size() < kAeadTagSize || out.size() != sealed.size() - kAeadTagSize) {
        return false;
    }
    unsigned long long length = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &length, nullptr, sealed.data(),
                                                   sealed.size(), ad.data(), ad.size(),
                                                   nonce.data(), key.data()) != 0) {
        secure_wipe(out);
        return false;
    }
    return true;
}

}  // namespace tunlab::crypto
