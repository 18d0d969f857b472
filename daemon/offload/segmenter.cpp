#include "offload/segmenter.hpp"

#include <algorithm>
#include <cstring>

#include "offload/checksum.hpp"
#include "offload/wire_format.hpp"

namespace tunlab::offload {
namespace {

enum class IpFamily { V4, V6, Either };

struct IpHeader {
    size_t length = 0;
    bool ipv6 = false;
};

bool is_ipv6_extension_header(uint8_t next_header) {
    switch (next_header) {
        case 0:    // hop-by-hop options (also BIG TCP's jumbo payload)
        case 43:   // routing
        case 44:   // fragment
        case 50:   // ESP
        case 51:   // AH
        case 60:   // destination options
        case 135:  // mobility
        case 139:  // HIP
        case 140:  // shim6
        case 253:  // experiments
        case 254:
            return true;
        default:
            return false;
    }
}

// Checks the IP header of a super-packet that must carry `protocol` directly.
std::variant<IpHeader, SegmentError> parse_ip_header(std::span<const uint8_t> packet,
                                                     IpFamily family, uint8_t protocol) {
    if (packet.empty()) {
        return SegmentError::Truncated;
    }
    const unsigned version = packet[0] >> 4;
    if (version == 4 && family != IpFamily::V6) {
        if (packet.size() < kIpv4MinHeaderLength) {
            return SegmentError::Truncated;
        }
        const size_t header_length = (packet[0] & 0x0fu) * 4u;
        if (header_length < kIpv4MinHeaderLength) {
            return SegmentError::BadIpHeader;
        }
        if (header_length > packet.size()) {
            return SegmentError::Truncated;
        }
        const bool fragment = (load_be16(&packet[6]) & 0x3fffu) != 0;  // MF or an offset
        if (load_be16(&packet[2]) != packet.size() || fragment || packet[9] != protocol) {
            return SegmentError::BadIpHeader;
        }
        return IpHeader{header_length, false};
    }
    if (version == 6 && family != IpFamily::V4) {
        if (packet.size() < kIpv6HeaderLength) {
            return SegmentError::Truncated;
        }
        if (kIpv6HeaderLength + load_be16(&packet[4]) != packet.size()) {
            return SegmentError::BadIpHeader;
        }
        if (packet[6] != protocol) {
            return is_ipv6_extension_header(packet[6]) ? SegmentError::UnsupportedIpv6Extension
                                                       : SegmentError::BadIpHeader;
        }
        return IpHeader{kIpv6HeaderLength, true};
    }
    return SegmentError::BadIpHeader;
}

uint16_t transport_pseudo_header_sum(const uint8_t* ip_packet, bool ipv6, uint8_t protocol,
                                     size_t transport_length) {
    if (ipv6) {
        return pseudo_header_sum_ipv6(std::span<const uint8_t, 16>(ip_packet + 8, 16),
                                      std::span<const uint8_t, 16>(ip_packet + 24, 16), protocol,
                                      static_cast<uint32_t>(transport_length));
    }
    return pseudo_header_sum_ipv4(std::span<const uint8_t, 4>(ip_packet + 12, 4),
                                  std::span<const uint8_t, 4>(ip_packet + 16, 4), protocol,
                                  static_cast<uint16_t>(transport_length));
}

// Sets the length (and for IPv4 the id and header checksum) of one segment's IP header.
void finish_ip_header(uint8_t* segment, const IpHeader& ip, size_t segment_length,
                      uint16_t ipv4_id) {
    if (ip.ipv6) {
        store_be16(segment + 4, static_cast<uint16_t>(segment_length - kIpv6HeaderLength));
        return;
    }
    store_be16(segment + 2, static_cast<uint16_t>(segment_length));
    store_be16(segment + 4, ipv4_id);
    store_be16(segment + 10, 0);
    store_be16(segment + 10, internet_checksum(std::span<const uint8_t>(segment, ip.length)));
}

// Fills the transport checksum of a segment whose field is zero. UDP sends a computed 0 as
// 0xffff (0 means "no checksum"); TCP keeps 0, as the sender's own stack and Linux's TCP GSO do,
// so that a segment cut from a coalesced run is byte for byte the one that was received.
void finish_transport_checksum(uint8_t* segment, const IpHeader& ip, uint8_t protocol,
                               size_t transport_length, size_t checksum_offset) {
    uint8_t* transport = segment + ip.length;
    const uint16_t pseudo =
        transport_pseudo_header_sum(segment, ip.ipv6, protocol, transport_length);
    const uint16_t sum =
        ones_complement_sum(std::span<const uint8_t>(transport, transport_length), pseudo);
    uint16_t checksum = internet_checksum_from_sum(sum);
    if (checksum == 0 && protocol == kProtocolUdp) {
        checksum = 0xffff;
    }
    store_be16(transport + checksum_offset, checksum);
}

SegmentResult copy_single(const VirtioNetHeader& header, std::span<const uint8_t> packet,
                          size_t max_segment, std::span<uint8_t> output, const Framing& framing) {
    if (packet.empty()) {
        return SegmentError::Truncated;  // nothing to send
    }
    if (packet.size() > max_segment) {
        return SegmentError::SegmentTooBig;
    }
    const size_t datagram = framing.datagram_size(packet.size());
    if (datagram > output.size()) {
        return SegmentError::OutputTooSmall;
    }
    uint8_t* out = output.data() + framing.header;
    if ((header.flags & kNeedsCsum) != 0) {
        const size_t start = header.csum_start;
        const size_t field = start + header.csum_offset;
        if (field + 2 > packet.size()) {
            return SegmentError::BadChecksumOffsets;
        }
        std::memcpy(out, packet.data(), packet.size());
        // The field already holds the pseudo-header sum: summing over it completes it.
        const uint16_t sum =
            ones_complement_sum(std::span<const uint8_t>(out + start, packet.size() - start));
        // 0 goes out as 0xffff whatever the protocol, like Linux's skb_checksum_help(): right
        // for UDP, the same value for the others.
        const uint16_t checksum = internet_checksum_from_sum(sum);
        store_be16(out + field, checksum == 0 ? 0xffff : checksum);
    } else {
        std::memcpy(out, packet.data(), packet.size());
    }
    return Segments{packet.size(), 1, datagram, datagram, packet.size()};
}

// The work shared by TCP and UDP: cut the payload after `headers_length` bytes into gso_size
// pieces, each behind a copy of the headers; `fix_transport` then adjusts one segment's
// transport header (its checksum field must end up zero) before the checksums are computed.
template <typename FixTransport>
SegmentResult split(const VirtioNetHeader& header, std::span<const uint8_t> packet,
                    const IpHeader& ip, size_t transport_header_length, uint8_t protocol,
                    size_t checksum_offset, size_t max_segment, std::span<uint8_t> output,
                    const Framing& framing, FixTransport&& fix_transport) {
    if ((header.flags & kNeedsCsum) != 0 &&
        (header.csum_start != ip.length || header.csum_offset != checksum_offset)) {
        return SegmentError::BadChecksumOffsets;
    }
    if (header.gso_size == 0) {
        return SegmentError::BadGsoSize;
    }
    const size_t headers_length = ip.length + transport_header_length;
    const size_t payload = packet.size() - headers_length;
    const size_t piece = header.gso_size;
    const size_t count = payload == 0 ? 1 : (payload + piece - 1) / piece;
    const size_t segment_size = headers_length + std::min(piece, payload);
    if (segment_size > max_segment) {
        return SegmentError::SegmentTooBig;
    }
    const size_t datagram = framing.datagram_size(segment_size);
    const size_t last_segment = headers_length + (payload - (count - 1) * piece);
    const size_t total = (count - 1) * datagram + framing.datagram_size(last_segment);
    if (total > output.size()) {
        return SegmentError::OutputTooSmall;
    }

    const uint16_t first_id = ip.ipv6 ? 0 : load_be16(&packet[4]);
    uint8_t* segment = output.data() + framing.header;
    size_t offset = 0;  // payload bytes before this segment
    for (size_t i = 0; i < count; ++i) {
        const size_t length = std::min(piece, payload - offset);
        std::memcpy(segment, packet.data(), headers_length);
        std::memcpy(segment + headers_length, packet.data() + headers_length + offset, length);
        finish_ip_header(segment, ip, headers_length + length, static_cast<uint16_t>(first_id + i));
        uint8_t* transport = segment + ip.length;
        store_be16(transport + checksum_offset, 0);
        fix_transport(transport, i, count, offset, transport_header_length + length);
        finish_transport_checksum(segment, ip, protocol, transport_header_length + length,
                                  checksum_offset);
        segment += datagram;
        offset += length;
    }
    return Segments{segment_size, count, total, datagram, last_segment};
}

SegmentResult split_tcp(const VirtioNetHeader& header, std::span<const uint8_t> packet,
                        IpFamily family, size_t max_segment, std::span<uint8_t> output,
                        const Framing& framing) {
    const auto parsed = parse_ip_header(packet, family, kProtocolTcp);
    if (const auto* error = std::get_if<SegmentError>(&parsed)) {
        return *error;
    }
    const IpHeader ip = std::get<IpHeader>(parsed);
    if (packet.size() < ip.length + kTcpMinHeaderLength) {
        return SegmentError::Truncated;
    }
    const size_t tcp_header_length = (packet[ip.length + 12] >> 4) * 4u;
    if (tcp_header_length < kTcpMinHeaderLength) {
        return SegmentError::BadTransportHeader;
    }
    if (ip.length + tcp_header_length > packet.size()) {
        return SegmentError::Truncated;
    }
    const uint32_t first_sequence = load_be32(&packet[ip.length + 4]);
    const uint8_t flags = packet[ip.length + 13];
    return split(header, packet, ip, tcp_header_length, kProtocolTcp, kTcpChecksumOffset,
                 max_segment, output, framing,
                 [&](uint8_t* tcp, size_t index, size_t count, size_t offset, size_t) {
                     store_be32(tcp + 4, static_cast<uint32_t>(first_sequence + offset));
                     uint8_t segment_flags = flags;
                     if (index + 1 != count) {
                         segment_flags &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
                     }
                     if (index != 0) {
                         segment_flags &= static_cast<uint8_t>(~kTcpCwr);
                     }
                     tcp[13] = segment_flags;
                 });
}

SegmentResult split_udp(const VirtioNetHeader& header, std::span<const uint8_t> packet,
                        size_t max_segment, std::span<uint8_t> output, const Framing& framing) {
    const auto parsed = parse_ip_header(packet, IpFamily::Either, kProtocolUdp);
    if (const auto* error = std::get_if<SegmentError>(&parsed)) {
        return *error;
    }
    const IpHeader ip = std::get<IpHeader>(parsed);
    if (packet.size() < ip.length + kUdpHeaderLength) {
        return SegmentError::Truncated;
    }
    return split(header, packet, ip, kUdpHeaderLength, kProtocolUdp, kUdpChecksumOffset,
                 max_segment, output, framing,
                 [](uint8_t* udp, size_t, size_t, size_t, size_t udp_length) {
                     store_be16(udp + 4, static_cast<uint16_t>(udp_length));
                 });
}

}  // namespace

std::string_view segment_error_name(SegmentError error) {
    switch (error) {
        case SegmentError::Truncated:
            return "truncated";
        case SegmentError::UnsupportedGsoType:
            return "unsupported_gso_type";
        case SegmentError::BadIpHeader:
            return "bad_ip_header";
        case SegmentError::UnsupportedIpv6Extension:
            return "unsupported_ipv6_extension";
        case SegmentError::BadTransportHeader:
            return "bad_transport_header";
        case SegmentError::BadChecksumOffsets:
            return "bad_checksum_offsets";
        case SegmentError::BadGsoSize:
            return "bad_gso_size";
        case SegmentError::SegmentTooBig:
            return "segment_too_big";
        case SegmentError::OutputTooSmall:
            return "output_too_small";
    }
    return "unknown";
}

SegmentResult segment_packet(std::span<const uint8_t> packet, size_t max_segment,
                             std::span<uint8_t> output, const Framing& framing) {
    const auto header = read_virtio_net_header(packet);
    if (!header) {
        return SegmentError::Truncated;
    }
    return segment_packet(*header, packet.subspan(kVirtioNetHdrSize), max_segment, output, framing);
}

SegmentResult segment_packet(const VirtioNetHeader& header, std::span<const uint8_t> ip_packet,
                             size_t max_segment, std::span<uint8_t> output,
                             const Framing& framing) {
    switch (header.gso_kind()) {
        case kGsoNone:
            return copy_single(header, ip_packet, max_segment, output, framing);
        case kGsoTcpV4:
            return split_tcp(header, ip_packet, IpFamily::V4, max_segment, output, framing);
        case kGsoTcpV6:
            return split_tcp(header, ip_packet, IpFamily::V6, max_segment, output, framing);
        case kGsoUdpL4:
            return split_udp(header, ip_packet, max_segment, output, framing);
        default:
            return SegmentError::UnsupportedGsoType;
    }
}

size_t udp_gso_segments_per_send(size_t segment_size, bool ipv6_outer) {
    constexpr size_t kMaxSegmentsPerSend = 64;  // UDP_MAX_SEGMENTS before Linux 6.9
    const size_t max_payload = ipv6_outer ? 65535 - 8 : 65535 - 20 - 8;
    if (segment_size == 0) {
        return 0;
    }
    return std::clamp<size_t>(max_payload / segment_size, 1, kMaxSegmentsPerSend);
}

}  // namespace tunlab::offload
