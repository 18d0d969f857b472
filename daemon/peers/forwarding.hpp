#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <variant>

#include "model/drop_reason.hpp"
#include "model/tunnel_settings.hpp"
#include "net/ip_address.hpp"
#include "peers/mac_table.hpp"
#include "peers/peer_table.hpp"

namespace tunlab {

// Who an inner packet from the network says it comes from.
struct InnerSource {
    std::optional<IpAddress> ip;  // TUN: its source address
    MacAddress mac{};             // TAP: its source Ethernet address
};

// Where a packet read from the device goes.
struct Destination {
    Peer* peer = nullptr;  // the one peer; with none, flood or drop
    bool flood = false;    // to every configured peer (TAP: broadcast, multicast, unknown)
};

// How inner packets and peers find each other, the one place TUN and TAP differ: by IP address
// in TUN mode (allowed IPs, longest prefix), by Ethernet address in TAP mode (a learning
// switch over the PeerTable's MAC table). Chosen once, when the tunnel starts; the data plane
// and the protocols ask it instead of asking which mode they are in.
class Forwarding {
  public:
    virtual ~Forwarding() = default;

    // Device → wire.
    virtual Destination destination(std::span<const uint8_t> packet) const = 0;
    // Wire → device: checks an inner packet (at most `limit` bytes of IP packet) and says who
    // it claims to come from, or why it is dropped.
    virtual std::variant<InnerSource, DropReason> inspect(std::span<const uint8_t> inner,
                                                          size_t limit) const = 0;
    // The peer that `source` belongs to: a known peer sending from somewhere new. Or nullptr.
    virtual Peer* owner(const InnerSource& source) const = 0;
    // A packet from `peer` with `source`: false if the peer may not send it (BadSource). Learns
    // what the mode learns: a learned peer's further addresses (TUN), the station behind a
    // peer (TAP).
    virtual bool accept(Peer& peer, const InnerSource& source, uint64_t now_us) = 0;
};

std::unique_ptr<Forwarding> make_forwarding(DeviceMode mode, PeerTable& table);

}  // namespace tunlab
