#pragma once

#include "protocols/protocol.hpp"

namespace tunlab {

// The lab's protocol: a datagram is the inner packet, nothing added. A sender is known by its
// endpoint; a datagram from elsewhere whose inner source belongs to a known peer moves that
// peer there (roaming, at most once a second, then to where it last sent from); otherwise,
// if the tunnel learns peers, its sender becomes a learned peer. Nothing is authenticated:
// anyone who can reach the port can do all of that.
class PlainProtocol final : public Protocol {
  public:
    PlainProtocol(PeerTable& table, const Forwarding& forwarding)
        : table_(table), forwarding_(forwarding) {}

    bool seal(Peer&, std::span<uint8_t>, size_t, DropReason*) override { return true; }
    Opened open(std::span<uint8_t> datagram, const Endpoint& from, Peer* known,
                uint64_t now_us) override;
    Peer* identify(const Endpoint& from, const InnerSource& source, uint64_t now_us,
                   DropReason* drop) override;
    void tick(uint64_t now_us, Wire& wire) override;

  private:
    void move(Peer& peer, const Endpoint& to, uint64_t now_us);

    PeerTable& table_;
    const Forwarding& forwarding_;
    int move_lines_left_ = 1;  // refilled by tick(): the roaming log is rate-limited
    uint64_t moves_not_logged_ = 0;
};

}  // namespace tunlab
