#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "parse_helpers.hpp"
#include "peers/inner_packet.hpp"

namespace tunlab {
namespace {

using test_support::endpoint;
using test_support::ip;
using test_support::prefix;

void put_be16(std::vector<uint8_t>& packet, size_t offset, size_t value) {
    packet[offset] = static_cast<uint8_t>(value >> 8);
    packet[offset + 1] = static_cast<uint8_t>(value & 0xff);
}

// An IPv4 packet: `header_words` 32-bit words of header (5 without options), then `payload`
// bytes; the total length field says the truth.
std::vector<uint8_t> ipv4_packet(std::string_view source, std::string_view destination,
                                 size_t payload, unsigned header_words = 5) {
    std::vector<uint8_t> packet(header_words * 4 + payload, 0);
    packet[0] = static_cast<uint8_t>(0x40 | header_words);
    put_be16(packet, 2, packet.size());
    packet[8] = 64;  // TTL
    packet[9] = 17;  // UDP
    const IpAddress from = ip(source);
    const IpAddress to = ip(destination);
    std::copy_n(from.bytes.begin(), 4, packet.begin() + 12);
    std::copy_n(to.bytes.begin(), 4, packet.begin() + 16);
    for (size_t i = 20; i < packet.size(); ++i) {
        packet[i] = static_cast<uint8_t>(i * 7);
    }
    return packet;
}

std::vector<uint8_t> ipv6_packet(std::string_view source, std::string_view destination,
                                 size_t payload) {
    std::vector<uint8_t> packet(40 + payload, 0);
    packet[0] = 0x60;
    put_be16(packet, 4, payload);
    packet[6] = 17;
    packet[7] = 64;
    const IpAddress from = ip(source);
    const IpAddress to = ip(destination);
    std::copy_n(from.bytes.begin(), 16, packet.begin() + 8);
    std::copy_n(to.bytes.begin(), 16, packet.begin() + 24);
    for (size_t i = 40; i < packet.size(); ++i) {
        packet[i] = static_cast<uint8_t>(i * 7);
    }
    return packet;
}

using Result = std::variant<IpHeaderInfo, DropReason>;

// The drop reason, or DropReason::Count for an accepted packet.
DropReason reason(const Result& result) {
    const auto* dropped = std::get_if<DropReason>(&result);
    return dropped == nullptr ? DropReason::Count : *dropped;
}

DropReason check(const std::vector<uint8_t>& packet, size_t mtu = 1500) {
    return reason(validate_ip_packet(packet, mtu));
}

TEST(ValidateIpPacket, Empty) {
    EXPECT_EQ(reason(validate_ip_packet({}, 1500)), DropReason::Empty);
}

TEST(ValidateIpPacket, Truncated) {
    // Shorter than the fixed header of the version it announces.
    EXPECT_EQ(check({0x45}), DropReason::Truncated);
    auto v4 = ipv4_packet("10.0.0.1", "10.0.0.2", 0);
    v4.resize(19);
    EXPECT_EQ(check(v4), DropReason::Truncated);
    EXPECT_EQ(check({0x60}), DropReason::Truncated);
    auto v6 = ipv6_packet("fd00::1", "fd00::2", 0);
    v6.resize(39);
    EXPECT_EQ(check(v6), DropReason::Truncated);
    // 20 bytes is enough for IPv4 but not for IPv6.
    std::vector<uint8_t> twenty(20, 0);
    twenty[0] = 0x60;
    EXPECT_EQ(check(twenty), DropReason::Truncated);
}

TEST(ValidateIpPacket, BadVersion) {
    for (unsigned version : {0u, 1u, 2u, 3u, 5u, 7u, 15u}) {
        auto packet = ipv4_packet("10.0.0.1", "10.0.0.2", 20);
        packet[0] = static_cast<uint8_t>((version << 4) | 5);
        EXPECT_EQ(check(packet), DropReason::BadVersion) << "version " << version;
    }
    // Even a single byte is enough to tell.
    EXPECT_EQ(check({0x00}), DropReason::BadVersion);
    EXPECT_EQ(check({0xff}), DropReason::BadVersion);
}

TEST(ValidateIpPacket, BadHeaderBelowFiveWords) {
    for (uint8_t words = 0; words < 5; ++words) {
        auto packet = ipv4_packet("10.0.0.1", "10.0.0.2", 20);
        packet[0] = static_cast<uint8_t>(0x40 | words);
        EXPECT_EQ(check(packet), DropReason::BadHeader) << "IHL " << unsigned{words};
    }
}

TEST(ValidateIpPacket, BadHeaderPastTheEnd) {
    // IHL 15 = 60 bytes of header in a 40-byte packet.
    auto packet = ipv4_packet("10.0.0.1", "10.0.0.2", 20);
    packet[0] = 0x4f;
    EXPECT_EQ(check(packet), DropReason::BadHeader);
    // IHL 6 = 24 bytes in a 20-byte packet.
    auto bare = ipv4_packet("10.0.0.1", "10.0.0.2", 0);
    bare[0] = 0x46;
    EXPECT_EQ(check(bare), DropReason::BadHeader);
    // Exactly to the end is fine.
    auto exact = ipv4_packet("10.0.0.1", "10.0.0.2", 0, 15);
    ASSERT_EQ(exact.size(), 60u);
    EXPECT_EQ(check(exact), DropReason::Count);
}

TEST(ValidateIpPacket, BadLengthIpv4) {
    auto packet = ipv4_packet("10.0.0.1", "10.0.0.2", 100);
    ASSERT_EQ(check(packet), DropReason::Count);
    put_be16(packet, 2, packet.size() + 1);  // claims more than arrived
    EXPECT_EQ(check(packet), DropReason::BadLength);
    put_be16(packet, 2, packet.size() - 1);  // trailing garbage
    EXPECT_EQ(check(packet), DropReason::BadLength);
    put_be16(packet, 2, 0);
    EXPECT_EQ(check(packet), DropReason::BadLength);
    // The length is big-endian: the byte-swapped value is wrong.
    put_be16(packet, 2, ((packet.size() & 0xff) << 8) | (packet.size() >> 8));
    EXPECT_EQ(check(packet), DropReason::BadLength);
}

TEST(ValidateIpPacket, BadLengthIpv6) {
    auto packet = ipv6_packet("fd00::1", "fd00::2", 100);
    ASSERT_EQ(check(packet), DropReason::Count);
    put_be16(packet, 4, 101);
    EXPECT_EQ(check(packet), DropReason::BadLength);
    put_be16(packet, 4, 99);
    EXPECT_EQ(check(packet), DropReason::BadLength);
    put_be16(packet, 4, 140);  // the whole packet's length, not the payload's
    EXPECT_EQ(check(packet), DropReason::BadLength);
    put_be16(packet, 4, 0);  // no jumbograms on a tunnel
    EXPECT_EQ(check(packet), DropReason::BadLength);
}

TEST(ValidateIpPacket, TooBigForTheMtu) {
    const auto v4 = ipv4_packet("10.0.0.1", "10.0.0.2", 1452);
    ASSERT_EQ(v4.size(), 1472u);
    EXPECT_EQ(check(v4, 1472), DropReason::Count);
    EXPECT_EQ(check(v4, 1471), DropReason::TooBig);

    const auto v6 = ipv6_packet("fd00::1", "fd00::2", 1412);
    ASSERT_EQ(v6.size(), 1452u);
    EXPECT_EQ(check(v6, 1452), DropReason::Count);
    EXPECT_EQ(check(v6, 1451), DropReason::TooBig);
    EXPECT_EQ(check(v6, 1280), DropReason::TooBig);
}

TEST(ValidateIpPacket, ValidIpv4) {
    const auto packet = ipv4_packet("192.168.53.99", "192.168.60.5", 64);
    const Result result = validate_ip_packet(packet, 1500);
    const auto* info = std::get_if<IpHeaderInfo>(&result);
    ASSERT_NE(info, nullptr) << "dropped: " << drop_reason_name(reason(result));
    EXPECT_EQ(info->source, ip("192.168.53.99"));
    EXPECT_EQ(info->destination, ip("192.168.60.5"));
    EXPECT_EQ(info->source.family, Family::V4);
}

TEST(ValidateIpPacket, ValidIpv4WithOptions) {
    auto packet = ipv4_packet("10.9.0.5", "192.168.60.5", 8, 6);
    ASSERT_EQ(packet[0], 0x46);
    packet[20] = 0x01;  // NOP options
    packet[21] = 0x01;
    packet[22] = 0x01;
    packet[23] = 0x00;  // end of options
    const Result result = validate_ip_packet(packet, 1500);
    const auto* info = std::get_if<IpHeaderInfo>(&result);
    ASSERT_NE(info, nullptr) << "dropped: " << drop_reason_name(reason(result));
    EXPECT_EQ(info->source, ip("10.9.0.5"));
    EXPECT_EQ(info->destination, ip("192.168.60.5"));

    // Options and no payload at all.
    EXPECT_EQ(check(ipv4_packet("10.9.0.5", "192.168.60.5", 0, 6)), DropReason::Count);
}

TEST(ValidateIpPacket, ValidIpv6) {
    const auto packet = ipv6_packet("fd00:53::99", "fd00:60::5", 64);
    const Result result = validate_ip_packet(packet, 1500);
    const auto* info = std::get_if<IpHeaderInfo>(&result);
    ASSERT_NE(info, nullptr) << "dropped: " << drop_reason_name(reason(result));
    EXPECT_EQ(info->source, ip("fd00:53::99"));
    EXPECT_EQ(info->destination, ip("fd00:60::5"));
    EXPECT_EQ(info->source.family, Family::V6);

    // A header alone (payload length 0 is not a jumbogram when nothing follows).
    EXPECT_EQ(check(ipv6_packet("fd00::1", "fd00::2", 0)), DropReason::Count);
}

TEST(ValidateIpPacket, AddressesComeFromTheirOwnFields) {
    // Every address byte distinct, so a shifted offset would show.
    const auto packet =
        ipv6_packet("2001:db8:1:2:3:4:5:6", "fd11:2233:4455:6677:8899:aabb:ccdd:eeff", 0);
    const Result result = validate_ip_packet(packet, 1500);
    const auto* info = std::get_if<IpHeaderInfo>(&result);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->source.to_string(), "2001:db8:1:2:3:4:5:6");
    EXPECT_EQ(info->destination.to_string(), "fd11:2233:4455:6677:8899:aabb:ccdd:eeff");
}

TEST(ValidateEthernetFrame, Limits) {
    EXPECT_EQ(validate_ethernet_frame({}, 1500), DropReason::Empty);
    const std::vector<uint8_t> short_frame(kEthernetHeaderLength - 1, 0xaa);
    EXPECT_EQ(validate_ethernet_frame(short_frame, 1500), DropReason::Truncated);
    const std::vector<uint8_t> header_only(kEthernetHeaderLength, 0xaa);
    EXPECT_EQ(validate_ethernet_frame(header_only, 1500), std::nullopt);
    // MTU + header + one VLAN tag is the largest frame.
    const std::vector<uint8_t> largest(1500 + 14 + 4, 0);
    EXPECT_EQ(validate_ethernet_frame(largest, 1500), std::nullopt);
    const std::vector<uint8_t> too_big(1500 + 14 + 4 + 1, 0);
    EXPECT_EQ(validate_ethernet_frame(too_big, 1500), DropReason::TooBig);
    EXPECT_EQ(validate_ethernet_frame(largest, 1499), DropReason::TooBig);
    // No IP check in TAP mode: an ARP frame is fine.
    std::vector<uint8_t> arp(42, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    EXPECT_EQ(validate_ethernet_frame(arp, 1500), std::nullopt);
}

TEST(ReadIpAddresses, Ipv4AndIpv6) {
    const auto v4 = read_ip_addresses(ipv4_packet("192.168.53.99", "192.168.60.5", 10));
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->source, ip("192.168.53.99"));
    EXPECT_EQ(v4->destination, ip("192.168.60.5"));

    const auto v6 = read_ip_addresses(ipv6_packet("fd00::99", "fd00::5", 10));
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->source, ip("fd00::99"));
    EXPECT_EQ(v6->destination, ip("fd00::5"));
}

