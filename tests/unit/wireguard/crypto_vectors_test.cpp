// Known answers for every primitive behind WireGuard, from the documents that define them:
// RFC 7693 (BLAKE2s), the BLAKE2 reference KAT (keyed BLAKE2s), RFC 8439 (ChaCha20-Poly1305),
// RFC 7748 (X25519), draft-irtf-cfrg-xchacha-03 (XChaCha20-Poly1305), wireguard-go's
// device/kdf_test.go (HMAC-BLAKE2s and the KDF) and the Noise construction constants.
// Vectors for the 16-byte keyed BLAKE2s were computed with Python's hashlib.blake2s
// (digest_size=16), an independent implementation.

#include <gtest/gtest.h>

#include <string>

#include "crypto/aead.hpp"
#include "crypto/blake2s.hpp"
#include "crypto/kdf.hpp"
#include "crypto/x25519.hpp"
#include "test_support.hpp"

namespace tunlab::crypto {
namespace {

using wireguard::test_support::array_from_hex;
using wireguard::test_support::as_bytes;
using wireguard::test_support::from_hex;
using wireguard::test_support::to_hex;

TEST(Blake2s, Rfc7693AppendixB) {
    EXPECT_EQ(to_hex(blake2s({as_bytes("abc")})),
              "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}

TEST(Blake2s, PiecesHashAsTheirConcatenation) {
    const Hash whole = blake2s({as_bytes("abc")});
    EXPECT_EQ(blake2s({as_bytes("a"), as_bytes(""), as_bytes("bc")}), whole);
    Blake2s incremental;
    EXPECT_EQ(incremental.update(as_bytes("ab")).update(as_bytes("c")).finish(), whole);
    // finish() starts over.
    EXPECT_EQ(incremental.update(as_bytes("abc")).finish(), whole);
}

TEST(Blake2s, KeyedReferenceVectors) {
    // blake2s-kat.txt: key 00..1f, input the first n bytes of 00 01 02 ...
    std::vector<uint8_t> key(32);
    for (size_t i = 0; i < key.size(); ++i) {
        key[i] = static_cast<uint8_t>(i);
    }
    const std::pair<size_t, const char*> vectors[] = {
        {0, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49"},
        {1, "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1"},
        {2, "6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803"},
        {3, "1d220dbe2ee134661fdf6d9e74b41704710556f2f6e5a091b227697445dbea6b"},
        {64, "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4"},
        {255, "3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd"},
    };
    for (const auto& [length, expected] : vectors) {
        std::vector<uint8_t> input(length);
        for (size_t i = 0; i < length; ++i) {
            input[i] = static_cast<uint8_t>(i);
        }
        Hash out;
        keyed_blake2s(out, key, {input});
        EXPECT_EQ(to_hex(out), expected) << length << " bytes";
    }
}

TEST(Blake2s, Keyed128IsNotATruncatedHash) {
    std::vector<uint8_t> key32(32);
    for (size_t i = 0; i < key32.size(); ++i) {
        key32[i] = static_cast<uint8_t>(i);
    }
    EXPECT_EQ(to_hex(keyed_blake2s_128(key32, {as_bytes("abc")})),
              "61ba5f165c194692e09d12520cc4c74a");
    EXPECT_EQ(to_hex(keyed_blake2s_128(key32, {})), "9536f9b267655743dee97b8a670f9f53");
    // The first half of the 32-byte keyed digest of "abc" with the same key: a different value.
    EXPECT_NE(to_hex(keyed_blake2s_128(key32, {as_bytes("abc")})),
              "a281f725754969a702f6fe36fc591b7d");

    std::vector<uint8_t> key16(key32.begin(), key32.begin() + 16);
    std::vector<uint8_t> input(64);
    for (size_t i = 0; i < input.size(); ++i) {
        input[i] = static_cast<uint8_t>(i);
    }
    EXPECT_EQ(to_hex(keyed_blake2s_128(key16, {input})), "dd55c51c98f8ab96ed272882941f0b6a");
    // Split input, same answer; the per-thread context forgets the previous key.
    EXPECT_EQ(to_hex(keyed_blake2s_128(key16,
                                       {std::span(input).first(10), std::span(input).subspan(10)})),
              "dd55c51c98f8ab96ed272882941f0b6a");
}

TEST(Kdf, WireguardGoVectors) {
    struct Vector {
        const char* key;
        const char* input;
        const char* t0;
        const char* t1;
        const char* t2;
    };
    const Vector vectors[] = {
        {"746573742d6b6579", "746573742d696e707574",
         "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
         "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
         "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24"},
        {"776972656775617264", "776972656775617264",
         "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
         "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
         "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160"},
        {"", "", "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
         "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
         "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e"},
    };
    for (const auto& vector : vectors) {
        const auto key = from_hex(vector.key);
        const auto input = from_hex(vector.input);
        Hash t0;
        Hash t1;
        Hash t2;
        kdf3(t0, t1, t2, key, input);
        EXPECT_EQ(to_hex(t0), vector.t0);
        EXPECT_EQ(to_hex(t1), vector.t1);
        EXPECT_EQ(to_hex(t2), vector.t2);
        t0 = {};
        t1 = {};
        kdf2(t0, t1, key, input);
        EXPECT_EQ(to_hex(t0), vector.t0);
        EXPECT_EQ(to_hex(t1), vector.t1);
        t0 = {};
        kdf1(t0, key, input);
        EXPECT_EQ(to_hex(t0), vector.t0);
    }
}

TEST(Kdf, OutputMayReplaceTheKey) {
    // The Noise chaining key is derived in place: C = KDF1(C, input).
    auto key =
        array_from_hex<32>("746573742d6b6579746573742d6b6579746573742d6b6579746573742d6b6579");
    const auto input = from_hex("746573742d696e707574");
    Hash expected;
    kdf1(expected, key, input);
    kdf1(key, key, input);
    EXPECT_EQ(key, expected);
}

TEST(Hmac, EmptyKeyIsAKeyNotTheLastOne) {
    // EVP_MAC_init with a null key reuses the previous key; an empty key must not.
    Hash with_key;
    Hash empty_key_first;
    hmac_blake2s(empty_key_first, {}, {as_bytes("x")});
    hmac_blake2s(with_key, as_bytes("some key"), {as_bytes("x")});
    Hash empty_key_again;
    hmac_blake2s(empty_key_again, {}, {as_bytes("x")});
    EXPECT_EQ(empty_key_first, empty_key_again);
    EXPECT_NE(with_key, empty_key_again);
}

TEST(NoiseConstants, ConstructionAndIdentifierHashes) {
    const Hash chaining_key = blake2s({as_bytes("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s")});
    EXPECT_EQ(to_hex(chaining_key),
              "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
    const Hash hash = blake2s({chaining_key, as_bytes("WireGuard v1 zx2c4 Jason@zx2c4.com")});
    EXPECT_EQ(to_hex(hash), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
}

constexpr const char* kSunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

TEST(ChaCha20Poly1305, Rfc8439Section2_8_2) {
    const auto key =
        array_from_hex<32>("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    const auto nonce = array_from_hex<12>("070000004041424344454647");
    const auto ad = from_hex("50515253c0c1c2c3c4c5c6c7");
    const std::string plaintext = kSunscreen;
    std::vector<uint8_t> buffer(plaintext.begin(), plaintext.end());
    std::array<uint8_t, 16> tag;
    ASSERT_TRUE(seal_in_place_with_nonce(key, nonce, buffer, tag, ad));
    EXPECT_EQ(to_hex(buffer),
              "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca967128"
              "2fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fa"
              "b324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116");
    EXPECT_EQ(to_hex(tag), "1ae10b594f09e26a7e902ecbd0600691");

    buffer.insert(buffer.end(), tag.begin(), tag.end());
    const auto opened = open_in_place_with_nonce(key, nonce, buffer, ad);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(std::string(buffer.begin(), buffer.begin() + static_cast<long>(*opened)), plaintext);
}

TEST(ChaCha20Poly1305, CounterIsTheLittleEndianTailOfTheNonce) {
    const auto key =
        array_from_hex<32>("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
    const auto nonce = array_from_hex<12>("000000000102030405060708");
    std::vector<uint8_t> by_nonce(100, 0x5a);
    std::vector<uint8_t> by_counter = by_nonce;
    std::array<uint8_t, 16> tag_by_nonce;
    std::array<uint8_t, 16> tag_by_counter;
    ASSERT_TRUE(seal_in_place_with_nonce(key, nonce, by_nonce, tag_by_nonce));
    ASSERT_TRUE(seal_in_place(key, 0x0807060504030201, by_counter, tag_by_counter));
    EXPECT_EQ(by_nonce, by_counter);
    EXPECT_EQ(tag_by_nonce, tag_by_counter);
}

TEST(XChaCha20Poly1305, DraftIrtfCfrgXchacha03AppendixA3_1) {
    const auto key =
        array_from_hex<32>("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    const auto nonce = array_from_hex<24>("404142434445464748494a4b4c4d4e4f5051525354555657");
    const auto ad = from_hex("50515253c0c1c2c3c4c5c6c7");
    const std::string plaintext = kSunscreen;
    std::vector<uint8_t> sealed(plaintext.size() + 16);
    xseal(key, nonce, as_bytes(plaintext), sealed, ad);
    EXPECT_EQ(to_hex(sealed),
              "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa644"
              "0bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f"
              "3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
              "c0875924c1c7987947deafd8780acf49");
    std::vector<uint8_t> opened(plaintext.size());
    ASSERT_TRUE(xopen(key, nonce, sealed, opened, ad));
    EXPECT_EQ(std::string(opened.begin(), opened.end()), plaintext);
    sealed[5] ^= 1;
    EXPECT_FALSE(xopen(key, nonce, sealed, opened, ad));
}

SecretKey secret_from_hex(std::string_view hex) {
    return SecretKey(array_from_hex<32>(hex));
}

TEST(X25519, Rfc7748Section5_2) {
    const std::tuple<const char*, const char*, const char*> vectors[] = {
        {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
         "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
         "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
        {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
         "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
         "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
    };
    for (const auto& [scalar, point, expected] : vectors) {
        SecretKey shared;
        ASSERT_TRUE(x25519(shared, secret_from_hex(scalar), array_from_hex<32>(point)));
        EXPECT_EQ(to_hex(shared.bytes()), expected);
    }
}

TEST(X25519, Rfc7748Section5_2Iterated) {
    // k = u = 9; repeatedly k, u = X25519(k, u), k.
    auto k = array_from_hex<32>("0900000000000000000000000000000000000000000000000000000000000000");
    auto u = k;
    for (int i = 1; i <= 1000; ++i) {
        SecretKey result;
        ASSERT_TRUE(x25519(result, SecretKey(k), u));
        u = k;
        std::copy(result.bytes().begin(), result.bytes().end(), k.begin());
        if (i == 1) {
            EXPECT_EQ(to_hex(k),
                      "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
        }
    }
    EXPECT_EQ(to_hex(k), "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

TEST(X25519, Rfc7748Section6_1) {
    const SecretKey alice =
        secret_from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const SecretKey bob =
        secret_from_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    const PublicKey alice_public = public_key_of(alice);
    const PublicKey bob_public = public_key_of(bob);
    EXPECT_EQ(to_hex(alice_public),
              "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    EXPECT_EQ(to_hex(bob_public),
              "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    SecretKey alice_shared;
    SecretKey bob_shared;
    ASSERT_TRUE(x25519(alice_shared, alice, bob_public));
    ASSERT_TRUE(x25519(bob_shared, bob, alice_public));
    const char* expected = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    EXPECT_EQ(to_hex(alice_shared.bytes()), expected);
    EXPECT_EQ(to_hex(bob_shared.bytes()), expected);
}

TEST(X25519, RejectsLowOrderPointsWithAnAllZeroResult) {
    const SecretKey alice =
        secret_from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const char* low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",  // 0
        "0100000000000000000000000000000000000000000000000000000000000000",  // 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  // order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p - 1
    };
    for (const char* point : low_order) {
        SecretKey shared;
        shared.bytes()[0] = 0xaa;
        EXPECT_FALSE(x25519(shared, alice, array_from_hex<32>(point))) << point;
        EXPECT_TRUE(shared.is_zero());
    }
}

}  // namespace
}  // namespace tunlab::crypto
