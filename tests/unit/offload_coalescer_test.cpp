#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "offload/coalescer.hpp"
#include "offload/segmenter.hpp"
#include "offload_packets.hpp"

namespace tunlab::offload {
namespace {

using test_support::build_packet;
using test_support::FlowSpec;
using test_support::pattern_payload;

using Packet = std::vector<uint8_t>;

// `count` consecutive segments of one flow, `mss` payload bytes each but the last
// (`last_payload`), ids and sequence numbers counting up; PSH on the last if `push`.
std::vector<Packet> flow_segments(FlowSpec flow, size_t count, size_t mss, size_t last_payload,
                                  bool push = false) {
    std::vector<Packet> packets;
    for (size_t i = 0; i < count; ++i) {
        const bool last = i + 1 == count;
        FlowSpec segment = flow;
        segment.sequence = static_cast<uint32_t>(flow.sequence + i * mss);
        segment.ipv4_id = static_cast<uint16_t>(flow.ipv4_id + i);
        if (last && push) {
            segment.flags |= 0x08;
        }
        packets.push_back(build_packet(
            segment, pattern_payload(last ? last_payload : mss, static_cast<uint32_t>(i + 1))));
    }
    return packets;
}

struct Written {
    VirtioNetHeader header;
    Packet ip_packet;
    size_t packets;
    size_t ip_bytes;
    void* tag;
};

std::vector<Written> coalesce(Coalescer& coalescer, const std::vector<Packet>& packets,
                              void* tag = nullptr) {
    for (const Packet& packet : packets) {
        EXPECT_TRUE(coalescer.add(packet, tag));
    }
    std::vector<Written> writes;
    coalescer.flush([&](const CoalescedWrite& write) {
        const auto header = read_virtio_net_header(write.bytes);
        EXPECT_TRUE(header.has_value());
        writes.push_back({header.value_or(VirtioNetHeader{}),
                          Packet(write.bytes.begin() + kVirtioNetHdrSize, write.bytes.end()),
                          write.packets, write.counted_bytes, write.tag});
    });
    EXPECT_TRUE(coalescer.empty());
    return writes;
}

// What the kernel would make of a write: the super-packet cut again (checksums completed), or
// the single packet as it is.
std::vector<Packet> resegment(const Written& write) {
    Packet input(kVirtioNetHdrSize);
    write_virtio_net_header(write.header, std::span<uint8_t, kVirtioNetHdrSize>(input.data(), 10));
    input.insert(input.end(), write.ip_packet.begin(), write.ip_packet.end());
    std::vector<uint8_t> output(kSegmentOutputSize);
    const auto result = segment_packet(input, 65535, output);
    std::vector<Packet> packets;
    const auto* segments = std::get_if<Segments>(&result);
    if (segments == nullptr) {
        ADD_FAILURE() << segment_error_name(std::get<SegmentError>(result));
        return packets;
    }
    size_t offset = 0;
    while (offset < segments->total_bytes) {
        const size_t size = std::min(segments->segment_size, segments->total_bytes - offset);
        packets.emplace_back(output.begin() + offset, output.begin() + offset + size);
        offset += size;
    }
    return packets;
}

void expect_plain(const Written& write, const Packet& original) {
    EXPECT_EQ(write.header, VirtioNetHeader{}) << "a single packet goes without offloads";
    EXPECT_EQ(write.ip_packet, original) << "a single packet is written as it came";
    EXPECT_EQ(write.packets, 1u);
    EXPECT_EQ(write.ip_bytes, original.size());
}

// The write carries `originals`, and the kernel's re-segmentation gives them back exactly.
void expect_run(const Written& write, std::span<const Packet> originals, bool ipv6 = false,
                size_t mss = 1448) {
    ASSERT_EQ(write.packets, originals.size());
    size_t ip_bytes = 0;
    for (const Packet& packet : originals) {
        ip_bytes += packet.size();
    }
    EXPECT_EQ(write.ip_bytes, ip_bytes);
    if (originals.size() == 1) {
        expect_plain(write, originals[0]);
        return;
    }
    const size_t ip_length = ipv6 ? 40 : 20;
    VirtioNetHeader expected;
    expected.flags = kNeedsCsum;
    expected.gso_type = ipv6 ? kGsoTcpV6 : kGsoTcpV4;
    expected.hdr_len = static_cast<uint16_t>(ip_length + 32);
    expected.gso_size = static_cast<uint16_t>(mss);
    expected.csum_start = static_cast<uint16_t>(ip_length);
    expected.csum_offset = 16;
    EXPECT_EQ(write.header, expected);
    // The TCP checksum field holds the pseudo-header sum (NEEDS_CSUM).
    const size_t tcp_length = write.ip_packet.size() - ip_length;
    EXPECT_EQ(test_support::be16(&write.ip_packet[ip_length + 16]),
              test_support::reference_pseudo_sum(write.ip_packet, 6, tcp_length));
    if (!ipv6) {
        EXPECT_EQ(test_support::reference_sum(std::span(write.ip_packet).first(20)), 0xffff);
    }
    const std::vector<Packet> segments = resegment(write);
    ASSERT_EQ(segments.size(), originals.size());
    for (size_t i = 0; i < segments.size(); ++i) {
        EXPECT_EQ(segments[i], originals[i]) << "segment " << i << " differs from the original";
    }
}

TEST(Coalescer, SegmentsOfOneFlowBecomeOneSuperPacket) {
    for (const bool ipv6 : {false, true}) {
        SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
        FlowSpec flow;
        flow.ipv6 = ipv6;
        const std::vector<Packet> packets = flow_segments(flow, 44, 1448, 1000, true);
        Coalescer coalescer;
        const auto writes = coalesce(coalescer, packets);
        ASSERT_EQ(writes.size(), 1u);
        expect_run(writes[0], packets, ipv6);
        EXPECT_EQ(writes[0].ip_packet.size(), (ipv6 ? 40u : 20u) + 32 + 43 * 1448 + 1000);
    }
}

TEST(Coalescer, RunStopsAt65535Bytes) {
    FlowSpec flow;
    const std::vector<Packet> packets = flow_segments(flow, 50, 1448, 1448);
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 2u);
    // 52 + 45 * 1448 = 65212; one more would pass 65535.
    expect_run(writes[0], std::span(packets).first(45));
    expect_run(writes[1], std::span(packets).subspan(45));
}

TEST(Coalescer, ConfiguredSizeCapIsHonoured) {
    FlowSpec flow;
    const std::vector<Packet> packets = flow_segments(flow, 10, 1448, 1448);
    Coalescer coalescer({.max_packets = 64, .max_flows = 4, .max_coalesced_size = 52 + 4 * 1448});
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 3u);
    expect_run(writes[0], std::span(packets).first(4));
    expect_run(writes[1], std::span(packets).subspan(4, 4));
    expect_run(writes[2], std::span(packets).subspan(8));
}

