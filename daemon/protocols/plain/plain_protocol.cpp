#include "protocols/plain/plain_protocol.hpp"

#include <algorithm>

#include "util/log.hpp"

namespace tunlab {

namespace {

// A peer's endpoint follows it at most this often. Anyone can make a peer move (by sending a
// datagram with its inner address from elsewhere), and every move is a bus signal. Datagrams
// from a new endpoint in between are delivered; the last of those endpoints is where the peer
// moves when the interval is over (tick), so the endpoint still ends where it last sent from.
constexpr uint64_t kMinMoveIntervalUs = 1'000'000;
constexpr uint64_t kTickUs = 1'000'000;

}  // namespace

Opened PlainProtocol::open(std::span<uint8_t> datagram, const Endpoint&, Peer* known,
                           const BatchTime&) {
    if (known != nullptr && known->pending_move) {
        known->pending_move.reset();  // back where it was: it stays
    }
    if (datagram.empty()) {
        // A keepalive, from a known peer; from anyone else, nothing.
        return known != nullptr ? Opened::keepalive_from(known)
                                : Opened::dropped(DropReason::Empty);
    }
    return Opened::packet(datagram, known);
}

Peer* PlainProtocol::identify(const Endpoint& from, const InnerSource& source, uint64_t now_us,
                              DropReason* drop) {
    if (Peer* moved = forwarding_.owner(source)) {
        if (moved->last_move_us != 0 && now_us - moved->last_move_us < kMinMoveIntervalUs) {
            moved->pending_move = from;
        } else {
            move(*moved, from, now_us);
        }
        return moved;
    }
    Peer* learned = nullptr;
    switch (table_.learn(from, source.ip, &learned)) {
        case PeerTable::LearnResult::Learned:
            return learned;
        case PeerTable::LearnResult::Disabled:
            *drop = DropReason::UnknownPeer;
            return nullptr;
        case PeerTable::LearnResult::Full:
            *drop = DropReason::PeerLimit;
            return nullptr;
    }
    return nullptr;
}

void PlainProtocol::move(Peer& peer, const Endpoint& to, uint64_t now_us) {
    // Anyone can make a peer move by sending one datagram, so one line per second at most.
    if (move_lines_left_ > 0) {
        --move_lines_left_;
        log::info("peer ", peer.id, " moved from ",
                  peer.config.endpoint ? peer.config.endpoint->to_string() : "nowhere", " to ",
                  to.to_string());
    } else {
        ++moves_not_logged_;
    }
    table_.move_endpoint(peer, to);
    peer.last_move_us = now_us;
    peer.pending_move.reset();
}

void PlainProtocol::tick(uint64_t now_us) {
    if (moves_not_logged_ > 0) {
        log::info(moves_not_logged_, " more peer moves in the last second (not logged one by one)");
        moves_not_logged_ = 0;
    }
    move_lines_left_ = 1;
    table_.for_each([&](Peer& peer) {
        if (peer.pending_move && now_us - peer.last_move_us >= kMinMoveIntervalUs) {
            move(peer, *peer.pending_move, now_us);
        }
        const uint64_t interval = uint64_t{peer.config.keepalive_seconds} * 1'000'000;
        if (interval == 0 || !peer.config.endpoint) {
            return;
        }
        const uint64_t last = std::max(peer.counters.last_send_us.read(), peer.last_keepalive_us);
        // The tick comes once a second, a little after the previous keepalive went out: allow
        // half a tick of slack, or every keepalive would come one tick late.
        if (now_us + kTickUs / 2 >= last + interval) {
            // An empty datagram: keeps NAT state and tells a learning server where we are,
            // without putting anything into the peer's device.
            // Not counted: tx counts packets carried.
            wire_.send(*peer.config.endpoint, {}, nullptr);
            peer.last_keepalive_us = now_us;
        }
    });
}

}  // namespace tunlab
