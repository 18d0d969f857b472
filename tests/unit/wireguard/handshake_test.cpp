// The Noise_IKpsk2 handshake in memory: both roles, every field tampered with, replays, floods,
// preshared keys and the stages that refuse out-of-order calls.

#include "protocols/wireguard/handshake.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string_view>

#include "crypto/constant_time.hpp"
#include "handshake_fixture.hpp"
#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {
namespace {

using test_support::at_second;
using test_support::HandshakeTest;
using test_support::Side;

struct Sessions {
    std::unique_ptr<Keypair> initiator;
    std::unique_ptr<Keypair> responder;
};

class Handshake : public HandshakeTest {
  protected:
    Sessions run(Side& initiator, Side& responder, int64_t second = 0) {
        const auto initiation = initiation_from(initiator, responder, second, 0xaaaa0001);
        const auto consumed =
            consume_initiation(responder.identity, initiation, responder.lookup(), now_us);
        EXPECT_EQ(consumed.error, HandshakeError::Ok);
        if (consumed.error != HandshakeError::Ok) {
            return {};
        }
        EXPECT_EQ(consumed.peer, &responder.state_for(initiator));
        std::array<uint8_t, kResponseSize> response{};
        EXPECT_EQ(consumed.peer->create_response(0xbbbb0002, now_us, responder.random, response),
                  HandshakeError::Ok);
        Sessions sessions;
        sessions.responder = consumed.peer->derive_keypair(now_us);
        EXPECT_EQ(initiator.state_for(responder).consume_response(initiator.identity, response),
                  HandshakeError::Ok);
        sessions.initiator = initiator.state_for(responder).derive_keypair(now_us);
        return sessions;
    }

