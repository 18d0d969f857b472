#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "model/tunnel_settings.hpp"

namespace tunlab::uapi {

// One `set=1` request of WireGuard's cross-platform userspace API, parsed whole before anything
// is applied (wireguard-go applies line by line; here a request that fails changes nothing).
struct SetRequest {
    struct AllowedIp {
        bool remove = false;  // "allowed_ip=-10.0.0.0/8"
        Prefix prefix;
    };
    struct PeerSection {
        crypto::PublicKey public_key{};
        bool remove = false;
        bool update_only = false;
        // Set when the line is there; an all-zero preshared key means none.
        std::optional<SharedSecret> preshared_key;
        std::optional<Endpoint> endpoint;
        std::optional<uint16_t> keepalive_seconds;
        bool replace_allowed_ips = false;
        std::vector<AllowedIp> allowed_ips;  // in request order
    };
    std::optional<SharedSecret> private_key;
    std::optional<uint16_t> listen_port;
    bool replace_peers = false;
    std::vector<PeerSection> peers;
};

// `lines`: the request's lines after "set=1", without their newlines, up to (not including)
// the empty line that ends it. Throws UapiError: EINVAL for an unknown key or a bad value,
// EPROTO for a line without '=', EOPNOTSUPP for a firewall mark (tunlab does not mark).
SetRequest parse_set_request(const std::vector<std::string_view>& lines);

// The configuration `current` becomes with `request` applied, as wireguard-go applies it: peers
// by public key in the order they were first configured, an allowed IP given to one peer taken
// from any other, a section for our own public key ignored. Throws UapiError (EINVAL) for what
// the result cannot be (no private key).
TunnelConfig apply_set_request(const TunnelConfig& current, const SetRequest& request);

}  // namespace tunlab::uapi