TEST(Coalescer, InterleavedFlowsEachCoalesceInOrder) {
    FlowSpec flow_a;
    FlowSpec flow_b;
    flow_b.source_port = 40001;
    FlowSpec flow_c;
    flow_c.ipv6 = true;
    const auto a = flow_segments(flow_a, 5, 1448, 1448);
    const auto b = flow_segments(flow_b, 5, 1448, 700);
    const auto c = flow_segments(flow_c, 5, 1448, 1448);
    std::vector<Packet> interleaved;
    for (size_t i = 0; i < 5; ++i) {
        interleaved.push_back(a[i]);
        interleaved.push_back(b[i]);
        interleaved.push_back(c[i]);
    }
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, interleaved);
    ASSERT_EQ(writes.size(), 3u);
    expect_run(writes[0], a);
    expect_run(writes[1], b);
    expect_run(writes[2], c, true);
}

TEST(Coalescer, SegmentWithBadChecksumIsWrittenAloneAndBreaksTheRun) {
    FlowSpec flow;
    std::vector<Packet> packets = flow_segments(flow, 6, 1448, 1448);
    packets[2][20 + 32 + 100] ^= 0x01;  // a flipped payload bit: the TCP checksum fails
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 3u);
    expect_run(writes[0], std::span(packets).first(2));
    expect_plain(writes[1], packets[2]);
    expect_run(writes[2], std::span(packets).subspan(3));
}

