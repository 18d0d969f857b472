// libFuzzer target: the data plane's checks of datagrams that arrive from the network
// (daemon/peers/inner_packet.hpp).
//
// Input: 2 bytes big-endian MTU, then the datagram. The same datagram goes through
// validate_ip_packet (TUN mode), validate_ethernet_frame (TAP mode) and read_ip_addresses, and
// every answer is checked against what the IP headers say.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <variant>

#include "fuzz_check.hpp"
#include "peers/inner_packet.hpp"

namespace {

using tunlab::DropReason;
using tunlab::Family;
using tunlab::IpAddress;
using tunlab::IpHeaderInfo;

size_t be16(const uint8_t* data) {
    return (size_t{data[0]} << 8) | data[1];
}

bool address_is(const IpAddress& address, Family family, const uint8_t* bytes) {
    const size_t width = family == Family::V4 ? 4 : 16;
    if (address.family != family || std::memcmp(address.bytes.data(), bytes, width) != 0) {
        return false;
    }
    for (size_t i = width; i < address.bytes.size(); ++i) {
        if (address.bytes[i] != 0) {
            return false;  // comparison and hashing rely on the unused bytes being zero
        }
    }
    return true;
}

bool same(const IpHeaderInfo& a, const IpHeaderInfo& b) {
    return a.source == b.source && a.destination == b.destination;
}

void check_ip_packet(std::span<const uint8_t> packet, size_t mtu) {
    const auto result = tunlab::validate_ip_packet(packet, mtu);
    const size_t size = packet.size();
    const unsigned version = size == 0 ? 0 : packet[0] >> 4;

    if (const auto* info = std::get_if<IpHeaderInfo>(&result)) {
        FUZZ_CHECK(size <= mtu, "accepted packet larger than the MTU");
        if (version == 4) {
            FUZZ_CHECK(size >= 20, "accepted IPv4 packet shorter than a header");
            const size_t header_length = (packet[0] & 0x0fu) * 4u;
            FUZZ_CHECK(header_length >= 20 && header_length <= size,
                       "accepted IPv4 packet with a bad header length");
            FUZZ_CHECK(be16(&packet[2]) == size, "accepted IPv4 packet whose total length lies");
            FUZZ_CHECK(address_is(info->source, Family::V4, &packet[12]), "wrong IPv4 source");
            FUZZ_CHECK(address_is(info->destination, Family::V4, &packet[16]),
                       "wrong IPv4 destination");
        } else if (version == 6) {
            FUZZ_CHECK(size >= 40, "accepted IPv6 packet shorter than a header");
            FUZZ_CHECK(40 + be16(&packet[4]) == size,
                       "accepted IPv6 packet whose payload length lies");
            FUZZ_CHECK(address_is(info->source, Family::V6, &packet[8]), "wrong IPv6 source");
            FUZZ_CHECK(address_is(info->destination, Family::V6, &packet[24]),
                       "wrong IPv6 destination");
        } else {
            tunlab::fuzz::fail("accepted a packet that is neither IPv4 nor IPv6");
        }
        // What the TUN side reads from the same bytes must agree with the validator.
        const auto read = tunlab::read_ip_addresses(packet);
        FUZZ_CHECK(read.has_value() && same(*read, *info),
                   "read_ip_addresses disagrees with validate_ip_packet");
        // A larger MTU never turns an accepted packet away.
        FUZZ_CHECK(std::holds_alternative<IpHeaderInfo>(tunlab::validate_ip_packet(packet, 65535)),
                   "accepted at a small MTU but not at 65535");
        return;
    }

    const DropReason reason = std::get<DropReason>(result);
    switch (reason) {
        case DropReason::Empty:
            FUZZ_CHECK(size == 0, "Empty for a non-empty packet");
            break;
        case DropReason::BadVersion:
            FUZZ_CHECK(size > 0 && version != 4 && version != 6, "BadVersion for IPv4/IPv6");
            break;
        case DropReason::Truncated:
            FUZZ_CHECK((version == 4 && size < 20) || (version == 6 && size < 40),
                       "Truncated for a packet that holds its header");
            break;
        case DropReason::BadHeader: {
            FUZZ_CHECK(version == 4 && size >= 20, "BadHeader for a non-IPv4 packet");
            const size_t header_length = (packet[0] & 0x0fu) * 4u;
            FUZZ_CHECK(header_length < 20 || header_length > size,
                       "BadHeader for a good header length");
            break;
        }
        case DropReason::BadLength:
            FUZZ_CHECK((version == 4 && size >= 20 && be16(&packet[2]) != size) ||
                           (version == 6 && size >= 40 && 40 + be16(&packet[4]) != size),
                       "BadLength for a packet whose length field is right");
            break;
        case DropReason::TooBig:
            FUZZ_CHECK(size > mtu, "TooBig for a packet within the MTU");
            break;
        default:
            tunlab::fuzz::fail("validate_ip_packet returned a reason it must not return");
    }
    if (size > 0 && version != 4 && version != 6) {
        FUZZ_CHECK(reason == DropReason::BadVersion, "a non-IP packet must be BadVersion");
    }
}

void check_ethernet_frame(std::span<const uint8_t> frame, size_t mtu) {
    const auto reason = tunlab::validate_ethernet_frame(frame, mtu);
    const size_t size = frame.size();
    if (!reason) {
        // The data plane then reads the source MAC at offset 6..11 without further checks.
        FUZZ_CHECK(size >= tunlab::kEthernetHeaderLength, "accepted a frame without a header");
        FUZZ_CHECK(size <= mtu + tunlab::kEthernetHeaderLength + 4,
                   "accepted a frame larger than MTU + header + VLAN tag");
        return;
    }
    switch (*reason) {
        case DropReason::Empty:
            FUZZ_CHECK(size == 0, "Empty for a non-empty frame");
            break;
        case DropReason::Truncated:
            FUZZ_CHECK(size > 0 && size < tunlab::kEthernetHeaderLength,
                       "Truncated for a frame that holds its header");
            break;
        case DropReason::TooBig:
            FUZZ_CHECK(size > mtu + tunlab::kEthernetHeaderLength + 4,
                       "TooBig for a frame within the MTU");
            break;
        default:
            tunlab::fuzz::fail("validate_ethernet_frame returned a reason it must not return");
    }
}

void check_read_addresses(std::span<const uint8_t> packet) {
    const auto read = tunlab::read_ip_addresses(packet);
    const size_t size = packet.size();
    const unsigned version = size == 0 ? 0 : packet[0] >> 4;
    if (version == 4 && size >= 20) {
        FUZZ_CHECK(read && address_is(read->source, Family::V4, &packet[12]) &&
                       address_is(read->destination, Family::V4, &packet[16]),
                   "read_ip_addresses misread an IPv4 header");
    } else if (version == 6 && size >= 40) {
        FUZZ_CHECK(read && address_is(read->source, Family::V6, &packet[8]) &&
                       address_is(read->destination, Family::V6, &packet[24]),
                   "read_ip_addresses misread an IPv6 header");
    } else {
        FUZZ_CHECK(!read, "read_ip_addresses read addresses from a packet too short for them");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return -1;  // not added to the corpus
    }
    const size_t mtu = be16(data);
    // libFuzzer hands over a heap copy of exactly `size` bytes: ASan sees any read past the end.
    const std::span<const uint8_t> datagram(data + 2, size - 2);

    check_ip_packet(datagram, mtu);
    // What the data plane actually passes: max(tunnel MTU, 1500) (see DataPlane::receive_limit_).
    check_ip_packet(datagram, mtu < 1500 ? 1500 : mtu);
    check_ethernet_frame(datagram, mtu);
    check_read_addresses(datagram);
    return 0;
}
