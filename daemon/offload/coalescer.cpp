#include "offload/coalescer.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include "offload/checksum.hpp"

namespace tunlab::offload {

// What add() reads from a TCP (or UDP) packet. `mergeable` says whether it may be part of a
// super-packet at all (the header comment's per-packet rules, checksums included).
struct SegmentInfo {
    bool ipv6 = false;
    uint8_t protocol = kProtocolTcp;
    size_t ip_header_length = 0;
    size_t transport_header_length = 0;
    size_t payload = 0;
    uint32_t sequence = 0;
    uint8_t flags = 0;
    bool mergeable = false;
};

namespace {

// The only flags a segment of a super-packet may carry.
constexpr uint8_t kTcpMergeableFlags = kTcpAck | kTcpPsh;

bool coalescible_protocol(uint8_t protocol, bool udp) {
    return protocol == kProtocolTcp || (udp && protocol == kProtocolUdp);
}

// Whether the transport checksum (at its place in `bytes`, after the IP header) verifies.
bool transport_checksum_verifies(std::span<const uint8_t> bytes, const SegmentInfo& segment) {
    const size_t transport_length = bytes.size() - segment.ip_header_length;
    uint16_t pseudo;
    if (segment.ipv6) {
        pseudo = pseudo_header_sum_ipv6(std::span<const uint8_t, 16>(&bytes[8], 16),
                                        std::span<const uint8_t, 16>(&bytes[24], 16),
                                        segment.protocol, static_cast<uint32_t>(transport_length));
    } else {
        if (!checksum_verifies(bytes.first(kIpv4MinHeaderLength))) {
            return false;
        }
        pseudo = pseudo_header_sum_ipv4(std::span<const uint8_t, 4>(&bytes[12], 4),
                                        std::span<const uint8_t, 4>(&bytes[16], 4),
                                        segment.protocol, static_cast<uint16_t>(transport_length));
    }
    return checksum_verifies(bytes.subspan(segment.ip_header_length), pseudo);
}

// The UDP part of read_segment: `segment` has its IP fields, and the IP header checks out.
void read_udp_datagram(std::span<const uint8_t> bytes, SegmentInfo& segment,
                       const CoalescerLimits& limits) {
    if (bytes.size() < segment.ip_header_length + kUdpHeaderLength) {
        return;
    }
    const uint8_t* udp = &bytes[segment.ip_header_length];
    segment.transport_header_length = kUdpHeaderLength;
    // A zero checksum (IPv4: none sent) would come back computed after re-segmenting.
    if (load_be16(udp + 4) != bytes.size() - segment.ip_header_length ||
        load_be16(udp + kUdpChecksumOffset) == 0) {
        return;
    }
    segment.payload = bytes.size() - segment.ip_header_length - kUdpHeaderLength;
    segment.mergeable = segment.payload > 0 &&
                        (limits.authenticated || transport_checksum_verifies(bytes, segment));
}

// A TCP (or, with `udp`, UDP) packet, or nullopt when `bytes` is not one that shows its ports
// (another protocol, a later fragment, cut off): then it belongs to no flow and is written as
// it came. A packet that shows its ports but is malformed otherwise still closes its flow's
// run, to stay in order.
std::optional<SegmentInfo> read_segment(std::span<const uint8_t> bytes,
                                        const CoalescerLimits& limits) {
    SegmentInfo segment;
    if (bytes.empty()) {
        return std::nullopt;
    }
    const unsigned version = bytes[0] >> 4;
    bool ip_checks_out = false;
    if (version == 4) {
        if (bytes.size() < kIpv4MinHeaderLength || !coalescible_protocol(bytes[9], limits.udp)) {
            return std::nullopt;
        }
        segment.protocol = bytes[9];
        segment.ip_header_length = (bytes[0] & 0x0fu) * 4u;
        const uint16_t fragment = load_be16(&bytes[6]);
        if (segment.ip_header_length < kIpv4MinHeaderLength || (fragment & 0x1fffu) != 0) {
            return std::nullopt;  // a later fragment has no TCP header: not even ports
        }
        const bool more_fragments = (fragment & 0x2000u) != 0;
        ip_checks_out = segment.ip_header_length == kIpv4MinHeaderLength && !more_fragments &&
                        load_be16(&bytes[2]) == bytes.size();
    } else if (version == 6) {
        if (bytes.size() < kIpv6HeaderLength || !coalescible_protocol(bytes[6], limits.udp)) {
            return std::nullopt;
        }
        segment.protocol = bytes[6];
        segment.ipv6 = true;
        segment.ip_header_length = kIpv6HeaderLength;
        ip_checks_out = kIpv6HeaderLength + load_be16(&bytes[4]) == bytes.size();
    } else {
        return std::nullopt;
    }
    if (bytes.size() < segment.ip_header_length + 4) {
        return std::nullopt;
    }
    if (!ip_checks_out) {
        return segment;  // ports only
    }
    if (segment.protocol == kProtocolUdp) {
        read_udp_datagram(bytes, segment, limits);
        return segment;
    }
    if (bytes.size() < segment.ip_header_length + kTcpMinHeaderLength) {
        return segment;
    }
    const uint8_t* tcp = &bytes[segment.ip_header_length];
    segment.transport_header_length = (tcp[12] >> 4) * 4u;
    if (segment.transport_header_length < kTcpMinHeaderLength ||
        segment.ip_header_length + segment.transport_header_length > bytes.size()) {
        return segment;
    }
    segment.payload = bytes.size() - segment.ip_header_length - segment.transport_header_length;
    segment.sequence = load_be32(tcp + 4);
    segment.flags = tcp[13];

    // Cheap checks first; the checksums last, over the whole segment.
    if (segment.payload == 0 || (segment.flags & kTcpAck) == 0 ||
        (segment.flags & ~kTcpMergeableFlags) != 0) {
        return segment;
    }
    segment.mergeable = limits.authenticated || transport_checksum_verifies(bytes, segment);
    return segment;
}

bool same_bytes(const uint8_t* a, const uint8_t* b, size_t offset, size_t length) {
    return std::memcmp(a + offset, b + offset, length) == 0;
}

}  // namespace

Coalescer::Coalescer(CoalescerLimits limits) : limits_(limits) {
    limits_.max_coalesced_size = std::min(limits_.max_coalesced_size, kMaxIpPacket);
    packets_.reserve(limits_.max_packets);
    runs_.reserve(limits_.max_packets);
    open_runs_.reserve(limits_.max_flows);
    // The largest IP packet: IPv6 may carry 65535 bytes after its 40-byte header.
    output_.resize(kVirtioNetHdrSize + kIpv6HeaderLength + kMaxIpPacket);
}

void Coalescer::clear() {
    packets_.clear();
    runs_.clear();
    open_runs_.clear();
}

size_t Coalescer::find_open_run(const SegmentInfo& segment, std::span<const uint8_t> bytes,
                                void* tag) const {
    for (size_t position = 0; position < open_runs_.size(); ++position) {
        const Run& run = runs_[open_runs_[position]];
        if (run.tag != tag || run.ipv6 != segment.ipv6 || run.protocol != segment.protocol) {
            continue;
        }
        const uint8_t* first = packets_[run.first].bytes.data();
        const bool same_addresses = segment.ipv6 ? same_bytes(first, bytes.data(), 8, 32)
                                                 : same_bytes(first, bytes.data(), 12, 8);
        const bool same_ports = std::memcmp(first + run.ip_header_length,
                                            bytes.data() + segment.ip_header_length, 4) == 0;
        if (same_addresses && same_ports) {
            return position;
        }
    }
    return open_runs_.size();
}

bool Coalescer::can_join(const Run& run, const SegmentInfo& segment, std::span<const uint8_t> bytes,
                         void* tag) const {
    if (!segment.mergeable || run.tag != tag || run.ipv6 != segment.ipv6 ||
        run.protocol != segment.protocol || run.pushed ||
        segment.ip_header_length != run.ip_header_length ||
        segment.transport_header_length != run.transport_header_length ||
        run.last_payload != run.segment_payload || segment.payload > run.segment_payload ||
        run.ip_size + segment.payload > limits_.max_coalesced_size ||
        run.count >= limits_.max_segments ||
        (run.protocol == kProtocolTcp && segment.sequence != run.next_sequence)) {
        return false;
    }
    const uint8_t* first = packets_[run.first].bytes.data();
    const uint8_t* next = bytes.data();
    if (segment.ipv6) {
        // Version, traffic class, flow label; next header (TCP for both) and hop limit.
        if (!same_bytes(first, next, 0, 4) || !same_bytes(first, next, 6, 2)) {
            return false;
        }
    } else {
        // Version/IHL and TOS; flags/fragment offset, TTL and protocol; the id counts up.
        if (!same_bytes(first, next, 0, 2) || !same_bytes(first, next, 6, 4) ||
            load_be16(next + 4) != run.next_ipv4_id) {
            return false;
        }
    }
    if (run.protocol == kProtocolUdp) {
        return true;  // the ports matched; lengths and checksum are the datagram's own
    }
    const uint8_t* first_tcp = first + run.ip_header_length;
    const uint8_t* next_tcp = next + segment.ip_header_length;
    // ACK number and data offset; window; urgent pointer and options. The flags were checked by
    // read_segment (ACK, maybe PSH) and the run's so far are plain ACKs.
    return same_bytes(first_tcp, next_tcp, 8, 5) && same_bytes(first_tcp, next_tcp, 14, 2) &&
           same_bytes(first_tcp, next_tcp, 18, run.transport_header_length - 18);
}

void Coalescer::close_open_run(size_t position) {
    open_runs_.erase(open_runs_.begin() + static_cast<std::ptrdiff_t>(position));
}

void Coalescer::open_run(uint32_t run) {
    if (limits_.max_flows == 0) {
        return;
    }
    if (open_runs_.size() >= limits_.max_flows) {
        // The run that grew least recently stops growing; it is still written in its place.
        close_open_run(0);
    }
    open_runs_.push_back(run);
}

bool Coalescer::add(std::span<const uint8_t> ip_packet, void* tag, size_t counted_bytes) {
    if (full()) {
        return false;
    }
    if (counted_bytes == 0) {
        counted_bytes = ip_packet.size();
    }
    if (kVirtioNetHdrSize + ip_packet.size() > output_.size()) {
        // Not an IP packet a caller would pass (IPv6 tops out at 65575 bytes), but still
        // written as it came. Allocates only when a larger packet than ever before arrives.
        output_.resize(kVirtioNetHdrSize + ip_packet.size());
    }
    const auto index = static_cast<uint32_t>(packets_.size());
    packets_.push_back(Packet{ip_packet, kNoPacket});

    const auto segment = read_segment(ip_packet, limits_);
    if (segment) {
        const size_t position = find_open_run(*segment, ip_packet, tag);
        if (position != open_runs_.size()) {
            Run& run = runs_[open_runs_[position]];
            if (can_join(run, *segment, ip_packet, tag)) {
                packets_[run.last].next = index;
                run.last = index;
                ++run.count;
                run.counted_bytes += counted_bytes;
                run.ip_size += static_cast<uint32_t>(segment->payload);
                run.next_sequence += static_cast<uint32_t>(segment->payload);
                ++run.next_ipv4_id;
                run.last_payload = static_cast<uint16_t>(segment->payload);
                run.pushed = (segment->flags & kTcpPsh) != 0;
                const uint32_t run_index = open_runs_[position];
                close_open_run(position);
                if (!run.pushed && run.last_payload == run.segment_payload) {
                    open_runs_.push_back(run_index);  // now the most recently grown
                }
                return true;
            }
            // Whatever comes next in this flow must not overtake this packet.
            close_open_run(position);
        }
    }

    Run run;
    run.first = index;
    run.last = index;
    run.tag = tag;
    run.counted_bytes = counted_bytes;
    const auto run_index = static_cast<uint32_t>(runs_.size());
    if (segment && segment->mergeable && (segment->flags & kTcpPsh) == 0 &&
        ip_packet.size() <= limits_.max_coalesced_size) {
        run.ipv6 = segment->ipv6;
        run.protocol = segment->protocol;
        run.ip_header_length = static_cast<uint16_t>(segment->ip_header_length);
        run.transport_header_length = static_cast<uint16_t>(segment->transport_header_length);
        run.segment_payload = static_cast<uint16_t>(segment->payload);
        run.last_payload = run.segment_payload;
        run.ip_size = static_cast<uint32_t>(ip_packet.size());
        run.next_sequence = segment->sequence + static_cast<uint32_t>(segment->payload);
        run.next_ipv4_id = segment->ipv6 ? 0 : static_cast<uint16_t>(load_be16(&ip_packet[4]) + 1);
        runs_.push_back(run);
        open_run(run_index);
    } else {
        runs_.push_back(run);
    }
    return true;
}

CoalescedWrite Coalescer::build_write(size_t run_index) {
    const Run& run = runs_[run_index];
    uint8_t* out = output_.data();
    const std::span<const uint8_t> first = packets_[run.first].bytes;
    if (run.count == 1) {
        write_virtio_net_header(VirtioNetHeader{}, std::span<uint8_t, kVirtioNetHdrSize>(out, 10));
        if (!first.empty()) {
            std::memcpy(out + kVirtioNetHdrSize, first.data(), first.size());
        }
        return {std::span<const uint8_t>(out, kVirtioNetHdrSize + first.size()), 1,
                run.counted_bytes, run.tag};
    }

    const bool udp = run.protocol == kProtocolUdp;
    const size_t headers_length = size_t{run.ip_header_length} + run.transport_header_length;
    const size_t checksum_offset = udp ? kUdpChecksumOffset : kTcpChecksumOffset;
    VirtioNetHeader header;
    header.flags = kNeedsCsum;
    header.gso_type = udp ? kGsoUdpL4 : run.ipv6 ? kGsoTcpV6 : kGsoTcpV4;
    header.hdr_len = static_cast<uint16_t>(headers_length);
    header.gso_size = run.segment_payload;
    header.csum_start = run.ip_header_length;
    header.csum_offset = static_cast<uint16_t>(checksum_offset);
    write_virtio_net_header(header, std::span<uint8_t, kVirtioNetHdrSize>(out, 10));

    uint8_t* ip = out + kVirtioNetHdrSize;
    std::memcpy(ip, first.data(), headers_length);
    uint8_t* payload = ip + headers_length;
    for (uint32_t packet = run.first; packet != kNoPacket; packet = packets_[packet].next) {
        const std::span<const uint8_t> bytes = packets_[packet].bytes.subspan(headers_length);
        std::memcpy(payload, bytes.data(), bytes.size());
        payload += bytes.size();
    }

    const size_t transport_length = run.ip_size - run.ip_header_length;
    uint8_t* transport = ip + run.ip_header_length;
    uint16_t pseudo;
    if (run.ipv6) {
        store_be16(ip + 4, static_cast<uint16_t>(transport_length));
        pseudo = pseudo_header_sum_ipv6(std::span<const uint8_t, 16>(ip + 8, 16),
                                        std::span<const uint8_t, 16>(ip + 24, 16), run.protocol,
                                        static_cast<uint32_t>(transport_length));
    } else {
        store_be16(ip + 2, static_cast<uint16_t>(run.ip_size));
        store_be16(ip + 10, 0);
        store_be16(ip + 10, internet_checksum(std::span<const uint8_t>(ip, run.ip_header_length)));
        pseudo = pseudo_header_sum_ipv4(std::span<const uint8_t, 4>(ip + 12, 4),
                                        std::span<const uint8_t, 4>(ip + 16, 4), run.protocol,
                                        static_cast<uint16_t>(transport_length));
    }
    if (udp) {
        // The kernel cuts the UDP length and checksum per datagram from these (USO).
        store_be16(transport + 4, static_cast<uint16_t>(transport_length));
    } else if (run.pushed) {
        transport[13] |= kTcpPsh;  // re-segmenting puts it on the last piece only, where it was
    }
    // NEEDS_CSUM: the field holds the pseudo-header sum; the kernel adds the rest.
    store_be16(transport + checksum_offset, pseudo);
    return {std::span<const uint8_t>(out, kVirtioNetHdrSize + run.ip_size), run.count,
            run.counted_bytes, run.tag};
}

}  // namespace tunlab::offload