// Authenticated packets (WireGuard's) are taken as their sender made them: the run holds the
// segment whose checksum does not verify, and re-cutting it gives every payload byte back.
TEST(Coalescer, AuthenticatedPacketsAreMergedWithoutVerifyingChecksums) {
    FlowSpec flow;
    std::vector<Packet> packets = flow_segments(flow, 6, 1448, 1448);
    packets[2][20 + 32 + 100] ^= 0x01;
    Coalescer coalescer({.authenticated = true});
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 1u);
    EXPECT_EQ(writes[0].packets, 6u);
    const std::vector<Packet> segments = resegment(writes[0]);
    ASSERT_EQ(segments.size(), 6u);
    for (size_t i = 0; i < segments.size(); ++i) {
        EXPECT_TRUE(
            std::equal(segments[i].begin() + 52, segments[i].end(), packets[i].begin() + 52))
            << "payload of segment " << i;
    }
}

TEST(Coalescer, SegmentWithBadIpHeaderChecksumIsNotMerged) {
    FlowSpec flow;
    std::vector<Packet> packets = flow_segments(flow, 3, 1448, 1448);
    packets[1][8] = 63;      // TTL: the header checksum fails (and TTL differs)
    packets[2][10] ^= 0x01;  // only the header checksum field
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        expect_plain(writes[i], packets[i]);
    }
}

TEST(Coalescer, PshEndsTheRun) {
    FlowSpec flow;
    std::vector<Packet> first = flow_segments(flow, 3, 1448, 1448, true);
    FlowSpec later = flow;
    later.sequence = flow.sequence + 3 * 1448;
    later.ipv4_id = static_cast<uint16_t>(flow.ipv4_id + 3);
    std::vector<Packet> second = flow_segments(later, 3, 1448, 1448);
    std::vector<Packet> all = first;
    all.insert(all.end(), second.begin(), second.end());
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, all);
    ASSERT_EQ(writes.size(), 2u);
    expect_run(writes[0], first);
    expect_run(writes[1], second);
}

TEST(Coalescer, ShorterSegmentEndsTheRun) {
    FlowSpec flow;
    std::vector<Packet> packets = flow_segments(flow, 2, 1448, 1000);
    FlowSpec later = flow;
    later.sequence = flow.sequence + 1448 + 1000;
    later.ipv4_id = static_cast<uint16_t>(flow.ipv4_id + 2);
    const auto more = flow_segments(later, 2, 1448, 1448);
    packets.insert(packets.end(), more.begin(), more.end());
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 2u);
    expect_run(writes[0], std::span(packets).first(2));
    expect_run(writes[1], std::span(packets).subspan(2));
}

TEST(Coalescer, OutOfOrderSegmentsAreNotMergedAndKeepTheirOrder) {
    FlowSpec flow;
    const std::vector<Packet> packets = flow_segments(flow, 3, 1448, 1448);
    const std::vector<Packet> shuffled = {packets[0], packets[2], packets[1]};
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, shuffled);
    ASSERT_EQ(writes.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        expect_plain(writes[i], shuffled[i]);
    }
}

