#include "core/configured_peers.hpp"

#include <algorithm>
#include <string>

#include "core/error.hpp"

namespace tunlab {

namespace {

template <typename Index, typename Key>
void erase_entry(Index& index, const Key& key, PeerId id) {
    auto [first, last] = index.equal_range(key);
    for (auto position = first; position != last; ++position) {
        if (position->second == id) {
            index.erase(position);
            return;
        }
    }
}

// The first peer other than `id` in index entries [first, last) that `holds` the key, or 0.
template <typename Iterator, typename Holds>
PeerId other_than(Iterator first, Iterator last, PeerId id, Holds&& holds) {
    for (; first != last; ++first) {
        if (first->second != id && holds(first->second)) {
            return first->second;
        }
    }
    return 0;
}

size_t endpoint_key(const Endpoint& endpoint) {
    return EndpointHash{}(endpoint);
}

}  // namespace

void ConfiguredPeers::check(PeerId id, const PeerConfig& peer) const {
    for (size_t i = 0; i < peer.allowed_ips.size(); ++i) {
        const auto first =
            std::find(peer.allowed_ips.begin(), peer.allowed_ips.end(), peer.allowed_ips[i]);
        if (first != peer.allowed_ips.begin() + static_cast<std::ptrdiff_t>(i)) {
            throw RequestError(ErrorKind::InvalidArgument,
                               "allowed_ips[" + std::to_string(i) +
                                   "]: " + peer.allowed_ips[i].to_string() + " is listed twice");
        }
    }
    // Two configured peers may not claim the same thing; a learned peer yields (see PeerTable).
    if (peer.endpoint) {
        const auto [first, last] = by_endpoint_.equal_range(endpoint_key(*peer.endpoint));
        const PeerId other = other_than(first, last, id, [&](PeerId candidate) {
            return peers_.at(candidate).endpoint == peer.endpoint;  // not just the same hash
        });
        if (other != 0) {
            throw RequestError(ErrorKind::AlreadyExists, "endpoint: " + peer.endpoint->to_string() +
                                                             " already belongs to peer " +
                                                             std::to_string(other));
        }
    }
    for (const Prefix& prefix : peer.allowed_ips) {
        const auto [first, last] = by_prefix_.equal_range(prefix);
        if (const PeerId other = other_than(first, last, id, [](PeerId) { return true; })) {
            throw RequestError(ErrorKind::AlreadyExists, "allowed_ips: " + prefix.to_string() +
                                                             " already belongs to peer " +
                                                             std::to_string(other));
        }
    }
    if (peer.public_key) {
        const auto [first, last] = by_public_key_.equal_range(*peer.public_key);
        if (const PeerId other = other_than(first, last, id, [](PeerId) { return true; })) {
            throw RequestError(ErrorKind::AlreadyExists,
                               "public_key: already the key of peer " + std::to_string(other));
        }
    }
}

void ConfiguredPeers::set(PeerId id, const PeerConfig& peer) {
    changed_.push_back(id);
    auto [position, inserted] = peers_.try_emplace(id, peer);
    if (!inserted) {
        unindex(id, position->second);
        position->second = peer;
    }
    if (peer.endpoint) {
        by_endpoint_.emplace(endpoint_key(*peer.endpoint), id);
        ipv6_endpoints_ += peer.endpoint->is_ipv6() ? 1 : 0;
    }
    for (const Prefix& prefix : peer.allowed_ips) {
        by_prefix_.emplace(prefix, id);
    }
    if (peer.public_key) {
        by_public_key_.emplace(*peer.public_key, id);
    }
}

void ConfiguredPeers::erase(PeerId id) {
    const auto position = peers_.find(id);
    if (position == peers_.end()) {
        return;
    }
    changed_.push_back(id);
    unindex(id, position->second);
    peers_.erase(position);
}

const PeerConfig* ConfiguredPeers::find(PeerId id) const {
    const auto found = peers_.find(id);
    return found == peers_.end() ? nullptr : &found->second;
}

std::optional<PeerId> ConfiguredPeers::find_by_public_key(const crypto::PublicKey& key) const {
    const auto found = by_public_key_.find(key);
    return found == by_public_key_.end() ? std::nullopt : std::optional<PeerId>(found->second);
}

void ConfiguredPeers::unindex(PeerId id, const PeerConfig& peer) {
    if (peer.endpoint) {
        erase_entry(by_endpoint_, endpoint_key(*peer.endpoint), id);
        ipv6_endpoints_ -= peer.endpoint->is_ipv6() ? 1 : 0;
    }
    for (const Prefix& prefix : peer.allowed_ips) {
        erase_entry(by_prefix_, prefix, id);
    }
    if (peer.public_key) {
        erase_entry(by_public_key_, *peer.public_key, id);
    }
}

}  // namespace tunlab
