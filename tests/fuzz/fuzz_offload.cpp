// libFuzzer target: the TUN offload logic (daemon/offload/): the segmenter, which reads what a
// TUN device with IFF_VNET_HDR hands out, and the coalescer, which reads datagrams from the
// network.
//
// Input: 1 mode byte, 2 bytes big-endian number, then:
//  - mode bit 0 clear (segmenter): a virtio_net_hdr + IP packet; the number is max_segment.
//    Every answer is checked: segment sizes add up, each segment of a GSO packet is a valid IP
//    packet (checksums by a byte-by-byte reference) and the payloads reassemble to the input's.
//  - mode bit 0 set (coalescer): IP packets, each as 2 bytes big-endian length + bytes (a short
//    last one takes what is left); the number is max_coalesced_size. Bit 1: fix the lengths and
//    checksums of each packet first (so that runs form at all); bits 2-3: max_flows 1/2/4/16;
//    bit 4: coalesce UDP too.
//    The writes must carry all packets in order per flow, and cutting each super-packet again
//    with the segmenter must give back its packets byte for byte.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "offload/coalescer.hpp"
#include "offload/segmenter.hpp"
#include "offload/virtio_net_hdr.hpp"

namespace {

namespace offload = tunlab::offload;
using Bytes = std::vector<uint8_t>;

size_t be16(const uint8_t* data) {
    return (size_t{data[0]} << 8) | data[1];
}

void put16(uint8_t* data, size_t value) {
    data[0] = static_cast<uint8_t>(value >> 8);
    data[1] = static_cast<uint8_t>(value);
}

// RFC 1071 one byte at a time: independent of the code under test.
uint32_t reference_sum(const uint8_t* data, size_t size, uint32_t sum = 0) {
    for (size_t i = 0; i < size; ++i) {
        sum += (i % 2 == 0) ? uint32_t{data[i]} << 8 : data[i];
    }
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

uint32_t reference_pseudo_sum(const uint8_t* ip, bool ipv6, uint8_t protocol, size_t length) {
    uint32_t sum =
        protocol + static_cast<uint32_t>(length >> 16) + static_cast<uint32_t>(length & 0xffff);
    return ipv6 ? reference_sum(ip + 8, 32, sum) : reference_sum(ip + 12, 8, sum);
}

// ---- segmenter ----

// One segment of a TCP/UDP GSO packet must be a complete, valid packet of the same flow.
void check_gso_segment(const uint8_t* segment, size_t size, bool ipv6, uint8_t protocol,
                       size_t headers) {
    FUZZ_CHECK(size >= headers, "segment shorter than its headers");
    size_t ip_length;
    if (ipv6) {
        ip_length = 40;
        FUZZ_CHECK(be16(segment + 4) + 40 == size, "IPv6 payload length wrong");
    } else {
        ip_length = (segment[0] & 0x0fu) * 4u;
        FUZZ_CHECK(be16(segment + 2) == size, "IPv4 total length wrong");
        FUZZ_CHECK(reference_sum(segment, ip_length) == 0xffff, "IPv4 header checksum wrong");
    }
    const size_t transport_length = size - ip_length;
    const uint32_t pseudo = reference_pseudo_sum(segment, ipv6, protocol, transport_length);
    FUZZ_CHECK(reference_sum(segment + ip_length, transport_length, pseudo) == 0xffff,
               "transport checksum wrong");
    if (protocol == 17) {
        FUZZ_CHECK(be16(segment + ip_length + 4) == transport_length, "UDP length wrong");
    }
}

void fuzz_segmenter(std::span<const uint8_t> input, size_t max_segment) {
    static Bytes output(offload::kSegmentOutputSize);
    const auto result = offload::segment_packet(input, max_segment, output);
    const auto* segments = std::get_if<offload::Segments>(&result);
    if (segments == nullptr) {
        return;
    }
    FUZZ_CHECK(segments->segment_count >= 1, "no segments");
    FUZZ_CHECK(segments->segment_size <= max_segment, "segment larger than max_segment");
    FUZZ_CHECK(segments->total_bytes <= output.size(), "wrote past the output");
    FUZZ_CHECK(segments->total_bytes > (segments->segment_count - 1) * segments->segment_size &&
                   segments->total_bytes <= segments->segment_count * segments->segment_size,
               "segment sizes do not add up");

    const auto header = *offload::read_virtio_net_header(input);
    const std::span<const uint8_t> packet = input.subspan(offload::kVirtioNetHdrSize);
    if (header.gso_kind() == offload::kGsoNone) {
        FUZZ_CHECK(segments->segment_count == 1 && segments->total_bytes == packet.size(),
                   "GSO_NONE is one segment of the packet's size");
        const size_t field = (header.flags & offload::kNeedsCsum) != 0
                                 ? size_t{header.csum_start} + header.csum_offset
                                 : packet.size();
        for (size_t i = 0; i < packet.size(); ++i) {
            FUZZ_CHECK(i == field || i == field + 1 || output[i] == packet[i],
                       "GSO_NONE changed a byte besides the checksum field");
        }
        if ((header.flags & offload::kNeedsCsum) != 0) {
            // What the kernel does (skb_checksum_help): the complement of the sum from
            // csum_start to the end, over the field holding the pseudo-header sum; 0 as 0xffff.
            const uint32_t expected = ~reference_sum(packet.data() + header.csum_start,
                                                     packet.size() - header.csum_start) &
                                      0xffff;
            FUZZ_CHECK(be16(output.data() + field) == (expected == 0 ? 0xffff : expected),
                       "NEEDS_CSUM checksum is not the kernel's");
        }
        return;
    }

    // TCP or UDP GSO: all segments valid, the payload the input's.
    const bool ipv6 = (packet[0] >> 4) == 6;
    const size_t ip_length = ipv6 ? 40 : (packet[0] & 0x0fu) * 4u;
    const uint8_t protocol = ipv6 ? packet[6] : packet[9];
    const size_t headers =
        ip_length + (protocol == 6 ? (packet[ip_length + 12] >> 4) * 4u : size_t{8});
    Bytes payload;
    size_t offset = 0;
    for (size_t i = 0; i < segments->segment_count; ++i) {
        const size_t size = std::min(segments->segment_size, segments->total_bytes - offset);
        check_gso_segment(&output[offset], size, ipv6, protocol, headers);
        payload.insert(payload.end(),
                       output.begin() + static_cast<std::ptrdiff_t>(offset + headers),
                       output.begin() + static_cast<std::ptrdiff_t>(offset + size));
        offset += size;
    }
    FUZZ_CHECK(payload.size() == packet.size() - headers &&
                   std::equal(payload.begin(), payload.end(),
                              packet.begin() + static_cast<std::ptrdiff_t>(headers)),
               "segments' payloads are not the input's");
}

// ---- coalescer ----

// Makes lengths and checksums right where the packet's own headers allow it, so that the
// fuzzer reaches the merging rules instead of stopping at the checksum.
void fix_packet(Bytes& packet) {
    if (packet.empty()) {
        return;
    }
    const unsigned version = packet[0] >> 4;
    size_t ip_length;
    uint8_t protocol;
    if (version == 4 && packet.size() >= 20 && (packet[0] & 0x0fu) >= 5 &&
        (packet[0] & 0x0fu) * 4u <= packet.size()) {
        ip_length = (packet[0] & 0x0fu) * 4u;
        protocol = packet[9];
        put16(&packet[2], packet.size());
        put16(&packet[10], 0);
        put16(&packet[10], ~reference_sum(packet.data(), ip_length) & 0xffff);
    } else if (version == 6 && packet.size() >= 40) {
        ip_length = 40;
        protocol = packet[6];
        put16(&packet[4], packet.size() - 40);
    } else {
        return;
    }
    const size_t checksum_at = protocol == 6 ? 16 : 6;
    if ((protocol != 6 && protocol != 17) || packet.size() < ip_length + (protocol == 6 ? 20 : 8)) {
        return;
    }
    const size_t transport_length = packet.size() - ip_length;
    if (protocol == 17) {
        put16(&packet[ip_length + 4], transport_length);
    }
    put16(&packet[ip_length + checksum_at], 0);
    const uint32_t pseudo =
        reference_pseudo_sum(packet.data(), version == 6, protocol, transport_length);
    uint16_t checksum =
        ~reference_sum(packet.data() + ip_length, transport_length, pseudo) & 0xffff;
    if (protocol == 17 && checksum == 0) {
        checksum = 0xffff;  // UDP sends a computed 0 as all ones
    }
    put16(&packet[ip_length + checksum_at], checksum);
}

// The flow a packet belongs to for ordering: version, protocol, addresses and ports of a TCP
// or UDP packet (not a later fragment); empty (no order to keep) otherwise.
std::string flow_key(const Bytes& packet) {
    const auto transport = [](uint8_t protocol) { return protocol == 6 || protocol == 17; };
    if (packet.size() >= 44 && (packet[0] >> 4) == 6 && transport(packet[6])) {
        std::string key = "6";
        key.push_back(static_cast<char>(packet[6]));
        key.append(packet.begin() + 8, packet.begin() + 44);
        return key;
    }
    if (packet.size() >= 20 && (packet[0] >> 4) == 4 && transport(packet[9]) &&
        (be16(&packet[6]) & 0x1fff) == 0) {
        const size_t ip_length = (packet[0] & 0x0fu) * 4u;
        if (ip_length >= 20 && packet.size() >= ip_length + 4) {
            std::string key(1, static_cast<char>(packet[9]));
            key.append(packet.begin() + 12, packet.begin() + 20);
            key.append(packet.begin() + static_cast<std::ptrdiff_t>(ip_length),
                       packet.begin() + static_cast<std::ptrdiff_t>(ip_length + 4));
            return key;
        }
    }
    return {};
}

void fuzz_coalescer(std::span<const uint8_t> input, uint8_t mode, size_t max_coalesced) {
    std::vector<Bytes> packets;
    while (!input.empty() && packets.size() < 80) {
        size_t size = input.size() >= 2 ? be16(input.data()) : 0;
        input = input.subspan(std::min<size_t>(2, input.size()));
        size = std::min(size, input.size());
        packets.emplace_back(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(size));
        input = input.subspan(size);
    }
    if ((mode & 2) != 0) {
        for (Bytes& packet : packets) {
            fix_packet(packet);
        }
    }
    static const size_t kFlows[] = {1, 2, 4, 16};
    offload::Coalescer coalescer({.max_packets = 64,
                                  .max_flows = kFlows[(mode >> 2) & 3],
                                  .max_coalesced_size = max_coalesced < 100 ? 65535 : max_coalesced,
                                  .udp = (mode & 16) != 0});

    std::vector<Bytes> written;  // what the kernel would see: super-packets cut again
    size_t added = 0;
    static Bytes resegmented(offload::kSegmentOutputSize);
    const auto collect = [&](const offload::CoalescedWrite& write) {
        const auto header = offload::read_virtio_net_header(write.bytes);
        FUZZ_CHECK(header.has_value(), "write without a vnet header");
        const auto packet = write.bytes.subspan(offload::kVirtioNetHdrSize);
        if (write.packets == 1) {
            FUZZ_CHECK(*header == offload::VirtioNetHeader{}, "single packet with offloads");
            written.emplace_back(packet.begin(), packet.end());
            FUZZ_CHECK(write.counted_bytes == packet.size(), "counted_bytes of a single packet");
            return;
        }
        FUZZ_CHECK(packet.size() <= 65535, "super-packet larger than 65535 bytes");
        const auto result = offload::segment_packet(write.bytes, 65535, resegmented);
        const auto* segments = std::get_if<offload::Segments>(&result);
        FUZZ_CHECK(segments != nullptr, "the segmenter refuses the coalescer's super-packet");
        FUZZ_CHECK(segments->segment_count == write.packets, "super-packet's packet count");
        size_t bytes = 0;
        for (size_t offset = 0; offset < segments->total_bytes;) {
            const size_t size = std::min(segments->segment_size, segments->total_bytes - offset);
            written.emplace_back(resegmented.begin() + static_cast<std::ptrdiff_t>(offset),
                                 resegmented.begin() + static_cast<std::ptrdiff_t>(offset + size));
            offset += size;
            bytes += size;
        }
        FUZZ_CHECK(bytes == write.counted_bytes, "counted_bytes of a super-packet");
    };
    for (const Bytes& packet : packets) {
        if (!coalescer.add(packet)) {
            coalescer.flush(collect);
            FUZZ_CHECK(coalescer.add(packet), "an empty coalescer refused a packet");
        }
        ++added;
    }
    coalescer.flush(collect);

    // Every packet comes out exactly once, byte for byte, and each flow in its order.
    FUZZ_CHECK(written.size() == added, "packets lost or duplicated");
    std::vector<Bytes> sorted_in = packets;
    std::vector<Bytes> sorted_out = written;
    std::sort(sorted_in.begin(), sorted_in.end());
    std::sort(sorted_out.begin(), sorted_out.end());
    FUZZ_CHECK(sorted_in == sorted_out, "written packets differ from the received ones");
    std::vector<std::string> keys;
    for (const Bytes& packet : packets) {
        keys.push_back(flow_key(packet));
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (const std::string& key : keys) {
        if (key.empty()) {
            continue;
        }
        std::vector<Bytes> in_flow;
        std::vector<Bytes> out_flow;
        for (const Bytes& packet : packets) {
            if (flow_key(packet) == key) {
                in_flow.push_back(packet);
            }
        }
        for (const Bytes& packet : written) {
            if (flow_key(packet) == key) {
                out_flow.push_back(packet);
            }
        }
        FUZZ_CHECK(in_flow == out_flow, "a flow's packets were reordered");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3) {
        return -1;
    }
    const uint8_t mode = data[0];
    const size_t number = be16(data + 1);
    const std::span<const uint8_t> rest(data + 3, size - 3);
    if ((mode & 1) == 0) {
        fuzz_segmenter(rest, number);
    } else {
        fuzz_coalescer(rest, mode, number);
    }
    return 0;
}
