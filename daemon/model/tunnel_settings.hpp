#pragma once

// The plain types every layer shares: what a tunnel and its peers are configured to be. No
// behaviour beyond what follows from the values themselves; parsing them is config's job,
// running them core's and the data plane's.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/endpoint.hpp"
#include "net/ip_address.hpp"

namespace tunlab {

// What the device carries: IP packets (TUN) or Ethernet frames (TAP).
enum class DeviceMode { Tun, Tap };

// What the wire carries. Only the lab's: one inner packet per datagram, nothing added.
enum class ProtocolKind { Plain };

// The names the files and the API use ("tun", "tap"; "plain"), and back.
std::string_view to_string(DeviceMode mode);
std::string_view to_string(ProtocolKind protocol);
std::optional<DeviceMode> device_mode_named(std::string_view name);
std::optional<ProtocolKind> protocol_named(std::string_view name);

// Names a peer within its tunnel for the tunnel's whole life (never reused).
using PeerId = uint64_t;

// A peer as configured.
struct PeerConfig {
    std::optional<Endpoint> endpoint;
    std::vector<Prefix> allowed_ips;
    uint16_t keepalive_seconds = 0;

    bool operator==(const PeerConfig&) const = default;
};

// One tunnel as configured: everything needed to bring it up again. The JSON form is
// documented in README.md ("Configuration").
struct TunnelConfig {
    std::string name;
    std::string interface;  // empty: the kernel picks tunN / tapN
    DeviceMode mode = DeviceMode::Tun;
    ProtocolKind protocol = ProtocolKind::Plain;
    std::vector<InterfaceAddress> addresses;
    std::optional<uint32_t> mtu;  // empty: the largest that does not fragment the outer packet
    IpAddress listen_address = *IpAddress::parse("::");
    uint16_t listen_port = 0;  // 0: ephemeral
    bool learn_peers = true;
    uint32_t max_learned_peers = 1024;
    uint32_t learned_peer_timeout_seconds = 180;
    // After traffic, the data plane polls for this long instead of sleeping (0 = never).
    uint32_t busy_poll_us = 0;
    std::vector<Prefix> routes;
    std::vector<PeerConfig> peers;

    uint32_t effective_mtu() const;
    // The same, told whether any peer has an IPv6 endpoint instead of looking at `peers`.
    uint32_t effective_mtu(bool ipv6_peer_endpoint) const;
    std::string interface_or_template() const;
    bool operator==(const TunnelConfig&) const = default;
};

// Interface MTUs a tunnel accepts.
inline constexpr uint32_t kMinimumMtu = 576;
inline constexpr uint32_t kMinimumIpv6Mtu = 1280;
inline constexpr uint32_t kMaximumMtu = 65535;

}  // namespace tunlab
