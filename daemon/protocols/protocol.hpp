#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "model/drop_reason.hpp"
#include "model/framing.hpp"
#include "model/tunnel_settings.hpp"
#include "net/endpoint.hpp"
#include "peers/counters.hpp"
#include "peers/forwarding.hpp"
#include "peers/peer.hpp"
#include "peers/peer_table.hpp"

namespace tunlab {

// Where a protocol sends what it makes up itself (keepalives, handshakes, packets it held
// until it could send them): straight to the socket, not through the data plane's batches.
class Wire {
  public:
    virtual ~Wire() = default;
    // `counted_for`: the peer (and tunnel) whose tx counters count the datagram, if any.
    virtual void send(const Endpoint& to, std::span<const uint8_t> datagram, Peer* counted_for) = 0;
};

// Packets from the device for one peer, laid out by the protocol's framing: `count` datagrams
// back to back in `bytes`, each `datagram_size` bytes (the last may be shorter), each holding
// an inner packet of `packet_size` bytes (the last `last_packet_size`) at framing.header.
struct Train {
    std::span<uint8_t> bytes;
    size_t count = 0;
    size_t datagram_size = 0;
    size_t packet_size = 0;
    size_t last_packet_size = 0;
};

// The clocks, read by the data plane once per batch (a clock read per packet would cost more
// than the rest of a small packet's bookkeeping): wall time for what people see (last receive,
// latest handshake), monotonic time for timers, which setting the wall clock must not move.
struct BatchTime {
    uint64_t wall_us = 0;       // µs since the epoch
    uint64_t monotonic_us = 0;  // monotonic_microseconds()
};

// What seal() did with a train.
enum class Sealed {
    Send,  // ready to send as it is
    Held,  // the protocol keeps the packets and sends them itself later (no session yet)
    Drop,  // dropped: the reason says why
};

// What a datagram from the network turned out to be.
struct Opened {
    std::span<const uint8_t> inner;  // the packet for the device
    Peer* peer = nullptr;            // its sender, if the datagram says who it is
    std::optional<DropReason> drop;  // set: counted and dropped
    bool keepalive = false;          // nothing for the device, but a sign of life from `peer`
    bool control = false;            // a message for the protocol itself (a handshake)
    size_t counted_bytes = 0;        // what rx counters count for it (0: the inner packet)

    static Opened packet(std::span<const uint8_t> inner, Peer* peer, size_t counted = 0) {
        Opened opened;
        opened.inner = inner;
        opened.peer = peer;
        opened.counted_bytes = counted;
        return opened;
    }
    static Opened dropped(DropReason reason) {
        Opened opened;
        opened.drop = reason;
        return opened;
    }
    static Opened keepalive_from(Peer* peer, size_t counted = 0) {
        Opened opened;
        opened.peer = peer;
        opened.keepalive = true;
        opened.counted_bytes = counted;
        return opened;
    }
    static Opened control_from(Peer* peer, size_t counted = 0) {
        Opened opened;
        opened.peer = peer;
        opened.control = true;
        opened.counted_bytes = counted;
        return opened;
    }
};

// One wire protocol: what goes on the wire and how the sender of a datagram is known. The data
// plane owns everything that moves packets (device and socket, batches, offloads, counters,
// the peer table); it asks the protocol what a packet from the device becomes for its peer,
// what a datagram from the network is and who sent it, and what is due on its timer tick.
// Runs on the data plane's thread only.
class Protocol {
  public:
    virtual ~Protocol() = default;

    // How inner packets sit in datagrams (the data plane lays them out so).
    virtual Framing framing() const { return {}; }
    // Whether every packet open() hands over was authenticated by its sender's key, so that
    // one corrupted on the way never arrives (its checksums then need no verifying).
    virtual bool authenticates() const { return false; }
    // Device → wire: makes `train` (for `peer`) the datagrams to send, in place.
    virtual Sealed seal(Peer& peer, const Train& train, const BatchTime& now, DropReason* drop) = 0;
    // Wire → device: a datagram from `from`; `known` is the peer at that endpoint, if any.
    // The protocol may decrypt in place.
    virtual Opened open(std::span<uint8_t> datagram, const Endpoint& from, Peer* known,
                        const BatchTime& now) = 0;
    // An inner packet whose datagram named no sender (open() left `peer` null): the peer it
    // belongs to, or nullptr and why in `*drop`.
    virtual Peer* identify(const Endpoint& from, const InnerSource& source, uint64_t now_us,
                           DropReason* drop) = 0;
    // At least once a second, and at next_deadline().
    virtual void tick(uint64_t now_us) = 0;
    // When tick() is wanted next (monotonic µs), if sooner than the data plane's second.
    virtual std::optional<uint64_t> next_deadline() const { return std::nullopt; }
};

struct ProtocolSettings {
    ProtocolKind kind = ProtocolKind::Plain;
    size_t mtu = 1472;
    SharedSecret private_key;  // WireGuard
};

std::unique_ptr<Protocol> make_protocol(const ProtocolSettings& settings, PeerTable& table,
                                        const Forwarding& forwarding, Wire& wire,
                                        TunnelCounters& counters);

}  // namespace tunlab
