#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "offload/checksum.hpp"
#include "offload_packets.hpp"

namespace tunlab::offload {
namespace {

using test_support::reference_sum;

TEST(OffloadChecksum, MatchesByteByByteReferenceForEveryLengthAndAlignment) {
    std::mt19937 random(42);
    std::vector<uint8_t> buffer(200 + 16);
    for (int round = 0; round < 4; ++round) {
        for (auto& byte : buffer) {
            // Round 1 is all 0xff: the sums carry as much as they can.
            byte = round == 1 ? 0xff : static_cast<uint8_t>(random());
        }
        for (size_t alignment = 0; alignment < 8; ++alignment) {
            for (size_t length = 0; length <= 200; ++length) {
                const std::span<const uint8_t> data(buffer.data() + alignment, length);
                ASSERT_EQ(ones_complement_sum(data), reference_sum(data))
                    << "length " << length << " alignment " << alignment << " round " << round;
                const auto initial = static_cast<uint16_t>(random());
                ASSERT_EQ(ones_complement_sum(data, initial), reference_sum(data, initial))
                    << "length " << length << " with an initial sum";
            }
        }
    }
}

TEST(OffloadChecksum, LargeBuffersMatchTheReference) {
    std::mt19937 random(7);
    for (const size_t length : {65535u, 65536u, 131071u}) {
        std::vector<uint8_t> data(length);
        for (auto& byte : data) {
            byte = static_cast<uint8_t>(random());
        }
        EXPECT_EQ(ones_complement_sum(data), reference_sum(data)) << length;
        std::fill(data.begin(), data.end(), 0xff);
        EXPECT_EQ(ones_complement_sum(data), reference_sum(data)) << length << " of 0xff";
    }
}

TEST(OffloadChecksum, PiecesCombineWhenAllButTheLastHaveEvenLength) {
    const std::vector<uint8_t> data = test_support::pattern_payload(1001);
    const std::span<const uint8_t> all(data);
    for (const size_t split : {0u, 2u, 20u, 40u, 1000u}) {
        EXPECT_EQ(add_sums(ones_complement_sum(all.first(split)),
                           ones_complement_sum(all.subspan(split))),
                  ones_complement_sum(all))
            << split;
    }
}

TEST(OffloadChecksum, Rfc1071Example) {
    // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(ones_complement_sum(data), 0xddf2);
    EXPECT_EQ(internet_checksum(data), 0x220d);
}

TEST(OffloadChecksum, KnownIpv4HeaderVerifies) {
    // A captured header (checksum b861).
    const uint8_t header[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                              0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_TRUE(checksum_verifies(header));
    uint8_t zeroed[sizeof header];
    std::copy(std::begin(header), std::end(header), zeroed);
    zeroed[10] = zeroed[11] = 0;
    EXPECT_EQ(internet_checksum(zeroed), 0xb861);
}

TEST(OffloadChecksum, PseudoHeadersMatchTheReference) {
    test_support::FlowSpec flow;
    for (const bool ipv6 : {false, true}) {
        flow.ipv6 = ipv6;
        const std::vector<uint8_t> payload = test_support::pattern_payload(333);
        const std::vector<uint8_t> packet = test_support::build_packet(flow, payload);
        const size_t transport_length = packet.size() - (ipv6 ? 40 : 20);
        const uint16_t expected = test_support::reference_pseudo_sum(packet, 6, transport_length);
        const uint16_t actual =
            ipv6 ? pseudo_header_sum_ipv6(std::span<const uint8_t, 16>(&packet[8], 16),
                                          std::span<const uint8_t, 16>(&packet[24], 16), 6,
                                          static_cast<uint32_t>(transport_length))
                 : pseudo_header_sum_ipv4(std::span<const uint8_t, 4>(&packet[12], 4),
                                          std::span<const uint8_t, 4>(&packet[16], 4), 6,
                                          static_cast<uint16_t>(transport_length));
        EXPECT_EQ(actual, expected) << (ipv6 ? "IPv6" : "IPv4");
        EXPECT_TRUE(
            checksum_verifies(std::span<const uint8_t>(packet).subspan(ipv6 ? 40 : 20), actual));
    }
}

}  // namespace
}  // namespace tunlab::offload
