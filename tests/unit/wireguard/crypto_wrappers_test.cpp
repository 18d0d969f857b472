// The crypto wrappers' own behaviour: locked secrets, strict key codecs, AEAD failure handling.

#include <gtest/gtest.h>
#include <sodium.h>

#include <sstream>
#include <string>

#include "crypto/aead.hpp"
#include "crypto/constant_time.hpp"
#include "crypto/encoding.hpp"
#include "crypto/secret_key.hpp"
#include "crypto/x25519.hpp"
#include "test_support.hpp"

namespace tunlab::crypto {
namespace {

using wireguard::test_support::SeededRandom;

TEST(SecretKey, StartsZeroHoldsBytesAndWipes) {
    SecretKey key;
    EXPECT_TRUE(key.is_zero());
    std::array<uint8_t, 32> bytes;
    bytes.fill(7);
    key.assign(bytes);
    EXPECT_FALSE(key.is_zero());
    EXPECT_EQ(key.bytes()[31], 7);
    key.wipe();
    EXPECT_TRUE(key.is_zero());
}

TEST(SecretKey, MovesAndClonesAreExplicitAndIndependent) {
    std::array<uint8_t, 32> bytes;
    bytes.fill(3);
    SecretKey original(bytes);
    SecretKey copy = original.clone();
    copy.bytes()[0] = 9;
    EXPECT_EQ(original.bytes()[0], 3);
    SecretKey moved = std::move(original);
    EXPECT_TRUE(original.empty());  // NOLINT(bugprone-use-after-move): the documented state
    EXPECT_EQ(moved.bytes()[1], 3);
    original = std::move(copy);
    EXPECT_EQ(original.bytes()[0], 9);
}

TEST(SecretKey, ReusedSlotsComeBackZeroed) {
    std::array<uint8_t, 32> bytes;
    bytes.fill(0xee);
    for (int i = 0; i < 2000; ++i) {  // several chunks' worth
        SecretKey key(bytes);
    }
    for (int i = 0; i < 2000; ++i) {
        SecretKey key;
        ASSERT_TRUE(key.is_zero());
    }
}

TEST(SecretKey, PrintsRedacted) {
    std::array<uint8_t, 32> bytes;
    bytes.fill(0x41);
    const SecretKey key(bytes);
    std::ostringstream out;
    PrintTo(key, &out);
    EXPECT_EQ(out.str(), "SecretKey(redacted)");
    EXPECT_EQ(::testing::PrintToString(key), "SecretKey(redacted)");
}

TEST(SecretKey, PoolPagesAreLockedWhenRlimitAllows) {
    SecretKey key;
    // Root (the test environment) has no practical memlock limit; others may see false.
    if (geteuid() == 0) {
        EXPECT_TRUE(secure_memory_fully_locked());
    }
}

TEST(KeyEncoding, Base64RoundTripsWgKeys) {
    SeededRandom random(1);
    for (int i = 0; i < 50; ++i) {
        const SecretKey key = generate_private_key(random);
        const PublicKey public_key = public_key_of(key);
        const std::string text = key_to_base64(public_key);
        ASSERT_EQ(text.size(), 44u);
        ASSERT_EQ(text.back(), '=');
        const auto decoded = key_from_base64(text);
        ASSERT_TRUE(decoded.has_value());
        EXPECT_EQ(*decoded, public_key);
    }
    // A key as `wg genkey | wg pubkey` prints them.
    const auto all_zero = key_from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    ASSERT_TRUE(all_zero.has_value());
    EXPECT_TRUE(is_zero_constant_time(*all_zero));
}

TEST(KeyEncoding, Base64RefusesAnythingButOneCanonicalKey) {
    const std::string good = "GLt3YvFqvB0cEj3kqlDS2Ahr4Z2TgkEi0kuDvtq0nH8=";
    ASSERT_TRUE(key_from_base64(good).has_value());
    const std::string bad[] = {
        "",
        good.substr(0, 43),                              // no padding
        good + "=",                                      // too long
        " " + good.substr(1),                            // a space
        good.substr(0, 42) + "==",                       // 31 bytes
        good.substr(0, 42) + "9=",                       // leftover bits set (non-canonical)
        good.substr(0, 10) + "*" + good.substr(11),      // not base64
        "GLt3YvFqvB0cEj3kqlDS2Ahr4Z2TgkEi0kuDvtq0nH8-",  // url-safe alphabet
        std::string("GLt3YvFqvB0cEj3kqlDS2Ahr4Z2TgkEi0kuDvtq0nH8\0", 44),
    };
    for (const auto& text : bad) {
        EXPECT_FALSE(key_from_base64(text).has_value()) << text;
    }
}

TEST(KeyEncoding, HexIsExactly64Digits) {
    const std::string text = "18bb7762f16abc1d1c123de4aa50d2d8086be19d93824122d24b83bedab49c7f";
    const auto key = key_from_hex(text);
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(to_hex(*key), text);
    EXPECT_EQ(key_to_base64(*key), "GLt3YvFqvB0cEj3kqlDS2Ahr4Z2TgkEi0kuDvtq0nH8=");
    std::string upper = text;
    for (auto& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    EXPECT_EQ(key_from_hex(upper), key);
    EXPECT_FALSE(key_from_hex(text.substr(0, 63)).has_value());
    EXPECT_FALSE(key_from_hex(text + "0").has_value());
    EXPECT_FALSE(key_from_hex(text.substr(0, 62) + "zz").has_value());
    EXPECT_FALSE(key_from_hex(text.substr(0, 62) + " 0").has_value());
}

TEST(KeyEncoding, DecodesSecretsStraightIntoLockedStorage) {
    SecretKey key;
    ASSERT_TRUE(key_from_hex("18bb7762f16abc1d1c123de4aa50d2d8086be19d93824122d24b83bedab49c7f",
                             key.bytes()));
    EXPECT_EQ(key.bytes()[0], 0x18);
    EXPECT_FALSE(key_from_base64("nope", key.bytes()));
}

TEST(ConstantTime, ComparesWholeInputs) {
    const std::array<uint8_t, 4> a{1, 2, 3, 4};
    const std::array<uint8_t, 4> b{1, 2, 3, 5};
    const std::array<uint8_t, 3> shorter{1, 2, 3};
    EXPECT_TRUE(equal_constant_time(a, a));
    EXPECT_FALSE(equal_constant_time(a, b));
    EXPECT_FALSE(equal_constant_time(a, shorter));
    EXPECT_TRUE(equal_constant_time({}, {}));
    EXPECT_TRUE(is_zero_constant_time(std::array<uint8_t, 8>{}));
    EXPECT_FALSE(is_zero_constant_time(a));
}

TEST(Aead, RoundTripsEverySizeAndRejectsEveryFlippedBit) {
    SeededRandom random(2);
    SecretKey key;
    random.fill(key.bytes());
    const std::array<uint8_t, 5> ad{9, 8, 7, 6, 5};
    for (const size_t size : {0u, 1u, 15u, 16u, 17u, 64u, 1420u}) {
        std::vector<uint8_t> plaintext(size);
        random.fill(plaintext);
        std::vector<uint8_t> buffer(plaintext);
        buffer.resize(size + kAeadTagSize);
        ASSERT_TRUE(seal_in_place(key.bytes(), 42, std::span(buffer).first(size),
                                  std::span(buffer).subspan(size).first<kAeadTagSize>(), ad));
        const std::vector<uint8_t> sealed = buffer;
        auto opened = open_in_place(key.bytes(), 42, buffer, ad);
        ASSERT_TRUE(opened.has_value());
        ASSERT_EQ(*opened, size);
        EXPECT_TRUE(std::equal(plaintext.begin(), plaintext.end(), buffer.begin()));

        // Any change to ciphertext, tag, counter or AD fails, and leaves no plaintext behind.
        for (size_t bit = 0; bit < sealed.size() * 8; bit += 7) {
            buffer = sealed;
            buffer[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
            ASSERT_FALSE(open_in_place(key.bytes(), 42, buffer, ad).has_value()) << bit;
            EXPECT_TRUE(is_zero_constant_time(std::span(buffer).first(size)));
        }
        buffer = sealed;
        EXPECT_FALSE(open_in_place(key.bytes(), 43, buffer, ad).has_value());
        buffer = sealed;
        EXPECT_FALSE(open_in_place(key.bytes(), 42, buffer).has_value());
    }
    std::array<uint8_t, 15> too_short{};
    EXPECT_FALSE(open_in_place(key.bytes(), 0, too_short).has_value());
}

TEST(Aead, CopyingFormsMatchTheInPlaceOnes) {
    SecretKey key;
    SeededRandom(3).fill(key.bytes());
    const std::array<uint8_t, 12> plaintext{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    std::array<uint8_t, 28> sealed;
    ASSERT_TRUE(seal(key.bytes(), 0, plaintext, sealed));
    std::array<uint8_t, 28> in_place{};
    std::copy(plaintext.begin(), plaintext.end(), in_place.begin());
    ASSERT_TRUE(seal_in_place(key.bytes(), 0, std::span(in_place).first(12),
                              std::span(in_place).subspan<12, 16>()));
    EXPECT_EQ(sealed, in_place);
    std::array<uint8_t, 12> opened;
    ASSERT_TRUE(open(key.bytes(), 0, sealed, opened));
    EXPECT_EQ(opened, plaintext);
    sealed[0] ^= 1;
    EXPECT_FALSE(open(key.bytes(), 0, sealed, opened));
    std::array<uint8_t, 11> wrong_size;
    EXPECT_FALSE(open(key.bytes(), 0, in_place, wrong_size));
}

// The thread's context keeps its last key and then sets only the nonce: every packet must still
// come out as a fresh context would make it, whatever the order of keys, counters and failures.
// libsodium's ChaCha20-Poly1305 (an implementation independent of OpenSSL's) says what that is.
TEST(Aead, KeysTakenInAnyOrderSealAndOpenAsAFreshContextWould) {
    SeededRandom random(4);
    SecretKey first;
    SecretKey second;
    random.fill(first.bytes());
    random.fill(second.bytes());
    const SecretKey* keys[] = {&first, &first, &second, &first, &second, &second, &first};
    const std::array<uint8_t, 3> ad{1, 2, 3};
    uint64_t counter = 0;
    for (const SecretKey* key : keys) {
        std::vector<uint8_t> plaintext(100 + counter);
        random.fill(plaintext);
        std::vector<uint8_t> buffer(plaintext);
        buffer.resize(plaintext.size() + kAeadTagSize);
        const auto data = std::span(buffer).first(plaintext.size());
        ASSERT_TRUE(
            seal_in_place(key->bytes(), counter, data, std::span(buffer).last<kAeadTagSize>(), ad));

        std::vector<uint8_t> expected(plaintext.size() + kAeadTagSize);
        std::array<uint8_t, 12> nonce{};
        for (size_t i = 0; i < 8; ++i) {
            nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
        }
        unsigned long long tag_length = 0;
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(
            expected.data(), expected.data() + plaintext.size(), &tag_length, plaintext.data(),
            plaintext.size(), ad.data(), ad.size(), nullptr, nonce.data(), key->data());
        EXPECT_EQ(buffer, expected) << "packet " << counter;

        // A forgery under the same key fails and leaves the next open under that key intact.
        std::vector<uint8_t> forged = buffer;
        forged.back() ^= 1;
        EXPECT_FALSE(open_in_place(key->bytes(), counter, forged, ad).has_value());
        const auto opened = open_in_place(key->bytes(), counter, buffer, ad);
        ASSERT_TRUE(opened.has_value()) << "packet " << counter;
        EXPECT_TRUE(std::equal(plaintext.begin(), plaintext.end(), buffer.begin()));
        ++counter;
    }
}

}  // namespace
}  // namespace tunlab::crypto
