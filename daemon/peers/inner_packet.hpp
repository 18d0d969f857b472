#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>

#include "model/drop_reason.hpp"
#include "net/ip_address.hpp"

namespace tunlab {

struct IpHeaderInfo {
    IpAddress source;
    IpAddress destination;
};

// Checks one datagram payload that claims to be an IP packet (TUN mode) and returns its
// addresses, or why it must be dropped. `mtu` is the tunnel's inner MTU.
std::variant<IpHeaderInfo, DropReason> validate_ip_packet(std::span<const uint8_t> packet,
                                                          size_t mtu);

// Reads the addresses of a packet that came from our own TUN device; the kernel wrote it, so
// only the minimum is checked. nullopt for anything that is not IPv4/IPv6.
std::optional<IpHeaderInfo> read_ip_addresses(std::span<const uint8_t> packet);

constexpr size_t kEthernetHeaderLength = 14;

// An Ethernet frame for TAP mode: at least a header and at most the MTU plus the header
// (and a VLAN tag).
std::optional<DropReason> validate_ethernet_frame(std::span<const uint8_t> frame, size_t mtu);

}  // namespace tunlab
