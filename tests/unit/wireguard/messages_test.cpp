// Message layouts: the classifier's rules and field offsets against the WireGuard protocol's
// message table (wireguard.com/protocol, and the kernel's drivers/net/wireguard/messages.h).

#include "protocols/wireguard/messages.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace tunlab::wireguard {
namespace {

std::vector<uint8_t> message(uint8_t type, size_t size) {
    std::vector<uint8_t> bytes(size);
    std::iota(bytes.begin(), bytes.end(), uint8_t{0x10});
    if (size > 0)
        bytes[0] = type;
    if (size > 3)
        bytes[1] = bytes[2] = bytes[3] = 0;
    return bytes;
}

TEST(Messages, ClassifierChecksTypeReservedBytesAndExactSize) {
    EXPECT_EQ(message_type(message(1, 148)), MessageType::Initiation);
    EXPECT_EQ(message_type(message(2, 92)), MessageType::Response);
    EXPECT_EQ(message_type(message(3, 64)), MessageType::CookieReply);
    EXPECT_EQ(message_type(message(4, 32)), MessageType::Transport);
    EXPECT_EQ(message_type(message(4, 1452)), MessageType::Transport);
    EXPECT_EQ(message_type(message(4, 33)), MessageType::Transport);  // unpadded tail is legal

    EXPECT_EQ(message_type(message(1, 147)), MessageType::Invalid);
    EXPECT_EQ(message_type(message(1, 149)), MessageType::Invalid);
    EXPECT_EQ(message_type(message(2, 148)), MessageType::Invalid);
    EXPECT_EQ(message_type(message(3, 65)), MessageType::Invalid);
    EXPECT_EQ(message_type(message(4, 31)), MessageType::Invalid);
    EXPECT_EQ(message_type(message(0, 148)), MessageType::Invalid);
    EXPECT_EQ(message_type(message(5, 148)), MessageType::Invalid);
    EXPECT_EQ(message_type({}), MessageType::Invalid);
    EXPECT_EQ(message_type(message(4, 3)), MessageType::Invalid);
    for (size_t reserved = 1; reserved <= 3; ++reserved) {
        auto bytes = message(4, 32);
        bytes[reserved] = 1;
        EXPECT_EQ(message_type(bytes), MessageType::Invalid) << reserved;
    }
}

TEST(Messages, InitiationFieldsAtTheirOffsets) {
    const auto bytes = message(1, kInitiationSize);
    const auto parsed = parse_initiation(bytes);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->sender, 0x17161514u);  // little-endian at 4
    EXPECT_EQ(parsed->ephemeral[0], bytes[8]);
    EXPECT_EQ(parsed->encrypted_static[0], bytes[40]);
    EXPECT_EQ(parsed->encrypted_timestamp[0], bytes[88]);
    EXPECT_EQ(parsed->mac1[0], bytes[116]);
    EXPECT_EQ(parsed->mac2[15], bytes[147]);
    std::array<uint8_t, kInitiationSize> round_trip;
    serialize(*parsed, round_trip);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), round_trip.begin()));
    EXPECT_FALSE(parse_initiation(message(1, 147)).has_value());
    EXPECT_FALSE(parse_initiation(message(2, 92)).has_value());
}

TEST(Messages, ResponseFieldsAtTheirOffsets) {
    const auto bytes = message(2, kResponseSize);
    const auto parsed = parse_response(bytes);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->sender, 0x17161514u);
    EXPECT_EQ(parsed->receiver, 0x1b1a1918u);
    EXPECT_EQ(parsed->ephemeral[0], bytes[12]);
    EXPECT_EQ(parsed->encrypted_empty[0], bytes[44]);
    EXPECT_EQ(parsed->mac1[0], bytes[60]);
    EXPECT_EQ(parsed->mac2[15], bytes[91]);
    std::array<uint8_t, kResponseSize> round_trip;
    serialize(*parsed, round_trip);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), round_trip.begin()));
    EXPECT_EQ(receiver_index(bytes), 0x1b1a1918u);
}

TEST(Messages, CookieReplyAndTransportFields) {
    const auto reply = message(3, kCookieReplySize);
    const auto parsed = parse_cookie_reply(reply);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->receiver, 0x17161514u);
    EXPECT_EQ(parsed->nonce[0], reply[8]);
    EXPECT_EQ(parsed->encrypted_cookie[31], reply[63]);
    std::array<uint8_t, kCookieReplySize> round_trip;
    serialize(*parsed, round_trip);
    EXPECT_TRUE(std::equal(reply.begin(), reply.end(), round_trip.begin()));
    EXPECT_EQ(receiver_index(reply), 0x17161514u);

    std::array<uint8_t, 48> transport{};
    write_transport_header({0xa1b2c3d4, 0x0102030405060708}, std::span(transport).first<16>());
    EXPECT_EQ(transport[0], 4);
    EXPECT_EQ(transport[4], 0xd4);
    EXPECT_EQ(transport[8], 0x08);
    EXPECT_EQ(transport[15], 0x01);
    const auto header = parse_transport_header(transport);
    ASSERT_TRUE(header.has_value());
    EXPECT_EQ(header->receiver, 0xa1b2c3d4u);
    EXPECT_EQ(header->counter, 0x0102030405060708u);
    EXPECT_EQ(receiver_index(transport), 0xa1b2c3d4u);
    EXPECT_FALSE(receiver_index(message(1, kInitiationSize)).has_value());
}

}  // namespace
}  // namespace tunlab::wireguard
