#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "dataplane/counters.hpp"
#include "net/endpoint.hpp"
#include "net/ip_address.hpp"

namespace tunlab {

using PeerId = uint64_t;

// What the control plane says about a peer.
struct PeerConfig {
    std::optional<Endpoint> endpoint;
    std::vector<Prefix> allowed_ips;
    uint16_t keepalive_seconds = 0;

    bool operator==(const PeerConfig&) const = default;
};

// A peer as the data plane keeps it. Only the tunnel's data-plane thread reads or writes the
// fields; the counters are also read by other threads (see Counter).
struct Peer {
    PeerId id = 0;
    bool learned = false;
    PeerConfig config;  // config.endpoint follows the peer when it roams
    TrafficCounters counters;
    uint64_t last_keepalive_us = 0;
};

// An immutable copy of a peer's state for the control plane, published by the data plane
// whenever the peer set or an endpoint changes. Counters are read live through `peer`.
struct PeerView {
    PeerId id = 0;
    bool learned = false;
    PeerConfig config;
    std::shared_ptr<const Peer> peer;
};

using PeerViews = std::vector<PeerView>;

}  // namespace tunlab
