#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "model/drop_reason.hpp"
#include "model/tunnel_settings.hpp"
#include "net/endpoint.hpp"
#include "peers/forwarding.hpp"
#include "peers/peer.hpp"
#include "peers/peer_table.hpp"

namespace tunlab {

// Where a protocol sends what it makes up itself (keepalives, and for a protocol with
// handshakes, those): straight to the socket, not through the data plane's batches.
class Wire {
  public:
    virtual ~Wire() = default;
    virtual void send(const Endpoint& to, std::span<const uint8_t> datagram) = 0;
};

// What a datagram from the network turned out to be.
struct Opened {
    std::span<const uint8_t> inner;  // the packet for the device (may be empty)
    Peer* peer = nullptr;            // its sender, if the datagram says who it is
    std::optional<DropReason> drop;  // set: counted and dropped
    bool keepalive = false;          // nothing for the device, but a sign of life
};

// One wire protocol: what goes on the wire and how the sender of a datagram is known. The data
// plane owns everything that moves packets (device and socket, batches, offloads, counters,
// the peer table); it asks the protocol what a packet from the device becomes for its peer,
// what a datagram from the network is and who sent it, and what is due on its timer tick.
// Runs on the data plane's thread only.
class Protocol {
  public:
    virtual ~Protocol() = default;

    // Device → wire: `train` holds inner packets for `peer`, `segment_size` bytes each (the
    // last may be shorter), as the socket will send them; make them the datagrams in place.
    // False: dropped, and why in `*drop`.
    virtual bool seal(Peer& peer, std::span<uint8_t> train, size_t segment_size,
                      DropReason* drop) = 0;
    // Wire → device: a datagram from `from`; `known` is the peer at that endpoint, if any.
    virtual Opened open(std::span<uint8_t> datagram, const Endpoint& from, Peer* known,
                        uint64_t now_us) = 0;
    // An inner packet whose datagram named no sender (open() left `peer` null): the peer it
    // belongs to, or nullptr and why in `*drop`.
    virtual Peer* identify(const Endpoint& from, const InnerSource& source, uint64_t now_us,
                           DropReason* drop) = 0;
    // Once a second.
    virtual void tick(uint64_t now_us, Wire& wire) = 0;
};

std::unique_ptr<Protocol> make_protocol(ProtocolKind kind, PeerTable& table,
                                        const Forwarding& forwarding);

}  // namespace tunlab
