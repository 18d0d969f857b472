#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

#include "peers/peer.hpp"

namespace tunlab {

using MacAddress = std::array<uint8_t, 6>;

struct MacAddressHash {
    size_t operator()(const MacAddress& mac) const noexcept;
};

// A TAP tunnel's forwarding table: behind which peer each Ethernet address was last seen, as a
// learning switch keeps it. Bounded, because every source address in a frame from the network
// is learned, and anyone can send frames:
//   - a learned peer (an endpoint that only sent us a datagram) holds at most
//     kPerLearnedPeer addresses, and can neither take an address from a configured peer nor
//     push a configured peer's address out;
//   - when the table is full, the address unused for longest goes: a learned peer's first,
//     so that a configured peer's learning always has room;
//   - addresses unused for kMaxAge are forgotten (the Linux bridge's default ageing time).
// Owned by one data-plane thread; the Peer pointers are the PeerTable's, which calls forget()
// before a peer goes away.
class MacTable {
  public:
    static constexpr size_t kCapacity = 4096;
    static constexpr size_t kPerLearnedPeer = 64;
    static constexpr uint64_t kMaxAgeUs = 300'000'000;

    Peer* find(const MacAddress& mac) const;
    // `mac` was the source of a frame from `peer` at `now_us`.
    void learn(const MacAddress& mac, Peer& peer, uint64_t now_us);
    void forget(const Peer& peer);
    // Forgets the addresses unused since before now_us - kMaxAgeUs. Returns how many.
    size_t expire(uint64_t now_us);
    size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        MacAddress mac;
        Peer* peer;
        uint64_t last_seen_us;
    };
    // Oldest first. Two lists, so that the eviction of a learned peer's address never has to
    // walk past configured peers' ones.
    using Lru = std::list<Entry>;
    struct Slot {
        Lru* lru;
        Lru::iterator entry;
    };

    Lru& lru_for(const Peer& peer) { return peer.learned ? learned_ : configured_; }
    void erase(const MacAddress& mac);
    bool make_room_for(const Peer& peer);

    Lru learned_;
    Lru configured_;
    std::unordered_map<MacAddress, Slot, MacAddressHash> entries_;
    std::unordered_map<const Peer*, size_t> per_peer_;
};

}  // namespace tunlab
