#pragma once

// Test support for daemon/offload: packet builders and an independent checker that uses a
// byte-by-byte checksum, so that the code under test is never its own judge.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "offload/virtio_net_hdr.hpp"

namespace tunlab::offload::test_support {

// RFC 1071 the slow way: one byte at a time, even offsets are the high byte of a word. Folded,
// not complemented, like ones_complement_sum().
inline uint16_t reference_sum(std::span<const uint8_t> data, uint32_t initial = 0) {
    uint64_t sum = initial;
    for (size_t i = 0; i < data.size(); ++i) {
        sum += (i % 2 == 0) ? uint32_t{data[i]} << 8 : data[i];
    }
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(sum);
}

inline uint16_t be16(const uint8_t* bytes) {
    return static_cast<uint16_t>((bytes[0] << 8) | bytes[1]);
}
inline uint32_t be32(const uint8_t* bytes) {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
           bytes[3];
}
inline void put16(uint8_t* bytes, uint32_t value) {
    bytes[0] = static_cast<uint8_t>(value >> 8);
    bytes[1] = static_cast<uint8_t>(value);
}
inline void put32(uint8_t* bytes, uint32_t value) {
    put16(bytes, value >> 16);
    put16(bytes + 2, value & 0xffff);
}

// The pseudo-header sum, byte by byte.
inline uint16_t reference_pseudo_sum(std::span<const uint8_t> ip_packet, uint8_t protocol,
                                     size_t transport_length) {
    const bool ipv6 = (ip_packet[0] >> 4) == 6;
    std::vector<uint8_t> pseudo;
    if (ipv6) {
        pseudo.assign(ip_packet.begin() + 8, ip_packet.begin() + 40);
        pseudo.insert(pseudo.end(), {static_cast<uint8_t>(transport_length >> 24),
                                     static_cast<uint8_t>(transport_length >> 16),
                                     static_cast<uint8_t>(transport_length >> 8),
                                     static_cast<uint8_t>(transport_length), 0, 0, 0, protocol});
    } else {
        pseudo.assign(ip_packet.begin() + 12, ip_packet.begin() + 20);
        pseudo.insert(pseudo.end(), {0, protocol, static_cast<uint8_t>(transport_length >> 8),
                                     static_cast<uint8_t>(transport_length)});
    }
    return reference_sum(pseudo);
}

struct FlowSpec {
    bool ipv6 = false;
    uint8_t protocol = 6;  // 6 TCP, 17 UDP
    uint8_t source_last = 5;
    uint16_t source_port = 40000;
    uint16_t destination_port = 5201;
    uint32_t sequence = 1000;
    uint32_t ack = 77777;
    uint16_t window = 502;
    uint8_t flags = 0x10;  // ACK
    uint16_t ipv4_id = 0xfffe;
    uint8_t tos = 0;
    uint8_t ttl = 64;
    uint16_t ipv4_flags = 0x4000;  // DF
    std::vector<uint8_t> ipv4_options;
    // NOP NOP timestamp: what Linux puts into every data segment.
    std::vector<uint8_t> tcp_options = {1, 1, 8, 10, 0, 1, 2, 3, 0, 4, 5, 6};
};

inline std::vector<uint8_t> pattern_payload(size_t size, uint32_t seed = 1) {
    std::vector<uint8_t> payload(size);
    uint32_t state = seed * 2654435761u + 12345;
    for (auto& byte : payload) {
        state = state * 1103515245u + 12345u;
        byte = static_cast<uint8_t>(state >> 16);
    }
    return payload;
}

enum class ChecksumMode { Complete, PseudoOnly, Zero };

// An IPv4/IPv6 packet with a TCP or UDP header and `payload`; lengths right; the transport
// checksum complete (a wire packet), or the pseudo-header sum only (what TUN hands out with
// NEEDS_CSUM), or zero.
inline std::vector<uint8_t> build_packet(const FlowSpec& flow, std::span<const uint8_t> payload,
                                         ChecksumMode mode = ChecksumMode::Complete) {
    const size_t ip_length = flow.ipv6 ? 40 : 20 + flow.ipv4_options.size();
    const size_t transport_header = flow.protocol == 6 ? 20 + flow.tcp_options.size() : size_t{8};
    std::vector<uint8_t> packet(ip_length + transport_header + payload.size());
    uint8_t* ip = packet.data();
    if (flow.ipv6) {
        ip[0] = static_cast<uint8_t>(0x60 | (flow.tos >> 4));
        ip[1] = static_cast<uint8_t>((flow.tos << 4) | 0x0a);  // flow label 0xa1234
        ip[2] = 0x12;
        ip[3] = 0x34;
        put16(ip + 4, static_cast<uint32_t>(packet.size() - 40));
        ip[6] = flow.protocol;
        ip[7] = flow.ttl;
        const uint8_t source[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0,
                                    0,    0, 0, 0, 0, 0, 0, flow.source_last};
        const uint8_t destination[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};
        std::copy(source, source + 16, ip + 8);
        std::copy(destination, destination + 16, ip + 24);
    } else {
        ip[0] = static_cast<uint8_t>(0x40 | (ip_length / 4));
        ip[1] = flow.tos;
        put16(ip + 2, static_cast<uint32_t>(packet.size()));
        put16(ip + 4, flow.ipv4_id);
        put16(ip + 6, flow.ipv4_flags);
        ip[8] = flow.ttl;
        ip[9] = flow.protocol;
        const uint8_t addresses[8] = {192, 168, 53, flow.source_last, 192, 168, 60, 5};
        std::copy(addresses, addresses + 8, ip + 12);
        std::copy(flow.ipv4_options.begin(), flow.ipv4_options.end(), ip + 20);
        put16(ip + 10, static_cast<uint16_t>(~reference_sum({ip, ip_length})));
    }
    uint8_t* transport = ip + ip_length;
    put16(transport, flow.source_port);
    put16(transport + 2, flow.destination_port);
    size_t checksum_offset;
    if (flow.protocol == 6) {
        put32(transport + 4, flow.sequence);
        put32(transport + 8, flow.ack);
        transport[12] = static_cast<uint8_t>((transport_header / 4) << 4);
        transport[13] = flow.flags;
        put16(transport + 14, flow.window);
        std::copy(flow.tcp_options.begin(), flow.tcp_options.end(), transport + 20);
        checksum_offset = 16;
    } else {
        put16(transport + 4, static_cast<uint32_t>(transport_header + payload.size()));
        checksum_offset = 6;
    }
    std::copy(payload.begin(), payload.end(), transport + transport_header);
    const size_t transport_length = packet.size() - ip_length;
    const uint16_t pseudo = reference_pseudo_sum(packet, flow.protocol, transport_length);
    if (mode == ChecksumMode::Complete) {
        uint16_t checksum =
            static_cast<uint16_t>(~reference_sum({transport, transport_length}, pseudo));
        if (checksum == 0 && flow.protocol == 17) {
            checksum = 0xffff;
        }
        put16(transport + checksum_offset, checksum);
    } else if (mode == ChecksumMode::PseudoOnly) {
        put16(transport + checksum_offset, pseudo);
    }
    return packet;
}

inline std::vector<uint8_t> with_vnet_header(const VirtioNetHeader& header,
                                             std::span<const uint8_t> packet) {
    std::vector<uint8_t> bytes(kVirtioNetHdrSize);
    write_virtio_net_header(header, std::span<uint8_t, kVirtioNetHdrSize>(bytes.data(), 10));
    bytes.insert(bytes.end(), packet.begin(), packet.end());
    return bytes;
}

// What the kernel hands out for a TSO/USO super-packet of `payload`.
inline std::vector<uint8_t> super_packet(const FlowSpec& flow, std::span<const uint8_t> payload,
                                         uint16_t gso_size) {
    const std::vector<uint8_t> packet = build_packet(flow, payload, ChecksumMode::PseudoOnly);
    const size_t ip_length = flow.ipv6 ? 40 : 20 + flow.ipv4_options.size();
    VirtioNetHeader header;
    header.flags = kNeedsCsum;
    header.gso_type = flow.protocol == 17 ? kGsoUdpL4 : (flow.ipv6 ? kGsoTcpV6 : kGsoTcpV4);
    header.gso_size = gso_size;
    header.csum_start = static_cast<uint16_t>(ip_length);
    header.csum_offset = flow.protocol == 6 ? 16 : 6;
    header.hdr_len = static_cast<uint16_t>(packet.size());  // what the forwarding path says
    return with_vnet_header(header, packet);
}

// A complete wire packet, judged independently: IP lengths and header checksum, transport
// checksum by the byte-by-byte reference. Returns the IP header length (0 on failure).
inline size_t expect_valid_wire_packet(std::span<const uint8_t> packet) {
    if (packet.size() < 20) {
        ADD_FAILURE() << "packet of " << packet.size() << " bytes";
        return 0;
    }
    const bool ipv6 = (packet[0] >> 4) == 6;
    size_t ip_length;
    uint8_t protocol;
    if (ipv6) {
        ip_length = 40;
        protocol = packet[6];
        EXPECT_EQ(size_t{be16(&packet[4])} + 40, packet.size()) << "IPv6 payload length";
    } else {
        ip_length = (packet[0] & 0x0f) * 4u;
        protocol = packet[9];
        EXPECT_EQ(be16(&packet[2]), packet.size()) << "IPv4 total length";
        EXPECT_EQ(reference_sum(packet.first(ip_length)), 0xffff) << "IPv4 header checksum";
    }
    const size_t transport_length = packet.size() - ip_length;
    const uint16_t pseudo = reference_pseudo_sum(packet, protocol, transport_length);
    EXPECT_EQ(reference_sum(packet.subspan(ip_length), pseudo), 0xffff)
        << "transport checksum, protocol " << int{protocol};
    if (protocol == 17) {
        EXPECT_EQ(be16(&packet[ip_length + 4]), transport_length) << "UDP length";
        EXPECT_NE(be16(&packet[ip_length + 6]), 0) << "UDP checksum left out";
    }
    return ip_length;
}

}  // namespace tunlab::offload::test_support
