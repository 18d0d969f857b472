#include "peers/mac_table.hpp"

namespace tunlab {

size_t MacAddressHash::operator()(const MacAddress& mac) const noexcept {
    uint64_t value = 0;
    for (uint8_t byte : mac) {
        value = (value << 8) | byte;
    }
    return std::hash<uint64_t>{}(value);
}

Peer* MacTable::find(const MacAddress& mac) const {
    const auto found = entries_.find(mac);
    return found == entries_.end() ? nullptr : found->second.entry->peer;
}

void MacTable::learn(const MacAddress& mac, Peer& peer, uint64_t now_us) {
    if (const auto found = entries_.find(mac); found != entries_.end()) {
        Slot& slot = found->second;
        Peer* const holder = slot.entry->peer;
        if (holder != &peer) {
            // A station that moved behind another peer, as a switch sees it; but a learned
            // peer's word does not take a configured peer's station.
            if (peer.learned && !holder->learned) {
                return;
            }
            if (peer.learned && per_peer_[&peer] >= kPerLearnedPeer) {
                return;
            }
            if (--per_peer_[holder] == 0) {
                per_peer_.erase(holder);
            }
            ++per_peer_[&peer];
            slot.entry->peer = &peer;
        }
        slot.entry->last_seen_us = now_us;
        Lru& lru = lru_for(peer);
        lru.splice(lru.end(), *slot.lru, slot.entry);
        slot.lru = &lru;
        return;
    }
    if (peer.learned && per_peer_.contains(&peer) && per_peer_[&peer] >= kPerLearnedPeer) {
        return;
    }
    if (entries_.size() >= kCapacity && !make_room_for(peer)) {
        return;
    }
    Lru& lru = lru_for(peer);
    lru.push_back(Entry{mac, &peer, now_us});
    entries_.emplace(mac, Slot{&lru, std::prev(lru.end())});
    ++per_peer_[&peer];
}

bool MacTable::make_room_for(const Peer& peer) {
    if (!learned_.empty()) {
        erase(learned_.front().mac);
        return true;
    }
    if (peer.learned || configured_.empty()) {
        return false;
    }
    erase(configured_.front().mac);
    return true;
}

void MacTable::erase(const MacAddress& mac) {
    const auto found = entries_.find(mac);
    const Slot slot = found->second;
    const Peer* const holder = slot.entry->peer;
    if (--per_peer_[holder] == 0) {
        per_peer_.erase(holder);
    }
    slot.lru->erase(slot.entry);
    entries_.erase(found);
}

void MacTable::forget(const Peer& peer) {
    if (!per_peer_.contains(&peer)) {
        return;
    }
    Lru& lru = lru_for(peer);
    for (auto entry = lru.begin(); entry != lru.end();) {
        const auto next = std::next(entry);
        if (entry->peer == &peer) {
            erase(entry->mac);
        }
        entry = next;
    }
}

size_t MacTable::expire(uint64_t now_us) {
    size_t expired = 0;
    for (Lru* lru : {&learned_, &configured_}) {
        while (!lru->empty() && now_us > lru->front().last_seen_us + kMaxAgeUs) {
            erase(lru->front().mac);
            ++expired;
        }
    }
    return expired;
}

}  // namespace tunlab
