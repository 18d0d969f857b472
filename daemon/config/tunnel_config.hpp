#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/peer.hpp"
#include "net/ip_address.hpp"
#include "system/tun_device.hpp"

namespace tunlab {

// One tunnel as configured: everything needed to bring it up again. The JSON form is
// documented in README.md ("Configuration").
struct TunnelConfig {
    std::string name;
    std::string interface;  // empty: the kernel picks tunN / tapN
    DeviceMode mode = DeviceMode::Tun;
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

// A problem with one field, e.g. field "peers[1].allowed_ips[0]", problem "not a CIDR prefix".
// Control characters in either (quoted from the input) are shown as \xNN.
class ConfigError : public std::runtime_error {
  public:
    ConfigError(const std::string& field, const std::string& problem);
    const std::string& field() const { return field_; }

  private:
    std::string field_;
};

bool is_valid_tunnel_name(std::string_view name);

// Throws ConfigError.
TunnelConfig tunnel_config_from_json(std::string_view name, const nlohmann::json& json);
nlohmann::json tunnel_config_to_json(const TunnelConfig& config);

// One entry of "peers"; `path` prefixes field names in errors ("peers[2]", or "" for the bus).
PeerConfig peer_config_from_json(const nlohmann::json& json, const std::string& path,
                                 const IpAddress& listen_address);
nlohmann::json peer_config_to_json(const PeerConfig& peer);

// Checks one interface address / route / allowed-IP text; `field` names it in the error.
InterfaceAddress parse_interface_address(const std::string& text, const std::string& field);
Prefix parse_prefix(const std::string& text, const std::string& field);

// Reads "<dir>/<name>.json"; throws ConfigError (field "" for a file that is not JSON).
TunnelConfig load_tunnel_config_file(const std::filesystem::path& path);

struct ConfigDirectory {
    std::vector<TunnelConfig> tunnels;
    std::vector<std::string> errors;  // one line each: "<file>: <field>: <problem>"
};

// Every "*.json" in `directory`, sorted by name. A missing directory is empty, not an error.
ConfigDirectory load_config_directory(const std::filesystem::path& directory);

}  // namespace tunlab
