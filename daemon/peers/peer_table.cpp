#include "peers/peer_table.hpp"

#include <algorithm>

namespace tunlab {

PeerTable::PeerTable(LearningPolicy policy, int socket_family)
    : policy_(policy), socket_family_(socket_family) {}

void PeerTable::upsert(PeerId id, const PeerConfig& config) {
    auto position = peers_.find(id);
    if (position == peers_.end()) {
        position = peers_.emplace(id, Slot{std::make_shared<Peer>(), nullptr}).first;
        position->second.peer->id = id;
    } else {
        unindex(*position->second.peer);
    }
    Peer& peer = *position->second.peer;
    outdate(peer);
    peer.config = config;
    if (config.endpoint) {
        peer.config.endpoint = config.endpoint->for_socket_family(socket_family_);
    }
    // Take over the prefixes this peer claims from whoever held them.
    for (const Prefix& prefix : config.allowed_ips) {
        if (Peer* const* holder = by_prefix_.find_exact(prefix); holder && *holder != &peer) {
            Peer& previous = **holder;
            unindex(previous);
            outdate(previous);
            std::erase(previous.config.allowed_ips, prefix);
            if (previous.learned && previous.config.allowed_ips.empty()) {
                erase(peers_.find(previous.id));
            } else {
                index(previous);
            }
        }
    }
    index(peer);
    if (observer_ != nullptr) {
        observer_->peer_configured(peer);
    }
}

bool PeerTable::remove(PeerId id) {
    const auto position = peers_.find(id);
    if (position == peers_.end()) {
        return false;
    }
    erase(position);
    return true;
}

void PeerTable::erase(Slots::iterator position) {
    if (observer_ != nullptr) {
        observer_->peer_removed(*position->second.peer);
    }
    unindex(*position->second.peer);
    mac_table_.forget(*position->second.peer);
    if (position->second.peer->learned) {
        --learned_count_;
    }
    const PeerId id = position->first;
    peers_.erase(position);
    mark(id);
}

void PeerTable::outdate(const Peer& peer) {
    if (const auto position = peers_.find(peer.id); position != peers_.end()) {
        position->second.view.reset();
    }
    mark(peer.id);
}

void PeerTable::mark(PeerId id) {
    views_.reset();
    changed_ids_.push_back(id);
}

void PeerTable::index(Peer& peer) {
    for (const Prefix& prefix : peer.config.allowed_ips) {
        by_prefix_.insert(prefix, &peer);
    }
    if (peer.config.endpoint) {
        // An endpoint belongs to one peer: whoever had it before has lost it (e.g. a NAT
        // reused the port).
        auto [slot, inserted] = by_endpoint_.emplace(*peer.config.endpoint, &peer);
        if (!inserted && slot->second != &peer) {
            slot->second->config.endpoint.reset();
            outdate(*slot->second);
            slot->second = &peer;
        }
    }
}

void PeerTable::unindex(Peer& peer) {
    for (const Prefix& prefix : peer.config.allowed_ips) {
        if (Peer* const* holder = by_prefix_.find_exact(prefix); holder && *holder == &peer) {
            by_prefix_.erase(prefix);
        }
    }
    if (peer.config.endpoint) {
        const auto slot = by_endpoint_.find(*peer.config.endpoint);
        if (slot != by_endpoint_.end() && slot->second == &peer) {
            by_endpoint_.erase(slot);
        }
    }
}

Peer* PeerTable::find(PeerId id) const {
    const auto found = peers_.find(id);
    return found == peers_.end() ? nullptr : found->second.peer.get();
}

Peer* PeerTable::route(const IpAddress& destination) const {
    Peer* const* found = by_prefix_.longest_match(destination);
    return found ? *found : nullptr;
}

Peer* PeerTable::by_endpoint(const Endpoint& endpoint) const {
    const auto found = by_endpoint_.find(endpoint);
    return found == by_endpoint_.end() ? nullptr : found->second;
}

Peer* PeerTable::by_mac(const MacAddress& mac) const {
    return mac_table_.find(mac);
}

bool PeerTable::allows_source(const Peer& peer, const IpAddress& source) {
    return std::any_of(peer.config.allowed_ips.begin(), peer.config.allowed_ips.end(),
                       [&source](const Prefix& prefix) { return prefix.contains(source); });
}

PeerTable::LearnResult PeerTable::learn(const Endpoint& endpoint,
                                        const std::optional<IpAddress>& source, Peer** learned) {
    if (!policy_.enabled) {
        return LearnResult::Disabled;
    }
    if (learned_count_ >= policy_.max_peers) {
        return LearnResult::Full;
    }
    const PeerId id = allocate_id();
    auto peer = std::make_shared<Peer>();
    peer->id = id;
    peer->learned = true;
    peer->config.endpoint = endpoint;
    if (source) {
        peer->config.allowed_ips.push_back(Prefix::host(*source));
    }
    *learned = peer.get();
    peers_.emplace(id, Slot{std::move(peer), nullptr});
    mark(id);
    ++learned_count_;
    index(**learned);
    return LearnResult::Learned;
}

bool PeerTable::learn_address(Peer& peer, const IpAddress& source) {
    if (!peer.learned || route(source) != nullptr ||
        peer.config.allowed_ips.size() >= kMaxLearnedAddresses) {
        return false;
    }
    const Prefix host = Prefix::host(source);
    peer.config.allowed_ips.push_back(host);
    by_prefix_.insert(host, &peer);
    outdate(peer);
    return true;
}

void PeerTable::move_endpoint(Peer& peer, const Endpoint& endpoint) {
    unindex(peer);
    peer.config.endpoint = endpoint;
    outdate(peer);
    index(peer);
}

size_t PeerTable::expire_idle(uint64_t now_us) {
    mac_table_.expire(now_us);
    size_t expired = 0;
    for (auto position = peers_.begin(); position != peers_.end();) {
        const Peer& peer = *position->second.peer;
        const uint64_t last = peer.counters.last_receive_us.read();
        if (peer.learned && now_us > last && now_us - last > policy_.idle_timeout_us) {
            auto next = std::next(position);
            erase(position);
            position = next;
            ++expired;
        } else {
            ++position;
        }
    }
    return expired;
}

const std::shared_ptr<const PeerView>& PeerTable::view_of(PeerId id, Slot& slot) {
    if (!slot.view) {
        const Peer& peer = *slot.peer;
        slot.view = std::make_shared<const PeerView>(
            PeerView{id, peer.learned, peer.config, peer.latest_handshake_us.read(), slot.peer});
    }
    return slot.view;
}

std::shared_ptr<const PeerViews> PeerTable::make_views() {
    if (views_) {
        return views_;
    }
    std::sort(changed_ids_.begin(), changed_ids_.end());
    changed_ids_.erase(std::unique(changed_ids_.begin(), changed_ids_.end()), changed_ids_.end());
    auto views = std::make_shared<PeerViews>();
    views->reserve(peers_.size());
    if (last_views_ && changed_ids_.size() * 8 < peers_.size()) {
        // A few peers changed (a change over the bus, a handshake): patch the last snapshot,
        // a copy of contiguous pointers, instead of walking the whole map (most of the cost of
        // a change at 10,000 peers). Both are in id order.
        auto changed = changed_ids_.begin();
        for (const auto& view : *last_views_) {
            for (; changed != changed_ids_.end() && *changed < view->id; ++changed) {
                if (const auto slot = peers_.find(*changed); slot != peers_.end()) {
                    views->push_back(view_of(*changed, slot->second));  // new
                }
            }
            if (changed != changed_ids_.end() && *changed == view->id) {
                if (const auto slot = peers_.find(*changed++); slot != peers_.end()) {
                    views->push_back(view_of(view->id, slot->second));  // changed
                }
                continue;  // else removed
            }
            views->push_back(view);
        }
        for (; changed != changed_ids_.end(); ++changed) {
            if (const auto slot = peers_.find(*changed); slot != peers_.end()) {
                views->push_back(view_of(*changed, slot->second));
            }
        }
    } else {
        for (auto& [id, slot] : peers_) {
            views->push_back(view_of(id, slot));
        }
    }
    changed_ids_.clear();
    views_ = std::move(views);
    last_views_ = views_;
    return views_;
}

}  // namespace tunlab
