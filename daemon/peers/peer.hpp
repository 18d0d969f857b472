#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "model/tunnel_settings.hpp"
#include "net/endpoint.hpp"
#include "peers/counters.hpp"

namespace tunlab {

// What a wire protocol keeps per peer (a WireGuard peer's handshake, sessions and timers).
struct PeerProtocolState {
    virtual ~PeerProtocolState() = default;
};

// A peer as the data plane keeps it. Only the tunnel's data-plane thread reads or writes the
// fields; the counters are also read by other threads (see Counter).
struct Peer {
    PeerId id = 0;
    bool learned = false;
    PeerConfig config;  // config.endpoint follows the peer when it roams
    TrafficCounters counters;
    // When the last handshake with the peer completed: µs since the epoch, 0 = never.
    Counter latest_handshake_us;
    uint64_t last_keepalive_us = 0;
    uint64_t last_move_us = 0;  // when the endpoint last followed the peer (roaming)
    // Where the peer last sent from while it could not move yet; it moves there once it may.
    std::optional<Endpoint> pending_move;
    std::unique_ptr<PeerProtocolState> protocol_state;
};

// An immutable copy of a peer's state for the control plane, published by the data plane
// whenever the peer set or an endpoint changes, or a handshake completes. Counters are read
// live through `peer`.
struct PeerView {
    PeerId id = 0;
    bool learned = false;
    PeerConfig config;
    uint64_t latest_handshake_us = 0;
    std::shared_ptr<const Peer> peer;
};

// One snapshot of a tunnel's peers, in id order. The views are shared between snapshots and
// replaced only when their peer changes: with 10,000 peers, publishing after one change costs
// pointer copies, not 10,000 configuration copies, and a reader finds what changed by
// comparing pointers.
using PeerViews = std::vector<std::shared_ptr<const PeerView>>;

}  // namespace tunlab
