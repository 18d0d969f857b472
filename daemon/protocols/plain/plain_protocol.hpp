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
    PlainProtocol(PeerTable& table, const Forwarding& forwarding, Wire& wire)
        : table_(table), forwarding_(forwarding), wire_(wire) {}

    Sealed seal(Peer&, const Train&, const BatchTime&, DropReason*) override {
        return Sealed::Send;
    }
    Opened open(std::span<uint8_t> datagram, const Endpoint& from, Peer* known,
                const BatchTime& now) override;
    Peer* identify(const Endpoint& from, const InnerSource& source, uint64_t now_us,
                   DropReason* drop) override;
    void tick(uint64_t now_us) override;

  private:
    void move(Peer& peer, const Endpoint& to, uint64_t now_us);

    PeerTable& table_;
    const Forwarding& forwarding_;
    Wire& wire_;
    int move_lines_left_ = 1;  // refilled by tick(): the roaming log is rate-limited
    uint64_t moves_not_logged_ = 0;
};

}  // namespace tunlab
