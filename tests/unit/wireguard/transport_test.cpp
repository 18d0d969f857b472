// Transport messages on keypairs from a real handshake, and the previous/current/next rotation.

#include "protocols/wireguard/transport.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "crypto/constant_time.hpp"
#include "handshake_fixture.hpp"
#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {
namespace {

using test_support::HandshakeTest;

class Transport : public HandshakeTest {
  protected:
    void SetUp() override {
        const auto initiation = initiation_from(alice, bob, 1, 0x1000);
        const auto consumed = consume_initiation(bob.identity, initiation, bob.lookup(), now_us);
        ASSERT_EQ(consumed.error, HandshakeError::Ok);
        std::array<uint8_t, kResponseSize> response{};
        ASSERT_EQ(consumed.peer->create_response(0x2000, now_us, bob.random, response),
                  HandshakeError::Ok);
        bob_keypair = consumed.peer->derive_keypair(now_us);
        ASSERT_EQ(alice.state_for(bob).consume_response(alice.identity, response),
                  HandshakeError::Ok);
        alice_keypair = alice.state_for(bob).derive_keypair(now_us);
    }

    // A buffer as the data plane fills it: header room, the packet, room for padding and tag.
    static std::vector<uint8_t> outgoing(size_t packet_length, uint8_t fill = 0x45) {
        std::vector<uint8_t> buffer(kTransportHeaderSize + packet_length + kMaxPadding + kTagSize);
        std::fill_n(buffer.begin() + kTransportHeaderSize, packet_length, fill);
        return buffer;
    }

