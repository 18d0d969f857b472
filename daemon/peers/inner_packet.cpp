#include "peers/inner_packet.hpp"

namespace tunlab {

namespace {

constexpr size_t kIpv4MinimumHeader = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kVlanTagLength = 4;

uint16_t read_be16(const uint8_t* data) {
    return static_cast<uint16_t>((data[0] << 8) | data[1]);
}

}  // namespace

std::variant<IpHeaderInfo, DropReason> validate_ip_packet(std::span<const uint8_t> packet,
                                                          size_t mtu) {
    if (packet.empty()) {
        return DropReason::Empty;
    }
    const unsigned version = packet[0] >> 4;
    if (version == 4) {
        if (packet.size() < kIpv4MinimumHeader) {
            return DropReason::Truncated;
        }
        const size_t header_length = (packet[0] & 0x0fu) * 4u;
        if (header_length < kIpv4MinimumHeader || header_length > packet.size()) {
            return DropReason::BadHeader;
        }
        if (read_be16(&packet[2]) != packet.size()) {
            return DropReason::BadLength;
        }
        if (packet.size() > mtu) {
            return DropReason::TooBig;
        }
        return IpHeaderInfo{IpAddress::v4(&packet[12]), IpAddress::v4(&packet[16])};
    }
    if (version == 6) {
        if (packet.size() < kIpv6Header) {
            return DropReason::Truncated;
        }
        if (kIpv6Header + read_be16(&packet[4]) != packet.size()) {
            return DropReason::BadLength;
        }
        if (packet.size() > mtu) {
            return DropReason::TooBig;
        }
        return IpHeaderInfo{IpAddress::v6(&packet[8]), IpAddress::v6(&packet[24])};
    }
    return DropReason::BadVersion;
}

std::optional<IpHeaderInfo> read_ip_addresses(std::span<const uint8_t> packet) {
    if (packet.size() >= kIpv4MinimumHeader && (packet[0] >> 4) == 4) {
        return IpHeaderInfo{IpAddress::v4(&packet[12]), IpAddress::v4(&packet[16])};
    }
    if (packet.size() >= kIpv6Header && (packet[0] >> 4) == 6) {
        return IpHeaderInfo{IpAddress::v6(&packet[8]), IpAddress::v6(&packet[24])};
    }
    return std::nullopt;
}

std::optional<DropReason> validate_ethernet_frame(std::span<const uint8_t> frame, size_t mtu) {
    if (frame.empty()) {
        return DropReason::Empty;
    }
    if (frame.size() < kEthernetHeaderLength) {
        return DropReason::Truncated;
    }
    if (frame.size() > mtu + kEthernetHeaderLength + kVlanTagLength) {
        return DropReason::TooBig;
    }
    return std::nullopt;
}

}  // namespace tunlab
