#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <span>
#include <variant>
#include <vector>

#include "offload/segmenter.hpp"
#include "offload_packets.hpp"

namespace tunlab::offload {
namespace {

using test_support::be16;
using test_support::be32;
using test_support::build_packet;
using test_support::ChecksumMode;
using test_support::expect_valid_wire_packet;
using test_support::FlowSpec;
using test_support::pattern_payload;
using test_support::super_packet;
using test_support::with_vnet_header;

constexpr size_t kNoLimit = 65535;

std::vector<std::vector<uint8_t>> segments_of(const SegmentResult& result,
                                              std::span<const uint8_t> output) {
    std::vector<std::vector<uint8_t>> segments;
    const auto* ok = std::get_if<Segments>(&result);
    if (ok == nullptr) {
        ADD_FAILURE() << "refused: " << segment_error_name(std::get<SegmentError>(result));
        return segments;
    }
    EXPECT_GE(ok->segment_count, 1u);
    size_t offset = 0;
    for (size_t i = 0; i < ok->segment_count; ++i) {
        const size_t size = std::min(ok->segment_size, ok->total_bytes - offset);
        segments.emplace_back(output.begin() + offset, output.begin() + offset + size);
        offset += size;
    }
    EXPECT_EQ(offset, ok->total_bytes);
    // All segments full-size but the last, which holds what is left.
    EXPECT_GT(ok->total_bytes, (ok->segment_count - 1) * ok->segment_size);
    EXPECT_LE(ok->total_bytes, ok->segment_count * ok->segment_size);
    return segments;
}

SegmentError error_of(const SegmentResult& result) {
    if (const auto* error = std::get_if<SegmentError>(&result)) {
        return *error;
    }
    ADD_FAILURE() << "accepted";
    return SegmentError::Truncated;
}

struct TcpCase {
    bool ipv6;
    size_t payload;
    uint16_t mss;
    std::vector<uint8_t> ipv4_options;
};

void PrintTo(const TcpCase& param, std::ostream* out) {
    *out << (param.ipv6 ? "IPv6" : "IPv4") << " payload " << param.payload << " mss " << param.mss
         << " IPv4 options " << param.ipv4_options.size();
}

class SegmenterTcp : public ::testing::TestWithParam<TcpCase> {};

TEST_P(SegmenterTcp, SegmentsAreValidWirePacketsThatReassemble) {
    const TcpCase& param = GetParam();
    FlowSpec flow;
    flow.ipv6 = param.ipv6;
    flow.ipv4_options = param.ipv4_options;
    flow.sequence = 0xffffff00u;             // wraps within the super-packet
    flow.flags = 0x10 | 0x08 | 0x01 | 0x80;  // ACK PSH FIN CWR
    const std::vector<uint8_t> payload = pattern_payload(param.payload);
    const std::vector<uint8_t> input = super_packet(flow, payload, param.mss);
    const std::vector<uint8_t> original = build_packet(flow, payload);  // for the header bytes

    std::vector<uint8_t> output(kSegmentOutputSize);
    const auto result = segment_packet(input, 1500, output);
    const auto segments = segments_of(result, output);
    const size_t expected_count =
        param.payload == 0 ? 1 : (param.payload + param.mss - 1) / param.mss;
    ASSERT_EQ(segments.size(), expected_count);

    const size_t ip_length = param.ipv6 ? 40 : 20 + param.ipv4_options.size();
    const size_t headers = ip_length + 32;
    std::vector<uint8_t> reassembled;
    for (size_t i = 0; i < segments.size(); ++i) {
        SCOPED_TRACE(testing::Message() << "segment " << i);
        const std::vector<uint8_t>& segment = segments[i];
        ASSERT_EQ(expect_valid_wire_packet(segment), ip_length);
        ASSERT_GE(segment.size(), headers);
        const uint8_t* tcp = &segment[ip_length];
        EXPECT_EQ(be32(tcp + 4), static_cast<uint32_t>(flow.sequence + reassembled.size()));
        const bool first = i == 0;
        const bool last = i + 1 == segments.size();
        EXPECT_EQ((tcp[13] & 0x80) != 0, first) << "CWR on the first segment only";
        EXPECT_EQ((tcp[13] & 0x09) == 0x09, last) << "FIN+PSH on the last only";
        EXPECT_EQ((tcp[13] & 0x09) == 0, !last);
        EXPECT_EQ(tcp[13] & 0x10, 0x10);
        if (!param.ipv6) {
            EXPECT_EQ(be16(&segment[4]), static_cast<uint16_t>(flow.ipv4_id + i)) << "IPv4 id";
        }
        // Everything else in the headers is the original's: addresses, ports, ACK, window,
        // options, IPv4 options, TTL, flow label.
        for (const auto& [from, to] :
             std::vector<std::pair<size_t, size_t>>{{param.ipv6 ? 0 : 6, param.ipv6 ? 4 : 10},
                                                    {param.ipv6 ? 6 : 12, ip_length},
                                                    {ip_length, ip_length + 4},
                                                    {ip_length + 8, ip_length + 13},
                                                    {ip_length + 14, ip_length + 16},
                                                    {ip_length + 18, headers}}) {
            EXPECT_TRUE(
                std::equal(segment.begin() + from, segment.begin() + to, original.begin() + from))
                << "bytes " << from << ".." << to;
        }
        if (!last) {
            EXPECT_EQ(segment.size(), headers + param.mss);
        }
        reassembled.insert(reassembled.end(), segment.begin() + headers, segment.end());
    }
    EXPECT_EQ(reassembled, payload);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SegmenterTcp,
    ::testing::Values(TcpCase{false, 65535 - 52, 1448, {}},  // the largest IPv4 super-packet
                      TcpCase{true, 65535 - 32, 1428, {}},
                      TcpCase{false, 1448 * 10, 1448, {}},                      // an exact multiple
                      TcpCase{false, 1000, 1448, {}},                           // one segment
                      TcpCase{true, 1, 1428, {}}, TcpCase{false, 0, 1448, {}},  // headers only
                      TcpCase{false, 3001, 500, {1, 1, 1, 0}},  // IPv4 options (NOPs, EOL)
                      TcpCase{true, 9000, 88, {}}));            // a small MSS

TEST(Segmenter, UdpL4SegmentsAreValidDatagrams) {
    for (const bool ipv6 : {false, true}) {
        SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
        FlowSpec flow;
        flow.ipv6 = ipv6;
        flow.protocol = 17;
        const std::vector<uint8_t> payload = pattern_payload(20000, 3);
        const std::vector<uint8_t> input = super_packet(flow, payload, 1200);
        std::vector<uint8_t> output(kSegmentOutputSize);
        const auto segments = segments_of(segment_packet(input, 1500, output), output);
        ASSERT_EQ(segments.size(), 17u);
        const size_t headers = (ipv6 ? 40 : 20) + 8;
        std::vector<uint8_t> reassembled;
        for (size_t i = 0; i < segments.size(); ++i) {
            EXPECT_EQ(expect_valid_wire_packet(segments[i]), ipv6 ? 40u : 20u);
            if (!ipv6) {
                EXPECT_EQ(be16(&segments[i][4]), static_cast<uint16_t>(flow.ipv4_id + i));
            }
            reassembled.insert(reassembled.end(), segments[i].begin() + headers, segments[i].end());
        }
        EXPECT_EQ(reassembled, payload);
        EXPECT_EQ(segments.back().size(), headers + 20000 - 16 * 1200);
    }
}

TEST(Segmenter, PlainPacketIsCopiedAsIs) {
    FlowSpec flow;
    const std::vector<uint8_t> packet = build_packet(flow, pattern_payload(700));
    const std::vector<uint8_t> input = with_vnet_header(VirtioNetHeader{}, packet);
    std::vector<uint8_t> output(2000);
    const auto result = segment_packet(input, 1500, output);
    ASSERT_EQ(std::get<Segments>(result),
              (Segments{packet.size(), 1, packet.size(), packet.size(), packet.size()}));
    EXPECT_TRUE(std::equal(packet.begin(), packet.end(), output.begin()));
}

TEST(Segmenter, NeedsCsumIsCompletedForAnyProtocol) {
    for (const bool ipv6 : {false, true}) {
        for (const uint8_t protocol : {uint8_t{6}, uint8_t{17}}) {
            SCOPED_TRACE(testing::Message() << "ipv6 " << ipv6 << " protocol " << int{protocol});
            FlowSpec flow;
            flow.ipv6 = ipv6;
            flow.protocol = protocol;
            const std::vector<uint8_t> payload = pattern_payload(555, protocol);
            const std::vector<uint8_t> complete = build_packet(flow, payload);
            VirtioNetHeader header;
            header.flags = kNeedsCsum;
            header.csum_start = ipv6 ? 40 : 20;
            header.csum_offset = protocol == 6 ? 16 : 6;
            const std::vector<uint8_t> input =
                with_vnet_header(header, build_packet(flow, payload, ChecksumMode::PseudoOnly));
            std::vector<uint8_t> output(2000);
            const auto segments = segments_of(segment_packet(input, 1500, output), output);
            ASSERT_EQ(segments.size(), 1u);
            expect_valid_wire_packet(segments[0]);
            EXPECT_EQ(segments[0], complete);
        }
    }
}

TEST(Segmenter, SegmentLargerThanTheTunnelMtuIsRefused) {
    FlowSpec flow;
    const std::vector<uint8_t> payload = pattern_payload(10000);
    std::vector<uint8_t> output(kSegmentOutputSize);
    // 20 + 32 + 1448 = 1500.
    EXPECT_TRUE(std::holds_alternative<Segments>(
        segment_packet(super_packet(flow, payload, 1448), 1500, output)));
    EXPECT_EQ(error_of(segment_packet(super_packet(flow, payload, 1448), 1499, output)),
              SegmentError::SegmentTooBig);
    const std::vector<uint8_t> plain = with_vnet_header({}, build_packet(flow, payload));
    EXPECT_EQ(error_of(segment_packet(plain, 1500, output)), SegmentError::SegmentTooBig);
}

TEST(Segmenter, OutputTooSmallIsRefused) {
    FlowSpec flow;
    const std::vector<uint8_t> payload = pattern_payload(10000);
    const std::vector<uint8_t> input = super_packet(flow, payload, 1448);
    const size_t needed = 7 * 52 + 10000;
    std::vector<uint8_t> output(needed);
    EXPECT_TRUE(std::holds_alternative<Segments>(segment_packet(input, kNoLimit, output)));
    EXPECT_EQ(error_of(segment_packet(input, kNoLimit, std::span(output).first(needed - 1))),
              SegmentError::OutputTooSmall);
}

TEST(Segmenter, HeadersThatLieAreRefused) {
    FlowSpec flow;
    const std::vector<uint8_t> payload = pattern_payload(5000);
    const std::vector<uint8_t> good = super_packet(flow, payload, 1448);
    std::vector<uint8_t> output(kSegmentOutputSize);
    const auto refuse = [&](std::vector<uint8_t> input, SegmentError expected, const char* what) {
        EXPECT_EQ(error_of(segment_packet(input, kNoLimit, output)), expected) << what;
    };
    const size_t ip = kVirtioNetHdrSize;  // where the IP header starts in `good`
    const size_t tcp = ip + 20;

    auto input = good;
    test_support::put16(&input[ip + 2], static_cast<uint32_t>(good.size() - ip + 1));
    refuse(input, SegmentError::BadIpHeader, "IPv4 total length longer than the packet");
    input = good;
    input[ip] = 0x44;
    refuse(input, SegmentError::BadIpHeader, "IHL 4");
    input = good;
    input[ip] = 0x4f;  // IHL 15 puts "TCP" into the options
    EXPECT_TRUE(std::holds_alternative<SegmentError>(segment_packet(input, kNoLimit, output)));
    input = good;
    input[tcp + 12] = 0x40;
    refuse(input, SegmentError::BadTransportHeader, "TCP data offset 4");
    input = good;
    input[ip + 9] = 17;
    refuse(input, SegmentError::BadIpHeader, "GSO_TCPV4 carrying UDP");
    input = good;
    input[ip + 6] = 0x20;  // MF
    refuse(input, SegmentError::BadIpHeader, "a fragment");
    input = good;
    input[1] = kGsoTcpV6;
    refuse(input, SegmentError::BadIpHeader, "GSO_TCPV6 carrying IPv4");
    input = good;
    input[1] = 3;  // VIRTIO_NET_HDR_GSO_UDP
    refuse(input, SegmentError::UnsupportedGsoType, "UFO");
    input = good;
    input[1] = 0x7f;
    refuse(input, SegmentError::UnsupportedGsoType, "unknown GSO type");
    input = good;
    input[4] = input[5] = 0;
    refuse(input, SegmentError::BadGsoSize, "gso_size 0");
    input = good;
    input[6] = 21;  // csum_start
    refuse(input, SegmentError::BadChecksumOffsets, "csum_start not at TCP");
    input = good;
    input[8] = 6;  // csum_offset
    refuse(input, SegmentError::BadChecksumOffsets, "csum_offset not TCP's");
    refuse(std::vector<uint8_t>(good.begin(), good.begin() + 9), SegmentError::Truncated,
           "no room for the vnet header");
    refuse(with_vnet_header({}, {}), SegmentError::Truncated, "an empty packet");

    // GSO_NONE with a checksum field past the end.
    VirtioNetHeader header;
    header.flags = kNeedsCsum;
    header.csum_start = 60;
    header.csum_offset = 0;
    refuse(with_vnet_header(header, std::vector<uint8_t>(61)), SegmentError::BadChecksumOffsets,
           "checksum field past the end");

    FlowSpec flow6;
    flow6.ipv6 = true;
    auto input6 = super_packet(flow6, payload, 1400);
    input6[ip + 6] = 0;  // hop-by-hop options
    refuse(input6, SegmentError::UnsupportedIpv6Extension, "IPv6 extension header");
    input6 = super_packet(flow6, payload, 1400);
    test_support::put16(&input6[ip + 4], 4999);
    refuse(input6, SegmentError::BadIpHeader, "IPv6 payload length");
}

TEST(Segmenter, TruncatedSuperPacketsNeverReadPastTheEnd) {
    // Every prefix of a super-packet, with the IP length fields made to agree so that the
    // parser goes as deep as it can; run under ASan to see reads past the end.
    for (const bool ipv6 : {false, true}) {
        for (const uint8_t protocol : {uint8_t{6}, uint8_t{17}}) {
            FlowSpec flow;
            flow.ipv6 = ipv6;
            flow.protocol = protocol;
            const std::vector<uint8_t> full = super_packet(flow, pattern_payload(100), 40);
            std::vector<uint8_t> output(kSegmentOutputSize);
            for (size_t size = 0; size < full.size(); ++size) {
                std::vector<uint8_t> input(full.begin(), full.begin() + size);
                const size_t ip_size = size > kVirtioNetHdrSize ? size - kVirtioNetHdrSize : 0;
                if (!ipv6 && ip_size >= 4) {
                    test_support::put16(&input[kVirtioNetHdrSize + 2],
                                        static_cast<uint32_t>(ip_size));
                } else if (ipv6 && ip_size >= 40) {
                    test_support::put16(&input[kVirtioNetHdrSize + 4],
                                        static_cast<uint32_t>(ip_size - 40));
                }
                const auto result = segment_packet(input, kNoLimit, output);
                if (const auto* ok = std::get_if<Segments>(&result)) {
                    // Only prefixes that keep the headers whole.
                    EXPECT_GE(ip_size, (ipv6 ? 40u : 20u) + (protocol == 6 ? 32u : 8u));
                    EXPECT_LE(ok->segment_size, kNoLimit);
                }
            }
        }
    }
}

TEST(Segmenter, SegmentsPerUdpGsoSend) {
    EXPECT_EQ(udp_gso_segments_per_send(1500, false), 43u);  // 65507 / 1500
    EXPECT_EQ(udp_gso_segments_per_send(1500, true), 43u);
    EXPECT_EQ(udp_gso_segments_per_send(500, false), 64u);
    EXPECT_EQ(udp_gso_segments_per_send(1472, true), 44u);
}

}  // namespace
}  // namespace tunlab::offload

