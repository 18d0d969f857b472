#pragma once

// What the segmenter and the coalescer share about IPv4/IPv6/TCP/UDP headers: big-endian loads
// and stores at any alignment, field offsets and flag bits.

#include <cstddef>
#include <cstdint>

namespace tunlab::offload {

inline uint16_t load_be16(const uint8_t* bytes) {
    return static_cast<uint16_t>((uint16_t{bytes[0]} << 8) | bytes[1]);
}

inline uint32_t load_be32(const uint8_t* bytes) {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
           bytes[3];
}

inline void store_be16(uint8_t* bytes, uint16_t value) {
    bytes[0] = static_cast<uint8_t>(value >> 8);
    bytes[1] = static_cast<uint8_t>(value);
}

inline void store_be32(uint8_t* bytes, uint32_t value) {
    bytes[0] = static_cast<uint8_t>(value >> 24);
    bytes[1] = static_cast<uint8_t>(value >> 16);
    bytes[2] = static_cast<uint8_t>(value >> 8);
    bytes[3] = static_cast<uint8_t>(value);
}

// Header layout constants shared by the segmenter and the coalescer.
inline constexpr uint8_t kProtocolTcp = 6;
inline constexpr uint8_t kProtocolUdp = 17;
inline constexpr size_t kIpv4MinHeaderLength = 20;
inline constexpr size_t kIpv6HeaderLength = 40;
inline constexpr size_t kTcpMinHeaderLength = 20;
inline constexpr size_t kUdpHeaderLength = 8;
inline constexpr size_t kTcpChecksumOffset = 16;
inline constexpr size_t kUdpChecksumOffset = 6;
inline constexpr size_t kMaxIpPacket = 65535;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;
inline constexpr uint8_t kTcpUrg = 0x20;
inline constexpr uint8_t kTcpEce = 0x40;
inline constexpr uint8_t kTcpCwr = 0x80;

}  // namespace tunlab::offload