    std::unique_ptr<Keypair> alice_keypair;
    std::unique_ptr<Keypair> bob_keypair;
};

TEST_F(Transport, PaddingToSixteenButNeverPastTheMtu) {
    EXPECT_EQ(padding_for(0, 1420), 0u);
    EXPECT_EQ(padding_for(1, 1420), 15u);
    EXPECT_EQ(padding_for(16, 1420), 0u);
    EXPECT_EQ(padding_for(1419, 1420), 1u);  // 1420 is a multiple of 4, not of 16
    EXPECT_EQ(padding_for(1420, 1420), 0u);
    EXPECT_EQ(padding_for(1415, 1420), 5u);
    EXPECT_EQ(padding_for(17, 0), 15u);
}

TEST_F(Transport, SealedByOneSideOpensOnTheOther) {
    for (const size_t length : {0u, 1u, 20u, 64u, 1400u, 1420u}) {
        auto buffer = outgoing(length);
        const auto sealed = seal_transport(*alice_keypair, buffer, length, 1420, now_us);
        ASSERT_EQ(sealed.status, TransportStatus::Ok);
        const size_t padded = length + padding_for(length, 1420);
        ASSERT_EQ(sealed.size, kTransportHeaderSize + padded + kTagSize);
        const std::span<uint8_t> datagram(buffer.data(), sealed.size);
        ASSERT_EQ(message_type(datagram), MessageType::Transport);
        EXPECT_EQ(receiver_index(datagram), 0x2000u);

        const auto opened = open_transport(*bob_keypair, datagram, now_us);
        ASSERT_EQ(opened.status, TransportStatus::Ok) << length;
        ASSERT_EQ(opened.plaintext.size(), padded);
        EXPECT_TRUE(std::all_of(opened.plaintext.begin(), opened.plaintext.begin() + length,
                                [](uint8_t b) { return b == 0x45; }));
        EXPECT_TRUE(std::all_of(opened.plaintext.begin() + length, opened.plaintext.end(),
                                [](uint8_t b) { return b == 0; }));
    }
    // And back.
    auto buffer = outgoing(100, 0x60);
    const auto sealed = seal_transport(*bob_keypair, buffer, 100, 1420, now_us);
    ASSERT_EQ(sealed.status, TransportStatus::Ok);
    const auto opened =
        open_transport(*alice_keypair, std::span(buffer).first(sealed.size), now_us);
    EXPECT_EQ(opened.status, TransportStatus::Ok);
    EXPECT_EQ(opened.counter, 0u);
}

TEST_F(Transport, CountersAdvanceAndReplaysAreRefused) {
    std::vector<std::vector<uint8_t>> datagrams;
    for (int i = 0; i < 3; ++i) {
        auto buffer = outgoing(32);
        const auto sealed = seal_transport(*alice_keypair, buffer, 32, 1420, now_us);
        ASSERT_EQ(sealed.status, TransportStatus::Ok);
        buffer.resize(sealed.size);
        EXPECT_EQ(parse_transport_header(buffer)->counter, static_cast<uint64_t>(i));
        datagrams.push_back(buffer);
    }
    auto copy = datagrams[2];
    EXPECT_EQ(open_transport(*bob_keypair, datagrams[2], now_us).status, TransportStatus::Ok);
    EXPECT_EQ(open_transport(*bob_keypair, datagrams[0], now_us).status, TransportStatus::Ok);
    EXPECT_EQ(open_transport(*bob_keypair, copy, now_us).status, TransportStatus::Replayed);
}

TEST_F(Transport, ForgeriesFailWithoutMovingTheWindow) {
    auto buffer = outgoing(64);
    const auto sealed = seal_transport(*alice_keypair, buffer, 64, 1420, now_us);
    buffer.resize(sealed.size);
    auto forged = buffer;
    forged[8] = 0x55;  // a counter far ahead, not authenticated
    EXPECT_EQ(open_transport(*bob_keypair, forged, now_us).status, TransportStatus::DecryptFailed);
    forged = buffer;
    forged[30] ^= 1;
    EXPECT_EQ(open_transport(*bob_keypair, forged, now_us).status, TransportStatus::DecryptFailed);
    forged = buffer;
    forged[4] ^= 1;  // another receiver: not this keypair's message
    EXPECT_EQ(open_transport(*bob_keypair, forged, now_us).status, TransportStatus::Malformed);
    EXPECT_EQ(open_transport(*bob_keypair, std::span(buffer).first(31), now_us).status,
              TransportStatus::Malformed);
    EXPECT_EQ(open_transport(*bob_keypair, buffer, now_us).status, TransportStatus::Ok);
}

TEST_F(Transport, KeypairsExpireAfterRejectAfterTime) {
    auto buffer = outgoing(10);
    const uint64_t late = now_us + kRejectAfterTime;
    EXPECT_EQ(seal_transport(*alice_keypair, buffer, 10, 1420, late - 1).status,
              TransportStatus::Ok);
    const auto sealed = seal_transport(*alice_keypair, buffer = outgoing(10), 10, 1420, late);
    EXPECT_EQ(sealed.status, TransportStatus::Expired);
    buffer = outgoing(10);
    const auto fresh = seal_transport(*alice_keypair, buffer, 10, 1420, now_us);
    EXPECT_EQ(open_transport(*bob_keypair, std::span(buffer).first(fresh.size), late).status,
              TransportStatus::Expired);
}

TEST_F(Transport, SendingStopsAtRejectAfterMessages) {
    alice_keypair->send_counter = kRejectAfterMessages - 1;
    auto buffer = outgoing(10);
    const auto last = seal_transport(*alice_keypair, buffer, 10, 1420, now_us);
    ASSERT_EQ(last.status, TransportStatus::Ok);
    EXPECT_EQ(parse_transport_header(std::span(buffer).first(last.size))->counter,
              kRejectAfterMessages - 1);
    EXPECT_EQ(open_transport(*bob_keypair, std::span(buffer).first(last.size), now_us).status,
              TransportStatus::Ok);
    buffer = outgoing(10);
    EXPECT_EQ(seal_transport(*alice_keypair, buffer, 10, 1420, now_us).status,
              TransportStatus::CounterExhausted);
}

TEST_F(Transport, TooSmallABufferIsRefused) {
    std::vector<uint8_t> buffer(kTransportHeaderSize + 17 + kTagSize);  // no room for padding
    EXPECT_EQ(seal_transport(*alice_keypair, buffer, 17, 1420, now_us).status,
              TransportStatus::NoRoom);
    EXPECT_EQ(alice_keypair->send_counter, 0u);  // no counter spent
    EXPECT_EQ(seal_transport(*alice_keypair, buffer, 16, 1420, now_us).status, TransportStatus::Ok);
}

TEST(Keypairs, ResponderKeypairWaitsAsNextUntilConfirmed) {
    Keypairs keypairs;
    auto make = [](uint32_t index, bool initiator) {
        auto keypair = std::make_unique<Keypair>();
        keypair->local_index = index;
        keypair->is_initiator = initiator;
        return keypair;
    };
    auto retired = keypairs.install(make(1, true));
    EXPECT_EQ(retired.count, 0u);
    EXPECT_EQ(keypairs.current()->local_index, 1u);

    retired = keypairs.install(make(2, false));  // responder: next
    EXPECT_EQ(retired.count, 0u);
    EXPECT_EQ(keypairs.current()->local_index, 1u);
    EXPECT_EQ(keypairs.next()->local_index, 2u);
    EXPECT_EQ(keypairs.find(2), keypairs.next());

    RetiredIndices confirmed_retired;
    EXPECT_FALSE(keypairs.received_with(keypairs.current(), confirmed_retired));
    EXPECT_TRUE(keypairs.received_with(keypairs.next(), confirmed_retired));
    EXPECT_EQ(keypairs.current()->local_index, 2u);
    EXPECT_EQ(keypairs.previous()->local_index, 1u);
    EXPECT_EQ(keypairs.next(), nullptr);
    EXPECT_EQ(confirmed_retired.count, 0u);

    // An initiator's keypair while a responder's waits: the waiting one becomes previous.
    keypairs.install(make(3, false));
    retired = keypairs.install(make(4, true));
    EXPECT_EQ(keypairs.current()->local_index, 4u);
    EXPECT_EQ(keypairs.previous()->local_index, 3u);
    EXPECT_EQ(keypairs.next(), nullptr);
    ASSERT_EQ(retired.count, 1u);  // previous (1) went when 3 was installed, current (2) now
    EXPECT_EQ(retired.indices[0], 2u);

    retired = keypairs.clear();
    EXPECT_EQ(retired.count, 2u);
    EXPECT_EQ(keypairs.current(), nullptr);
    EXPECT_EQ(keypairs.find(4), nullptr);
}

}  // namespace
}  // namespace tunlab::wireguard