namespace tunlab::offload {
namespace {

// With a protocol's framing (WireGuard's: 16 bytes before, padding to 16 within the MTU, 16
// after), each segment lands at its place in its datagram, the datagrams back to back and all
// the same size but the last: the segments themselves are the ones cut without framing.
TEST(Segmenter, FramedSegmentsSitInEqualDatagrams) {
    for (const bool single : {false, true}) {
        SCOPED_TRACE(single ? "one packet" : "a TSO super-packet");
        test_support::FlowSpec flow;
        const auto payload = test_support::pattern_payload(single ? 333 : 5000);
        const std::vector<uint8_t> input =
            single ? test_support::with_vnet_header(VirtioNetHeader{},
                                                    test_support::build_packet(flow, payload))
                   : test_support::super_packet(flow, payload, 1300);
        std::vector<uint8_t> plain(kSegmentOutputSize);
        std::vector<uint8_t> framed(kSegmentOutputSize);
        const Framing framing{16, 16, 16, 1420};
        const auto unframed = std::get<Segments>(segment_packet(input, 1420, plain));
        const auto result = std::get<Segments>(segment_packet(input, 1420, framed, framing));
        EXPECT_EQ(result.segment_size, unframed.segment_size);
        EXPECT_EQ(result.segment_count, unframed.segment_count);
        EXPECT_EQ(result.datagram_size, framing.datagram_size(unframed.segment_size));
        const size_t last =
            unframed.total_bytes - (unframed.segment_count - 1) * unframed.segment_size;
        EXPECT_EQ(result.total_bytes,
                  (result.segment_count - 1) * result.datagram_size + framing.datagram_size(last));
        for (size_t i = 0; i < result.segment_count; ++i) {
            const size_t size = i + 1 == result.segment_count ? last : result.segment_size;
            EXPECT_TRUE(std::equal(plain.begin() + i * unframed.segment_size,
                                   plain.begin() + i * unframed.segment_size + size,
                                   framed.begin() + i * result.datagram_size + 16))
                << "segment " << i;
        }
    }
}

TEST(Framing, PadsWithinTheLimitAndNeverShortens) {
    const Framing wireguard{16, 16, 16, 1420};
    EXPECT_EQ(wireguard.padded(0), 0u);
    EXPECT_EQ(wireguard.padded(1), 16u);
    EXPECT_EQ(wireguard.padded(1408), 1408u);
    EXPECT_EQ(wireguard.padded(1409), 1420u);  // not 1424: the MTU bounds the padding
    EXPECT_EQ(wireguard.padded(1500), 1500u);  // a packet above the MTU keeps its size
    EXPECT_EQ(wireguard.datagram_size(84), 16u + 96u + 16u);
    EXPECT_EQ(Framing{}.datagram_size(1472), 1472u);
}

}  // namespace
}  // namespace tunlab::offload
