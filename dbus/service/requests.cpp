#include "service/requests.hpp"

#include <set>

#include "config/tunnel_config.hpp"
#include "core/error.hpp"
#include "crypto/random.hpp"
#include "crypto/x25519.hpp"
#include "util/printable.hpp"

namespace tunlab::bus {

namespace {

void reject_unknown_options(const Options& options, const std::set<std::string>& known) {
    for (const auto& [key, value] : options) {
        if (!known.contains(key)) {
            throw RequestError(ErrorKind::InvalidArgument,
                               "options: unknown option '" + quote_input(key) + "'");
        }
    }
}

}  // namespace

TunnelConfig create_tunnel_request(const std::string& name, const Options& options) {
    TunnelConfig config = tunnel_config_from_json(name, options_to_json(options),
                                                  ParseContext{KeySource::Inline, {}});
    if (config.protocol == ProtocolKind::WireGuard && config.private_key.empty()) {
        config.private_key = SharedSecret(crypto::generate_private_key(crypto::system_random()));
    }
    return config;
}

PeerConfig add_peer_request(const std::string& endpoint, const Options& options,
                            const IpAddress& listen_address, ProtocolKind protocol) {
    reject_unknown_options(options, {"allowed_ips", "keepalive", "public_key", "preshared_key"});
    nlohmann::json peer = options_to_json(options);
    if (!endpoint.empty()) {
        peer["endpoint"] = endpoint;
    }
    return peer_config_from_json(peer, "", listen_address, protocol,
                                 ParseContext{KeySource::Inline, {}});
}

std::optional<Endpoint> endpoint_request(const std::string& endpoint,
                                         const IpAddress& listen_address) {
    if (endpoint.empty()) {
        return std::nullopt;
    }
    return parse_endpoint(endpoint, "endpoint", listen_address);
}

std::vector<Prefix> allowed_ips_request(const std::vector<std::string>& allowed_ips) {
    std::vector<Prefix> prefixes;
    prefixes.reserve(allowed_ips.size());
    for (size_t i = 0; i < allowed_ips.size(); ++i) {
        prefixes.push_back(parse_prefix(allowed_ips[i], "allowed_ips[" + std::to_string(i) + "]"));
    }
    return prefixes;
}

Prefix route_request(const std::string& destination, const Options& options) {
    // No route option exists yet; the map is there so that one can be added (metric, table)
    // without breaking callers.
    reject_unknown_options(options, {});
    return route_request(destination);
}

Prefix route_request(const std::string& destination) {
    return parse_prefix(destination, "destination");
}

InterfaceAddress address_request(const std::string& cidr) {
    return parse_interface_address(cidr, "cidr");
}

}  // namespace tunlab::bus
