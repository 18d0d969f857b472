#pragma once

// The plain types every layer shares: what a tunnel and its peers are configured to be. No
// behaviour beyond what follows from the values themselves; parsing them is config's job,
// running them core's and the data plane's.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secret_key.hpp"
#include "crypto/x25519.hpp"
#include "net/endpoint.hpp"
#include "net/ip_address.hpp"

namespace tunlab {

// What the device carries: IP packets (TUN) or Ethernet frames (TAP).
enum class DeviceMode { Tun, Tap };

// What the wire carries: the lab's protocol (one inner packet per datagram, nothing added,
// nothing authenticated) or WireGuard's (Noise handshakes, encrypted and authenticated).
enum class ProtocolKind { Plain, WireGuard };

// The names the files and the API use ("tun", "tap"; "plain", "wireguard"), and back.
std::string_view to_string(DeviceMode mode);
std::string_view to_string(ProtocolKind protocol);
std::optional<DeviceMode> device_mode_named(std::string_view name);
std::optional<ProtocolKind> protocol_named(std::string_view name);

// Names a peer within its tunnel for the tunnel's whole life (never reused).
using PeerId = uint64_t;

// A secret key (a private or preshared key) in locked memory, shared by the copies of a
// configuration that hold it: copying settings never copies the secret, and the last copy to
// go wipes it. Equal when the keys are (compared in constant time).
class SharedSecret {
  public:
    SharedSecret() = default;
    explicit SharedSecret(crypto::SecretKey key);

    bool empty() const { return key_ == nullptr; }
    const crypto::SecretKey& key() const { return *key_; }
    bool operator==(const SharedSecret& other) const;

  private:
    std::shared_ptr<const crypto::SecretKey> key_;
};

// A peer as configured.
struct PeerConfig {
    std::optional<Endpoint> endpoint;
    std::vector<Prefix> allowed_ips;
    uint16_t keepalive_seconds = 0;  // WireGuard: persistent keepalive
    // WireGuard: who the peer is, and the preshared key mixed into its handshakes (empty:
    // none), with the file it was read from (empty: given inline, by the bus or the state).
    std::optional<crypto::PublicKey> public_key;
    SharedSecret preshared_key;
    std::string preshared_key_file;

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
    // WireGuard: our static private key, and the file it was read from (empty: given inline,
    // by the bus or the state).
    SharedSecret private_key;
    std::string private_key_file;

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
