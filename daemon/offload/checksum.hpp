#pragma once

// The Internet checksum (RFC 1071) for IPv4 headers and TCP/UDP over IPv4/IPv6.
//
// A "sum" here is the one's-complement sum of 16-bit big-endian words, folded to 16 bits and
// not yet complemented, as a host integer. Sums of pieces combine with add_sums() as long as
// every piece but the last has an even length (true for the pseudo-header, IP/TCP/UDP headers
// and then the payload). The value to store in a checksum field is internet_checksum_from_sum().

#include <cstddef>
#include <cstdint>
#include <span>

namespace tunlab::offload {

// One's-complement sum of `data` (an odd last byte counts as the high byte of a word padded with
// zero) plus `initial`. The hot path (TCP/UDP payloads up to 64 KB): see checksum.cpp.
uint16_t ones_complement_sum(std::span<const uint8_t> data, uint16_t initial = 0);

inline uint16_t add_sums(uint16_t a, uint16_t b) {
    const uint32_t sum = uint32_t{a} + b;
    return static_cast<uint16_t>((sum & 0xffffu) + (sum >> 16));
}

// What goes into the checksum field: the complement of the sum over everything it covers
// (with the field itself zero).
inline uint16_t internet_checksum_from_sum(uint16_t sum) {
    return static_cast<uint16_t>(~sum);
}

// The complete checksum of `data` alone (e.g. an IPv4 header whose checksum field is zero).
inline uint16_t internet_checksum(std::span<const uint8_t> data) {
    return internet_checksum_from_sum(ones_complement_sum(data));
}

// Pseudo-header sums: addresses, protocol and the transport length (header + payload).
uint16_t pseudo_header_sum_ipv4(std::span<const uint8_t, 4> source,
                                std::span<const uint8_t, 4> destination, uint8_t protocol,
                                uint16_t transport_length);
uint16_t pseudo_header_sum_ipv6(std::span<const uint8_t, 16> source,
                                std::span<const uint8_t, 16> destination, uint8_t protocol,
                                uint32_t transport_length);

// A span of data that includes its own checksum field verifies when its sum (with the
// pseudo-header sum as `initial` for TCP/UDP) is 0xffff.
inline bool checksum_verifies(std::span<const uint8_t> data, uint16_t initial = 0) {
    return ones_complement_sum(data, initial) == 0xffff;
}

}  // namespace tunlab::offload
