#include "model/tunnel_settings.hpp"

#include <algorithm>

#include "crypto/constant_time.hpp"

namespace tunlab {

namespace {

// WireGuard's default, as wg-quick picks it: 1500 − 80 (an IPv6 outer header, UDP, and
// WireGuard's 32 bytes of header and tag), whatever the outer family.
constexpr uint32_t kWireGuardDefaultMtu = 1420;
constexpr uint32_t kIpv4OuterOverhead = 28;  // IPv4 header + UDP header
constexpr uint32_t kIpv6OuterOverhead = 48;  // IPv6 header + UDP header
constexpr uint32_t kDefaultPathMtu = 1500;
constexpr uint32_t kEthernetOverhead = 14;  // TAP mode: each datagram carries the frame header

}  // namespace

std::string_view to_string(DeviceMode mode) {
    return mode == DeviceMode::Tun ? "tun" : "tap";
}

std::string_view to_string(ProtocolKind protocol) {
    switch (protocol) {
        case ProtocolKind::WireGuard:
            return "wireguard";
        case ProtocolKind::Plain:
            break;
    }
    return "plain";
}

std::optional<DeviceMode> device_mode_named(std::string_view name) {
    for (const DeviceMode mode : {DeviceMode::Tun, DeviceMode::Tap}) {
        if (name == to_string(mode)) {
            return mode;
        }
    }
    return std::nullopt;
}

std::optional<ProtocolKind> protocol_named(std::string_view name) {
    for (const ProtocolKind protocol : {ProtocolKind::Plain, ProtocolKind::WireGuard}) {
        if (name == to_string(protocol)) {
            return protocol;
        }
    }
    return std::nullopt;
}

SharedSecret::SharedSecret(crypto::SecretKey key)
    : key_(std::make_shared<const crypto::SecretKey>(std::move(key))) {}

bool SharedSecret::operator==(const SharedSecret& other) const {
    if (empty() || other.empty()) {
        return empty() == other.empty();
    }
    return key_ == other.key_ || crypto::equal_constant_time(key_->bytes(), other.key_->bytes());
}

uint32_t TunnelConfig::effective_mtu() const {
    return effective_mtu(std::any_of(peers.begin(), peers.end(), [](const PeerConfig& peer) {
        return peer.endpoint && peer.endpoint->is_ipv6();
    }));
}

uint32_t TunnelConfig::effective_mtu(bool ipv6_peer_endpoint) const {
    if (mtu) {
        return *mtu;
    }
    if (protocol == ProtocolKind::WireGuard) {
        return kWireGuardDefaultMtu;
    }
    const bool ipv6_outer =
        (listen_address.family == Family::V6 && !listen_address.is_unspecified()) ||
        ipv6_peer_endpoint;
    const uint32_t ethernet = mode == DeviceMode::Tap ? kEthernetOverhead : 0;
    return kDefaultPathMtu - (ipv6_outer ? kIpv6OuterOverhead : kIpv4OuterOverhead) - ethernet;
}

std::string TunnelConfig::interface_or_template() const {
    if (!interface.empty()) {
        return interface;
    }
    return mode == DeviceMode::Tun ? "tun%d" : "tap%d";
}

}  // namespace tunlab
