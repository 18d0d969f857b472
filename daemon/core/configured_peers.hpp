#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "net/endpoint.hpp"
#include "peers/peer.hpp"

namespace tunlab {

// A tunnel's configured peers as the configuration has them (learned peers are not here),
// indexed by endpoint and allowed prefix: with 10,000 peers, checking a new one for conflicts
// must not compare it with every other.
class ConfiguredPeers {
  public:
    using Map = std::map<PeerId, PeerConfig>;

    // Throws RequestError (InvalidArgument, AlreadyExists) if `peer` may not be peer `id`:
    // an allowed prefix listed twice, or an endpoint, prefix or public key held by another
    // configured peer.
    void check(PeerId id, const PeerConfig& peer) const;

    // Adds peer `id`, or replaces it.
    void set(PeerId id, const PeerConfig& peer);
    void erase(PeerId id);
    const PeerConfig* find(PeerId id) const;
    // The configured peer with this public key, if any.
    std::optional<PeerId> find_by_public_key(const crypto::PublicKey& key) const;

    const Map& peers() const { return peers_; }
    // The peers set or erased since forget_changes(), possibly more than once each, and possibly
    // some that were changed back since: what a save must look at, instead of every peer.
    std::span<const PeerId> changes() const { return changed_; }
    void forget_changes() { changed_.clear(); }
    size_t size() const { return peers_.size(); }
    // Whether any peer has an IPv6 endpoint: the tunnel's default MTU depends on it.
    bool any_ipv6_endpoint() const { return ipv6_endpoints_ > 0; }

  private:
    void unindex(PeerId id, const PeerConfig& peer);

    Map peers_;
    // Multi-maps: a configuration file may give two peers the same endpoint; the bus may not.
    // Keyed by the endpoint's hash, not the endpoint (a 128-byte sockaddr_storage): 10,000
    // peers would spend almost 2 MB on copies of what peers_ holds already.
    std::unordered_multimap<size_t, PeerId> by_endpoint_;
    std::multimap<Prefix, PeerId> by_prefix_;
    std::multimap<crypto::PublicKey, PeerId> by_public_key_;
    size_t ipv6_endpoints_ = 0;
    std::vector<PeerId> changed_;
};

}  // namespace tunlab
