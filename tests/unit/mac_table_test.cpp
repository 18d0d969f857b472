#include "peers/mac_table.hpp"

#include <gtest/gtest.h>

#include <deque>

namespace tunlab {
namespace {

MacAddress mac(unsigned n) {
    return MacAddress{0x02,
                      0,
                      static_cast<uint8_t>(n >> 24),
                      static_cast<uint8_t>(n >> 16),
                      static_cast<uint8_t>(n >> 8),
                      static_cast<uint8_t>(n)};
}

// Peers as the PeerTable keeps them; only `learned` matters to the MAC table.
struct Peers {
    std::deque<Peer> all;
    Peer& make(bool learned) {
        Peer& peer = all.emplace_back();
        peer.id = all.size();
        peer.learned = learned;
        return peer;
    }
};

size_t known(const MacTable& table, unsigned first, unsigned count) {
    size_t found = 0;
    for (unsigned n = first; n < first + count; ++n) {
        found += table.find(mac(n)) != nullptr ? 1 : 0;
    }
    return found;
}

TEST(MacTable, ALearnedPeerHoldsAtMostItsShare) {
    MacTable table;
    Peers peers;
    Peer& attacker = peers.make(true);
    for (unsigned n = 0; n < 5000; ++n) {
        table.learn(mac(n), attacker, 1);
    }
    EXPECT_EQ(table.size(), MacTable::kPerLearnedPeer);
    EXPECT_EQ(known(table, 0, 5000), MacTable::kPerLearnedPeer);
    // A configured peer learns as much as it needs beside it.
    Peer& site = peers.make(false);
    for (unsigned n = 10'000; n < 11'000; ++n) {
        table.learn(mac(n), site, 2);
    }
    EXPECT_EQ(known(table, 10'000, 1000), 1000u);
}

TEST(MacTable, AConfiguredPeersLearningAlwaysHasRoom) {
    MacTable table;
    Peers peers;
    // Learned peers fill the table, each within its share.
    const size_t learned_peers = MacTable::kCapacity / MacTable::kPerLearnedPeer;
    unsigned n = 0;
    for (size_t p = 0; p < learned_peers; ++p) {
        Peer& peer = peers.make(true);
        for (size_t i = 0; i < MacTable::kPerLearnedPeer; ++i, ++n) {
            table.learn(mac(n), peer, 100 + n);
        }
    }
    ASSERT_EQ(table.size(), MacTable::kCapacity);
    // One more learned peer: it takes the room of the oldest learned address.
    Peer& late = peers.make(true);
    table.learn(mac(50'000), late, 100'000);
    EXPECT_EQ(table.find(mac(50'000)), &late);
    EXPECT_EQ(table.find(mac(0)), nullptr);
    // A configured peer takes the room of the oldest learned addresses too, as many as it
    // needs, never failing.
    Peer& site = peers.make(false);
    for (unsigned m = 60'000; m < 60'000 + MacTable::kCapacity; ++m) {
        table.learn(mac(m), site, 200'000 + m);
    }
    EXPECT_EQ(known(table, 60'000, MacTable::kCapacity), MacTable::kCapacity);
    EXPECT_EQ(table.size(), MacTable::kCapacity);
    // Now full of a configured peer's addresses: a learned peer cannot push one out.
    table.learn(mac(70'000), late, 300'000);
    EXPECT_EQ(table.find(mac(70'000)), nullptr);
    EXPECT_EQ(known(table, 60'000, MacTable::kCapacity), MacTable::kCapacity);
    // Another configured peer can: the oldest configured address goes.
    Peer& other_site = peers.make(false);
    table.learn(mac(80'000), other_site, 400'000);
    EXPECT_EQ(table.find(mac(80'000)), &other_site);
    EXPECT_EQ(table.find(mac(60'000)), nullptr);
}

TEST(MacTable, ALearnedPeerCannotTakeAConfiguredPeersAddress) {
    MacTable table;
    Peers peers;
    Peer& site = peers.make(false);
    Peer& other_site = peers.make(false);
    Peer& learned = peers.make(true);
    Peer& other_learned = peers.make(true);
    table.learn(mac(1), site, 1);
    table.learn(mac(1), learned, 2);
    EXPECT_EQ(table.find(mac(1)), &site);
    // Stations move between configured peers, from learned peers to configured ones, and
    // between learned peers, as they would on a switch.
    table.learn(mac(1), other_site, 3);
    EXPECT_EQ(table.find(mac(1)), &other_site);
    table.learn(mac(2), learned, 4);
    table.learn(mac(2), other_learned, 5);
    EXPECT_EQ(table.find(mac(2)), &other_learned);
    table.learn(mac(2), site, 6);
    EXPECT_EQ(table.find(mac(2)), &site);
    EXPECT_EQ(table.size(), 2u);
}

TEST(MacTable, AMoveCountsAgainstTheNewHoldersShare) {
    MacTable table;
    Peers peers;
    Peer& full = peers.make(true);
    Peer& other = peers.make(true);
    for (unsigned n = 0; n < MacTable::kPerLearnedPeer; ++n) {
        table.learn(mac(n), full, 1);
    }
    table.learn(mac(1000), other, 2);
    table.learn(mac(1000), full, 3);  // full already holds its share
    EXPECT_EQ(table.find(mac(1000)), &other);
    // Once it gives one up (it moved away), it may take one.
    table.learn(mac(0), other, 4);
    table.learn(mac(1000), full, 5);
    EXPECT_EQ(table.find(mac(1000)), &full);
}

TEST(MacTable, AddressesAgeOutUnlessSeenAgain) {
    MacTable table;
    Peers peers;
    Peer& site = peers.make(false);
    Peer& learned = peers.make(true);
    table.learn(mac(1), site, 1'000'000);
    table.learn(mac(2), learned, 1'000'000);
    table.learn(mac(3), site, 1'000'000);
    table.learn(mac(3), site, 200'000'000);  // seen again later
    EXPECT_EQ(table.expire(1'000'000 + MacTable::kMaxAgeUs), 0u);
    EXPECT_EQ(table.expire(1'000'001 + MacTable::kMaxAgeUs), 2u);
    EXPECT_EQ(table.find(mac(1)), nullptr);
    EXPECT_EQ(table.find(mac(2)), nullptr);
    EXPECT_EQ(table.find(mac(3)), &site);
    EXPECT_EQ(table.expire(200'000'001 + MacTable::kMaxAgeUs), 1u);
    EXPECT_EQ(table.size(), 0u);
}

TEST(MacTable, ForgettingAPeerLeavesTheOthers) {
    MacTable table;
    Peers peers;
    Peer& one = peers.make(true);
    Peer& two = peers.make(true);
    Peer& site = peers.make(false);
    for (unsigned n = 0; n < 10; ++n) {
        table.learn(mac(n), n % 2 ? one : two, n);
        table.learn(mac(100 + n), site, n);
    }
    table.forget(one);
    table.forget(site);
    EXPECT_EQ(table.size(), 5u);
    for (unsigned n = 0; n < 10; ++n) {
        EXPECT_EQ(table.find(mac(n)), n % 2 ? nullptr : &two) << n;
    }
    // A forgotten peer's share is free again: the table keeps no count for it.
    for (unsigned n = 0; n < 2 * MacTable::kPerLearnedPeer; ++n) {
        table.learn(mac(1000 + n), one, 100);
    }
    EXPECT_EQ(known(table, 1000, 2 * MacTable::kPerLearnedPeer), MacTable::kPerLearnedPeer);
}

}  // namespace
}  // namespace tunlab
