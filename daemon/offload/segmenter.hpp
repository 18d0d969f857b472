#pragma once

// Send side of TUN offloads: one packet read from a TUN device with IFF_VNET_HDR (a
// virtio_net_hdr, then an IP packet that may be a GSO super-packet of up to 64 KB) becomes the
// complete IP packets that the "plain" wire protocol carries, one per UDP datagram, each with
// correct IP and TCP/UDP checksums.
//
// The packets are written into the caller's buffer as the datagrams they become, back to back:
// each at its Framing's header offset within a datagram of framing.datagram_size(packet)
// bytes (the bytes around it are the protocol's to fill), all but the last the same size: the
// layout that one sendmsg() with UDP_SEGMENT = that size (UDP GSO) sends as that many
// datagrams (see udp_gso_segments_per_send()). Without framing, the datagram is the packet.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

#include "model/framing.hpp"
#include "offload/virtio_net_hdr.hpp"

namespace tunlab::offload {

enum class SegmentError : uint8_t {
    Truncated,                 // no vnet header, an empty packet, or its IP/TCP/UDP header cut off
    UnsupportedGsoType,        // UFO (GSO_UDP) or a type this code does not know
    BadIpHeader,               // wrong version for the GSO type, header/total length lies,
                               // a fragment, or not the protocol the GSO type says
    UnsupportedIpv6Extension,  // IPv6 next header is not TCP/UDP directly
    BadTransportHeader,        // TCP data offset below 5 or past the packet
    BadChecksumOffsets,        // csum_start/csum_offset outside the packet or not the headers'
    BadGsoSize,                // gso_size 0 for a GSO packet
    SegmentTooBig,             // a segment would exceed max_segment (the tunnel MTU)
    OutputTooSmall,            // the segments do not fit into the output buffer
};

std::string_view segment_error_name(SegmentError error);

struct Segments {
    size_t segment_size = 0;   // every segment but the last; the last has 1..segment_size bytes
    size_t segment_count = 0;  // at least 1
    size_t total_bytes = 0;    // bytes of datagrams written to the output, from its start
    size_t datagram_size = 0;  // every datagram but the last (== segment_size without framing)
    size_t last_segment_size = 0;
    friend bool operator==(const Segments&, const Segments&) = default;
};

using SegmentResult = std::variant<Segments, SegmentError>;

// Enough output for any super-packet whose gso_size is at least its header length (Linux's
// smallest MSS is 48 and TCP/IP headers are 40..120 bytes: 64 KB of payload + 1 header per
// segment). Smaller gso_size values may return OutputTooSmall.
inline constexpr size_t kSegmentOutputSize = 2 * 65536;

// `packet` starts with the 10-byte virtio_net_hdr, as read() from the TUN device returns it.
SegmentResult segment_packet(std::span<const uint8_t> packet, size_t max_segment,
                             std::span<uint8_t> output, const Framing& framing = {});

// The same with the header already decoded and `ip_packet` the bytes after it.
//  - GSO_NONE: one segment, copied; with NEEDS_CSUM the checksum at csum_start + csum_offset
//    (which holds the pseudo-header sum) is completed over csum_start..end (any protocol).
//  - GSO_TCPV4/GSO_TCPV6: cut into gso_size (MSS) payload pieces, each with its own IP length
//    (and IPv4 id + i, header checksum), TCP sequence number, flags (FIN/PSH on the last only,
//    CWR on the first only) and full TCP checksum. IPv4 options are copied; IPv6 extension
//    headers are refused.
//  - GSO_UDP_L4 (USO): cut into gso_size payload pieces, each a datagram with its own length,
//    IPv4 id + i and a full UDP checksum (never 0).
// Headers are found by parsing and checked; hdr_len is ignored because Linux sets it to the
// length of the skb's linear part, which on the forwarding path is the whole first packet.
// With NEEDS_CSUM, csum_start/csum_offset must point at the TCP/UDP checksum of a GSO packet.
SegmentResult segment_packet(const VirtioNetHeader& header, std::span<const uint8_t> ip_packet,
                             size_t max_segment, std::span<uint8_t> output,
                             const Framing& framing = {});

// How many `segment_size` datagrams one UDP GSO sendmsg() may carry: Linux allows at most 64
// segments per call (UDP_MAX_SEGMENTS, 128 from Linux 6.9 on) and one UDP datagram's worth of
// payload in total (65507 bytes over IPv4, 65527 over IPv6). A 64 KB super-packet's segments
// usually need two calls.
size_t udp_gso_segments_per_send(size_t segment_size, bool ipv6_outer);

}  // namespace tunlab::offload