TEST(Coalescer, ChangedAckWindowOrOptionsBreakTheRun) {
    for (int change = 0; change < 4; ++change) {
        SCOPED_TRACE(change);
        FlowSpec flow;
        std::vector<Packet> packets = flow_segments(flow, 2, 1448, 1448);
        FlowSpec later = flow;
        later.sequence = flow.sequence + 2 * 1448;
        later.ipv4_id = static_cast<uint16_t>(flow.ipv4_id + 2);
        switch (change) {
            case 0:
                later.ack += 1448;
                break;
            case 1:
                later.window += 1;
                break;
            case 2:
                later.tcp_options[11] += 1;  // a newer timestamp
                break;
            case 3:
                later.tos = 0x03;  // CE
                break;
        }
        const auto more = flow_segments(later, 2, 1448, 1448);
        packets.insert(packets.end(), more.begin(), more.end());
        Coalescer coalescer;
        const auto writes = coalesce(coalescer, packets);
        ASSERT_EQ(writes.size(), 2u);
        expect_run(writes[0], std::span(packets).first(2));
        expect_run(writes[1], std::span(packets).subspan(2));
    }
}

TEST(Coalescer, NonIncrementingIpv4IdBreaksTheRun) {
    FlowSpec flow;
    std::vector<Packet> packets = flow_segments(flow, 2, 1448, 1448);
    FlowSpec later = flow;
    later.sequence = flow.sequence + 2 * 1448;  // the id stays the first's
    const auto more = flow_segments(later, 1, 1448, 1448);
    packets.insert(packets.end(), more.begin(), more.end());
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 2u);
    expect_run(writes[0], std::span(packets).first(2));
    expect_plain(writes[1], packets[2]);
}

TEST(Coalescer, PacketsThatDoNotQualifyAreWrittenAsTheyCame) {
    std::vector<Packet> packets;
    FlowSpec udp;
    udp.protocol = 17;
    packets.push_back(build_packet(udp, pattern_payload(100)));
    FlowSpec syn;
    syn.flags = 0x02;
    packets.push_back(build_packet(syn, {}));
    FlowSpec pure_ack;
    packets.push_back(build_packet(pure_ack, {}));
    packets.push_back(build_packet(pure_ack, {}));
    FlowSpec options;
    options.ipv4_options = {1, 1, 1, 1};
    for (const auto& packet : flow_segments(options, 2, 1448, 1448)) {
        packets.push_back(packet);
    }
    FlowSpec fragment;
    fragment.ipv4_flags = 0x2000;  // MF
    for (const auto& packet : flow_segments(fragment, 2, 1448, 1448)) {
        packets.push_back(packet);
    }
    FlowSpec urgent;
    urgent.flags = 0x30;
    for (const auto& packet : flow_segments(urgent, 2, 1448, 1448)) {
        packets.push_back(packet);
    }
    packets.push_back({0x45, 0x00});  // garbage: the caller should not pass it, but may
    packets.push_back({});
    Coalescer coalescer;
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), packets.size());
    for (size_t i = 0; i < packets.size(); ++i) {
        expect_plain(writes[i], packets[i]);
    }
}

TEST(Coalescer, DifferentTagsDoNotMerge) {
    FlowSpec flow;
    const std::vector<Packet> packets = flow_segments(flow, 4, 1448, 1448);
    int peer_a = 0;
    int peer_b = 0;
    Coalescer coalescer;
    ASSERT_TRUE(coalescer.add(packets[0], &peer_a));
    ASSERT_TRUE(coalescer.add(packets[1], &peer_a));
    ASSERT_TRUE(coalescer.add(packets[2], &peer_b));
    ASSERT_TRUE(coalescer.add(packets[3], &peer_b));
    std::vector<void*> tags;
    std::vector<size_t> counts;
    coalescer.flush([&](const CoalescedWrite& write) {
        tags.push_back(write.tag);
        counts.push_back(write.packets);
    });
    EXPECT_EQ(tags, (std::vector<void*>{&peer_a, &peer_b}));
    EXPECT_EQ(counts, (std::vector<size_t>{2, 2}));
}

