#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>

#include "net/endpoint.hpp"
#include "net/prefix_table.hpp"
#include "peers/mac_table.hpp"
#include "peers/peer.hpp"

namespace tunlab {

struct LearningPolicy {
    bool enabled = true;
    size_t max_peers = 1024;
    uint64_t idle_timeout_us = 180'000'000;
};

// Told of every peer the table is configured with, and every peer it loses: a protocol keeps
// its own state and indexes beside the table's (WireGuard: a peer by its public key).
class PeerObserver {
  public:
    virtual ~PeerObserver() = default;
    // `peer` was added, or its configuration replaced (upsert()).
    virtual void peer_configured(Peer& peer) = 0;
    // `peer` is about to go.
    virtual void peer_removed(Peer& peer) = 0;
};

// The peers of one tunnel and the three ways the data plane finds them: by inner address
// (longest prefix over allowed IPs), by outer endpoint, and (TAP) by Ethernet address.
// Owned and used by one data-plane thread only.
class PeerTable {
  public:
    enum class LearnResult { Learned, Disabled, Full };

    PeerTable(LearningPolicy policy, int socket_family);

    // Ids are shared by configured and learned peers and never reused, so an id (and the bus
    // object path made from it) names one peer for the life of the tunnel. Any thread.
    PeerId allocate_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

    // Adds or replaces a configured peer. Allowed IPs it claims are taken from any other peer
    // that held them (a learned peer left with none is forgotten).
    void upsert(PeerId id, const PeerConfig& config);
    bool remove(PeerId id);

    Peer* find(PeerId id) const;
    Peer* route(const IpAddress& destination) const;
    Peer* by_endpoint(const Endpoint& endpoint) const;
    Peer* by_mac(const MacAddress& mac) const;
    static bool allows_source(const Peer& peer, const IpAddress& source);

    // A datagram from `endpoint` carrying `source` (TUN mode) belongs to no known endpoint.
    // Learns a peer; `source` nullopt (TAP mode) learns a peer without allowed IPs.
    LearnResult learn(const Endpoint& endpoint, const std::optional<IpAddress>& source,
                      Peer** learned);
    // A learned peer sending from another inner address (a dual-stack client: its IPv6 after
    // its IPv4) learns that one too, unless another peer holds it or the peer has
    // kMaxLearnedAddresses already. False: not learned.
    bool learn_address(Peer& peer, const IpAddress& source);
    static constexpr size_t kMaxLearnedAddresses = 8;
    void move_endpoint(Peer& peer, const Endpoint& endpoint);
    // `mac` was the source address of a frame from `peer` (TAP mode; see MacTable).
    void remember_mac(const MacAddress& mac, Peer& peer, uint64_t now_us) {
        mac_table_.learn(mac, peer, now_us);
    }

    // Forgets learned peers idle for longer than the policy allows, and Ethernet addresses
    // unused for MacTable::kMaxAgeUs. Returns how many peers.
    size_t expire_idle(uint64_t now_us);

    template <typename Function>
    void for_each(Function&& function) const {
        for (const auto& [id, slot] : peers_) {
            function(*slot.peer);
        }
    }

    size_t learned_count() const { return learned_count_; }
    // Whether anything the views show changed since the last make_views().
    bool changed() const { return !views_; }
    // Something the views show about `peer` changed outside the table (a handshake).
    void refresh(const Peer& peer) { outdate(peer); }
    void set_observer(PeerObserver* observer) { observer_ = observer; }
    // The peers as they are now, in id order. Only views of peers changed since the last call
    // are built anew; with no change at all, the same snapshot comes back.
    std::shared_ptr<const PeerViews> make_views();

  private:
    struct Slot {
        std::shared_ptr<Peer> peer;
        std::shared_ptr<const PeerView> view;  // null: the peer changed since it was made
    };
    using Slots = std::map<PeerId, Slot>;

    void index(Peer& peer);
    void unindex(Peer& peer);
    void erase(Slots::iterator position);
    // Every change to a peer's id, config or learned flag goes through here (or erase), or
    // the control plane keeps showing the old state.
    void outdate(const Peer& peer);
    // Peer `id` was added, changed or removed: the next make_views() rebuilds its view.
    void mark(PeerId id);
    const std::shared_ptr<const PeerView>& view_of(PeerId id, Slot& slot);

    LearningPolicy policy_;
    int socket_family_;
    std::atomic<PeerId> next_id_{1};
    size_t learned_count_ = 0;
    Slots peers_;
    std::shared_ptr<const PeerViews> views_;  // null: the peer set or a peer changed
    // The last views made, and the peers marked since: what make_views() patches.
    std::shared_ptr<const PeerViews> last_views_;
    std::vector<PeerId> changed_ids_;
    PrefixTable<Peer*> by_prefix_;
    std::unordered_map<Endpoint, Peer*, EndpointHash> by_endpoint_;
    MacTable mac_table_;
    PeerObserver* observer_ = nullptr;
};

}  // namespace tunlab
