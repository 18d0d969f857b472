#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/tunnel_settings.hpp"
#include "net/endpoint.hpp"
#include "net/ip_address.hpp"
#include "service/options.hpp"

namespace tunlab::bus {

// What each org.tunlab1 call asks for, checked and turned into the core's types: pure
// functions (no connection, no tunnel) with the tunnel files' checks and messages (config/),
// called by the adaptors and by the D-Bus fuzzer alike. They throw RequestError or
// ConfigError naming the argument.

// A wireguard tunnel asked for without a private key gets a new one.
TunnelConfig create_tunnel_request(const std::string& name, const Options& options);
// `listen_address`: what the tunnel's socket listens on (Tunnel::socket_address()).
PeerConfig add_peer_request(const std::string& endpoint, const Options& options,
                            const IpAddress& listen_address, ProtocolKind protocol);
// Empty: forget the endpoint.
std::optional<Endpoint> endpoint_request(const std::string& endpoint,
                                         const IpAddress& listen_address);
std::vector<Prefix> allowed_ips_request(const std::vector<std::string>& allowed_ips);
Prefix route_request(const std::string& destination, const Options& options);
Prefix route_request(const std::string& destination);
InterfaceAddress address_request(const std::string& cidr);

}  // namespace tunlab::bus