TEST(ReadIpAddresses, ChecksOnlyTheMinimum) {
    // The length field is not checked: the kernel wrote this packet.
    auto v4 = ipv4_packet("10.0.0.1", "10.0.0.2", 10);
    put_be16(v4, 2, 9999);
    EXPECT_TRUE(read_ip_addresses(v4));

    EXPECT_FALSE(read_ip_addresses({}));
    auto short_v4 = ipv4_packet("10.0.0.1", "10.0.0.2", 0);
    short_v4.resize(19);
    EXPECT_FALSE(read_ip_addresses(short_v4));
    auto short_v6 = ipv6_packet("fd00::1", "fd00::2", 0);
    short_v6.resize(39);
    EXPECT_FALSE(read_ip_addresses(short_v6));
    // Neither version.
    auto other = ipv6_packet("fd00::1", "fd00::2", 0);
    other[0] = 0x50;
    EXPECT_FALSE(read_ip_addresses(other));
    // An ARP frame (TAP) is not an IP packet.
    std::vector<uint8_t> arp(42, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    EXPECT_FALSE(read_ip_addresses(arp));
}

TEST(DropReason, NamesMatchTheCounterKeys) {
    EXPECT_EQ(drop_reason_name(DropReason::Empty), "empty");
    EXPECT_EQ(drop_reason_name(DropReason::Truncated), "truncated");
    EXPECT_EQ(drop_reason_name(DropReason::BadVersion), "bad_version");
    EXPECT_EQ(drop_reason_name(DropReason::BadHeader), "bad_header");
    EXPECT_EQ(drop_reason_name(DropReason::BadLength), "bad_length");
    EXPECT_EQ(drop_reason_name(DropReason::TooBig), "too_big");
    EXPECT_EQ(drop_reason_name(DropReason::SendError), "send_error");
    for (size_t i = 0; i < kDropReasonCount; ++i) {
        EXPECT_FALSE(kDropReasonNames[i].empty()) << i;
    }
}

}  // namespace
}  // namespace tunlab