TEST(Coalescer, BoundedBatchAndFlows) {
    FlowSpec flow;
    const std::vector<Packet> packets = flow_segments(flow, 5, 1448, 1448);
    Coalescer coalescer({.max_packets = 4, .max_flows = 2, .max_coalesced_size = 65535});
    for (size_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(coalescer.add(packets[i]));
    }
    EXPECT_TRUE(coalescer.full());
    EXPECT_FALSE(coalescer.add(packets[4])) << "a full batch takes nothing more";
    size_t writes = 0;
    coalescer.flush([&](const CoalescedWrite& write) {
        ++writes;
        EXPECT_EQ(write.packets, 4u);
    });
    EXPECT_EQ(writes, 1u);
    EXPECT_TRUE(coalescer.add(packets[4]));
    coalescer.clear();

    // With room for two growing runs, a third flow closes the one that grew least recently.
    FlowSpec flow_b = flow;
    flow_b.source_port = 1;
    FlowSpec flow_c = flow;
    flow_c.source_port = 2;
    const auto a = flow_segments(flow, 2, 1448, 1448);
    const auto b = flow_segments(flow_b, 2, 1448, 1448);
    const auto c = flow_segments(flow_c, 2, 1448, 1448);
    Coalescer small({.max_packets = 64, .max_flows = 2, .max_coalesced_size = 65535});
    const auto result = coalesce(small, {a[0], b[0], c[0], b[1], c[1], a[1]});
    ASSERT_EQ(result.size(), 4u);
    expect_plain(result[0], a[0]);
    expect_run(result[1], b);
    expect_run(result[2], c);
    expect_plain(result[3], a[1]);
}

}  // namespace
}  // namespace tunlab::offload