    static void expect_matching(const Sessions& sessions) {
        ASSERT_NE(sessions.initiator, nullptr);
        ASSERT_NE(sessions.responder, nullptr);
        const Keypair& i = *sessions.initiator;
        const Keypair& r = *sessions.responder;
        EXPECT_TRUE(crypto::equal_constant_time(i.send_key.bytes(), r.receive_key.bytes()));
        EXPECT_TRUE(crypto::equal_constant_time(i.receive_key.bytes(), r.send_key.bytes()));
        EXPECT_FALSE(crypto::equal_constant_time(i.send_key.bytes(), i.receive_key.bytes()));
        EXPECT_FALSE(i.send_key.is_zero());
        EXPECT_EQ(i.local_index, 0xaaaa0001u);
        EXPECT_EQ(i.remote_index, 0xbbbb0002u);
        EXPECT_EQ(r.local_index, 0xbbbb0002u);
        EXPECT_EQ(r.remote_index, 0xaaaa0001u);
        EXPECT_TRUE(i.is_initiator);
        EXPECT_FALSE(r.is_initiator);
    }
};

TEST_F(Handshake, CompletesInBothDirectionsWithMatchingKeys) {
    const Sessions alice_first = run(alice, bob, 1);
    expect_matching(alice_first);
    const Sessions bob_first = run(bob, alice, 2);
    expect_matching(bob_first);
    // Fresh ephemerals every time: new keys.
    EXPECT_FALSE(crypto::equal_constant_time(alice_first.initiator->send_key.bytes(),
                                             bob_first.responder->send_key.bytes()));
}

TEST_F(Handshake, DerivingWipesTheHandshakeAndMovesTheIndexToTheKeypair) {
    const Sessions sessions = run(alice, bob);
    expect_matching(sessions);
    for (HandshakeState* state : {&alice.state_for(bob), &bob.state_for(alice)}) {
        EXPECT_EQ(state->stage(), HandshakeStage::Zeroed);
        EXPECT_EQ(state->local_index(), 0u);
        EXPECT_EQ(state->derive_keypair(now_us), nullptr);
    }
}

TEST_F(Handshake, MatchingPresharedKeysWorkAndDifferentOnesGiveNoSession) {
    std::array<uint8_t, 32> psk;
    psk.fill(0x42);
    alice.state_for(bob).set_preshared_key(psk);
    bob.state_for(alice).set_preshared_key(psk);
    expect_matching(run(alice, bob, 1));

    psk.fill(0x43);
    bob.state_for(alice).set_preshared_key(psk);
    now_us += kSecond;
    const auto initiation = initiation_from(alice, bob, 2);
    // The preshared key enters only with the response: the initiation is still accepted...
    const auto consumed = consume_initiation(bob.identity, initiation, bob.lookup(), now_us);
    ASSERT_EQ(consumed.error, HandshakeError::Ok);
    std::array<uint8_t, kResponseSize> response{};
    ASSERT_EQ(consumed.peer->create_response(7, now_us, bob.random, response), HandshakeError::Ok);
    // ...but its response does not authenticate, and the initiator derives nothing.
    EXPECT_EQ(alice.state_for(bob).consume_response(alice.identity, response),
              HandshakeError::DecryptFailed);
    EXPECT_EQ(alice.state_for(bob).derive_keypair(now_us), nullptr);
}

TEST_F(Handshake, InitiationFieldsTamperedWithFailEachWithItsError) {
    const auto good = initiation_from(alice, bob, 1);
    auto check = [&](auto&& change, bool recompute_mac1, HandshakeError expected) {
        auto bytes = good;
        change(bytes);
        if (recompute_mac1) {
            fix_mac1(bytes, bob);
        }
        return consume_initiation(bob.identity, bytes, bob.lookup(), now_us).error == expected;
    };
    EXPECT_TRUE(check([](auto& b) { b[0] = 2; }, false, HandshakeError::BadMessage));
    EXPECT_TRUE(check([](auto& b) { b[2] = 1; }, false, HandshakeError::BadMessage));
    for (size_t offset : {4u, 8u, 40u, 88u, 116u}) {  // any byte before mac2: mac1 breaks
        EXPECT_TRUE(check([&](auto& b) { b[offset] ^= 1; }, false, HandshakeError::BadMac1))
            << offset;
    }
    EXPECT_TRUE(check([](auto& b) { b[8] ^= 1; }, true, HandshakeError::DecryptFailed));
    EXPECT_TRUE(check([](auto& b) { std::fill(b.begin() + 8, b.begin() + 40, 0); }, true,
                      HandshakeError::InvalidPublicKey));
    EXPECT_TRUE(check([](auto& b) { b[50] ^= 1; }, true, HandshakeError::DecryptFailed));
    EXPECT_TRUE(check([](auto& b) { b[87] ^= 1; }, true, HandshakeError::DecryptFailed));
    EXPECT_TRUE(check([](auto& b) { b[90] ^= 1; }, true, HandshakeError::DecryptFailed));
    EXPECT_TRUE(check([](auto& b) { b[115] ^= 1; }, true, HandshakeError::DecryptFailed));
    // Nothing failed halfway: the genuine message is still accepted, once.
    EXPECT_EQ(consume_initiation(bob.identity, good, bob.lookup(), now_us).error,
              HandshakeError::Ok);
}

TEST_F(Handshake, SenderIndexAndMac2AreNotPartOfTheTranscript) {
    // As in every implementation: the sender index is outside the Noise hash (a changed one
    // only misdirects the response, which then fails), and mac2 is checked by the cookie layer
    // only under load.
    auto bytes = initiation_from(alice, bob, 1);
    bytes[4] ^= 1;
    fix_mac1(bytes, bob);
    bytes[140] ^= 1;
    EXPECT_EQ(consume_initiation(bob.identity, bytes, bob.lookup(), now_us).error,
              HandshakeError::Ok);
    EXPECT_EQ(bob.state_for(alice).remote_index(), 0x11111111u ^ 1u);
}

TEST_F(Handshake, InitiationForSomeoneElseOrFromAStrangerIsRefused) {
    Side dave(4);
    dave.know(alice);
    alice.know(dave);
    // Meant for dave: mac1 is keyed with dave's public key, not bob's.
    const auto for_dave = initiation_from(alice, dave, 1);
    EXPECT_EQ(consume_initiation(bob.identity, for_dave, bob.lookup(), now_us).error,
              HandshakeError::BadMac1);
    // Carol knows bob, bob does not know carol.
    const auto from_carol = initiation_from(carol, bob, 1);
    const auto consumed = consume_initiation(bob.identity, from_carol, bob.lookup(), now_us);
    EXPECT_EQ(consumed.error, HandshakeError::UnknownPeer);
    EXPECT_EQ(consumed.peer, nullptr);
}

TEST_F(Handshake, ReplayedOrOlderInitiationIsStale) {
    const auto first = initiation_from(alice, bob, 10);
    ASSERT_EQ(consume_initiation(bob.identity, first, bob.lookup(), now_us).error,
              HandshakeError::Ok);
    now_us += 1'000'000;
    const auto replay = consume_initiation(bob.identity, first, bob.lookup(), now_us);
    EXPECT_EQ(replay.error, HandshakeError::StaleTimestamp);
    EXPECT_EQ(replay.peer, &bob.state_for(alice));
    const auto older = initiation_from(alice, bob, 9);
    EXPECT_EQ(consume_initiation(bob.identity, older, bob.lookup(), now_us).error,
              HandshakeError::StaleTimestamp);
    // Same second, within the 2^24 ns whitening: the same timestamp, so also stale.
    auto same = Tai64n::from_unix(1'700'000'010, 5'000'000);
    EXPECT_EQ(same, at_second(10));
    const auto newer = initiation_from(alice, bob, 11);
    EXPECT_EQ(consume_initiation(bob.identity, newer, bob.lookup(), now_us).error,
              HandshakeError::Ok);
}

TEST_F(Handshake, MoreThanFiftyInitiationsPerSecondAreAFlood) {
    ASSERT_EQ(consume_initiation(bob.identity, initiation_from(alice, bob, 1), bob.lookup(), now_us)
                  .error,
              HandshakeError::Ok);
    now_us += 19'999;
    EXPECT_EQ(consume_initiation(bob.identity, initiation_from(alice, bob, 2), bob.lookup(), now_us)
                  .error,
              HandshakeError::Flood);
    now_us += 1;
    EXPECT_EQ(consume_initiation(bob.identity, initiation_from(alice, bob, 3), bob.lookup(), now_us)
                  .error,
              HandshakeError::Ok);
}

TEST_F(Handshake, ResponseFieldsTamperedWithFailEachWithItsError) {
    const auto initiation = initiation_from(alice, bob, 1, 0x01020304);
    const auto consumed = consume_initiation(bob.identity, initiation, bob.lookup(), now_us);
    ASSERT_EQ(consumed.error, HandshakeError::Ok);
    std::array<uint8_t, kResponseSize> good{};
    ASSERT_EQ(consumed.peer->create_response(0x0a0b0c0d, now_us, bob.random, good),
              HandshakeError::Ok);
    HandshakeState& state = alice.state_for(bob);
    auto check = [&](auto&& change, bool recompute_mac1) {
        auto bytes = good;
        change(bytes);
        if (recompute_mac1) {
            fix_mac1(bytes, alice);
        }
        return state.consume_response(alice.identity, bytes);
    };
    EXPECT_EQ(check([](auto& b) { b[0] = 1; }, false), HandshakeError::BadMessage);
    EXPECT_EQ(check([](auto& b) { b[3] = 1; }, false), HandshakeError::BadMessage);
    for (size_t offset : {4u, 8u, 12u, 44u, 60u}) {
        EXPECT_EQ(check([&](auto& b) { b[offset] ^= 1; }, false), HandshakeError::BadMac1)
            << offset;
    }
    EXPECT_EQ(check([](auto& b) { b[8] ^= 1; }, true), HandshakeError::UnknownIndex);
    EXPECT_EQ(check([](auto& b) { b[12] ^= 1; }, true), HandshakeError::DecryptFailed);
    EXPECT_EQ(check([](auto& b) { std::fill(b.begin() + 12, b.begin() + 44, 0); }, true),
              HandshakeError::InvalidPublicKey);
    EXPECT_EQ(check([](auto& b) { b[50] ^= 1; }, true), HandshakeError::DecryptFailed);
    // None of that disturbed the pending initiation: the real response completes it.
    EXPECT_EQ(state.consume_response(alice.identity, good), HandshakeError::Ok);
    // And a second time there is nothing pending.
    EXPECT_EQ(state.consume_response(alice.identity, good), HandshakeError::WrongState);
}

TEST_F(Handshake, StagesRefuseOutOfOrderCalls) {
    std::array<uint8_t, kResponseSize> response{};
    EXPECT_EQ(bob.state_for(alice).create_response(1, now_us, bob.random, response),
              HandshakeError::WrongState);
    EXPECT_EQ(bob.state_for(alice).derive_keypair(now_us), nullptr);

    // A response with no initiation of ours pending.
    const auto initiation = initiation_from(bob, alice, 1);
    const auto consumed = consume_initiation(alice.identity, initiation, alice.lookup(), now_us);
    ASSERT_EQ(consumed.error, HandshakeError::Ok);
    ASSERT_EQ(consumed.peer->create_response(2, now_us, alice.random, response),
              HandshakeError::Ok);
    EXPECT_EQ(alice.state_for(bob).consume_response(alice.identity, response),
              HandshakeError::BadMac1);  // addressed to bob, not alice
    Side fresh_bob(2);                   // the same identity as bob, with nothing pending
    fresh_bob.know(alice);
    EXPECT_EQ(fresh_bob.state_for(alice).consume_response(fresh_bob.identity, response),
              HandshakeError::WrongState);
}

TEST_F(Handshake, LowOrderPeerKeyCannotHandshake) {
    crypto::PublicKey low_order{};
    low_order[0] = 1;  // the point of order 1
    HandshakeState state(alice.identity, low_order);
    std::array<uint8_t, kInitiationSize> out{};
    EXPECT_EQ(state.create_initiation(alice.identity, 1, at_second(1), now_us, alice.random, out),
              HandshakeError::InvalidPublicKey);
}

TEST_F(Handshake, ClearedHandshakeStillRefusesReplays) {
    const auto first = initiation_from(alice, bob, 5);
    ASSERT_EQ(consume_initiation(bob.identity, first, bob.lookup(), now_us).error,
              HandshakeError::Ok);
    bob.state_for(alice).clear();
    now_us += 1'000'000;
    EXPECT_EQ(consume_initiation(bob.identity, first, bob.lookup(), now_us).error,
              HandshakeError::StaleTimestamp);
}

TEST_F(Handshake, ErrorNamesAreDistinct) {
    std::set<std::string_view> names;
    for (int i = 0; i <= static_cast<int>(HandshakeError::UnknownIndex); ++i) {
        names.insert(handshake_error_name(static_cast<HandshakeError>(i)));
    }
    EXPECT_EQ(names.size(), static_cast<size_t>(HandshakeError::UnknownIndex) + 1);
}

}  // namespace
}  // namespace tunlab::wireguard