namespace tunlab::offload {
namespace {

// `count` datagrams of one UDP flow, `size` payload bytes each but the last, ids counting up.
std::vector<Packet> udp_datagrams(FlowSpec flow, size_t count, size_t size, size_t last_size) {
    flow.protocol = 17;
    std::vector<Packet> packets;
    for (size_t i = 0; i < count; ++i) {
        FlowSpec datagram = flow;
        datagram.ipv4_id = static_cast<uint16_t>(flow.ipv4_id + i);
        packets.push_back(build_packet(datagram, pattern_payload(i + 1 == count ? last_size : size,
                                                                 static_cast<uint32_t>(i))));
    }
    return packets;
}

TEST(CoalescerUdp, DatagramsOfOneFlowBecomeOneUsoWrite) {
    for (const bool ipv6 : {false, true}) {
        SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
        FlowSpec flow;
        flow.ipv6 = ipv6;
        const std::vector<Packet> packets = udp_datagrams(flow, 40, 64, 30);
        Coalescer coalescer(CoalescerLimits{.udp = true});
        const auto writes = coalesce(coalescer, packets);
        ASSERT_EQ(writes.size(), 1u);
        const Written& write = writes[0];
        const size_t ip_length = ipv6 ? 40 : 20;
        VirtioNetHeader expected;
        expected.flags = kNeedsCsum;
        expected.gso_type = kGsoUdpL4;
        expected.hdr_len = static_cast<uint16_t>(ip_length + 8);
        expected.gso_size = 64;
        expected.csum_start = static_cast<uint16_t>(ip_length);
        expected.csum_offset = 6;
        EXPECT_EQ(write.header, expected);
        EXPECT_EQ(write.packets, 40u);
        const size_t udp_length = write.ip_packet.size() - ip_length;
        EXPECT_EQ(udp_length, 8u + 39 * 64 + 30);
        EXPECT_EQ(test_support::be16(&write.ip_packet[ip_length + 4]), udp_length);
        EXPECT_EQ(test_support::be16(&write.ip_packet[ip_length + 6]),
                  test_support::reference_pseudo_sum(write.ip_packet, 17, udp_length));
        const std::vector<Packet> datagrams = resegment(write);
        ASSERT_EQ(datagrams.size(), packets.size());
        for (size_t i = 0; i < datagrams.size(); ++i) {
            EXPECT_EQ(datagrams[i], packets[i]) << "datagram " << i << " differs from the original";
        }
    }
}

TEST(CoalescerUdp, OnlyWhenAskedFor) {
    const std::vector<Packet> packets = udp_datagrams(FlowSpec{}, 4, 64, 64);
    Coalescer coalescer;  // a kernel without USO: UDP goes as it came
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
        expect_plain(writes[i], packets[i]);
    }
}

TEST(CoalescerUdp, WhatWouldNotComeBackTheSameIsNotMerged) {
    Coalescer coalescer(CoalescerLimits{.udp = true});
    std::vector<Packet> packets = udp_datagrams(FlowSpec{}, 6, 64, 64);
    packets[1][20 + 6] = 0;  // no checksum (IPv4): a re-cut datagram would carry one
    packets[1][20 + 7] = 0;
    packets[3][20 + 8] ^= 1;  // corrupt: its checksum no longer verifies
    packets[5] = udp_datagrams(FlowSpec{}, 1, 100, 100)[0];  // larger than the run's size
    const auto writes = coalesce(coalescer, packets);
    // [0] alone (the next one cannot join), [1] alone, [2] alone, [3] alone, [4] alone, [5].
    ASSERT_EQ(writes.size(), 6u);
    for (size_t i = 0; i < 6; ++i) {
        expect_plain(writes[i], packets[i]);
    }
}

TEST(CoalescerUdp, ShorterDatagramEndsTheRun) {
    Coalescer coalescer(CoalescerLimits{.udp = true});
    std::vector<Packet> packets = udp_datagrams(FlowSpec{}, 3, 64, 20);
    FlowSpec next;
    next.ipv4_id = static_cast<uint16_t>(FlowSpec{}.ipv4_id + 3);
    const auto after = udp_datagrams(next, 2, 64, 64);
    packets.insert(packets.end(), after.begin(), after.end());
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 2u);
    EXPECT_EQ(writes[0].packets, 3u);
    EXPECT_EQ(resegment(writes[0]), std::vector<Packet>(packets.begin(), packets.begin() + 3));
    EXPECT_EQ(writes[1].packets, 2u);
    EXPECT_EQ(resegment(writes[1]), std::vector<Packet>(packets.begin() + 3, packets.end()));
}

TEST(CoalescerUdp, SuperPacketHoldsAtMostMaxSegments) {
    // 200 small datagrams of one flow, as a flood brings them: a single USO write of them all
    // is one the kernel refuses (EINVAL beyond UDP_MAX_SEGMENTS), so they go in runs of 64.
    Coalescer coalescer(CoalescerLimits{.max_packets = 256, .udp = true});
    const std::vector<Packet> packets = udp_datagrams(FlowSpec{}, 200, 64, 64);
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 4u);
    size_t first = 0;
    for (const Written& write : writes) {
        const size_t expected = std::min<size_t>(64, packets.size() - first);
        EXPECT_EQ(write.packets, expected);
        EXPECT_EQ(resegment(write),
                  std::vector<Packet>(packets.begin() + first, packets.begin() + first + expected));
        first += expected;
    }
    EXPECT_EQ(first, packets.size());
}

TEST(Coalescer, ConfiguredSegmentCapIsHonoured) {
    const std::vector<Packet> packets = flow_segments(FlowSpec{}, 10, 1448, 1448);
    Coalescer coalescer({.max_packets = 64, .max_segments = 4});
    const auto writes = coalesce(coalescer, packets);
    ASSERT_EQ(writes.size(), 3u);
    expect_run(writes[0], std::span(packets).first(4));
    expect_run(writes[1], std::span(packets).subspan(4, 4));
    expect_run(writes[2], std::span(packets).subspan(8));
}

}  // namespace
}  // namespace tunlab::offload
