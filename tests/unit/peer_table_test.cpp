#include "peers/peer_table.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "parse_helpers.hpp"

namespace tunlab {
namespace {

using test_support::endpoint;
using test_support::ip;
using test_support::prefix;

PeerConfig peer_config(std::optional<std::string_view> at,
                       std::initializer_list<std::string_view> allowed) {
    PeerConfig config;
    if (at) {
        config.endpoint = endpoint(*at);
    }
    for (std::string_view text : allowed) {
        const auto prefix = Prefix::parse(text);
        EXPECT_TRUE(prefix.has_value()) << text;
        if (prefix) {
            config.allowed_ips.push_back(*prefix);
        }
    }
    return config;
}

LearningPolicy policy(bool enabled = true, size_t max_peers = 1024,
                      uint64_t idle_timeout_us = 180'000'000) {
    return LearningPolicy{enabled, max_peers, idle_timeout_us};
}

// Adds a configured peer under a fresh id, as the control plane does.
PeerId add(PeerTable& table, const PeerConfig& config) {
    const PeerId id = table.allocate_id();
    table.upsert(id, config);
    return id;
}

// The id of the peer `address` routes to, or 0 for none.
PeerId route_id(const PeerTable& table, std::string_view address) {
    const Peer* peer = table.route(ip(address));
    return peer == nullptr ? 0 : peer->id;
}

PeerId endpoint_id(const PeerTable& table, std::string_view at) {
    const Peer* peer = table.by_endpoint(endpoint(at));
    return peer == nullptr ? 0 : peer->id;
}

size_t peer_count(const PeerTable& table) {
    size_t count = 0;
    table.for_each([&count](const Peer&) { ++count; });
    return count;
}

Peer* learn(PeerTable& table, std::string_view at, std::optional<std::string_view> source) {
    Peer* learned = nullptr;
    std::optional<IpAddress> address;
    if (source) {
        address = ip(*source);
    }
    EXPECT_EQ(table.learn(endpoint(at), address, &learned), PeerTable::LearnResult::Learned);
    EXPECT_NE(learned, nullptr);
    return learned;
}

TEST(PeerTable, RoutesByLongestPrefix) {
    PeerTable table(policy(), AF_INET);
    const PeerId p1 = add(table, peer_config("10.9.0.11:9090", {"192.168.0.0/16", "fd00::/16"}));
    const PeerId p2 = add(table, peer_config("10.9.0.12:9090", {"192.168.60.0/24"}));
    const PeerId p3 = add(table, peer_config(std::nullopt, {"192.168.60.5/32", "0.0.0.0/0"}));
    EXPECT_EQ(peer_count(table), 3u);
    EXPECT_EQ(table.learned_count(), 0u);

    EXPECT_EQ(route_id(table, "192.168.60.5"), p3);
    EXPECT_EQ(route_id(table, "192.168.60.6"), p2);
    EXPECT_EQ(route_id(table, "192.168.61.6"), p1);
    EXPECT_EQ(route_id(table, "8.8.8.8"), p3);
    EXPECT_EQ(route_id(table, "fd00:1::1"), p1);
    EXPECT_EQ(route_id(table, "fd01::1"), 0u);
}

TEST(PeerTable, UpsertReplacesAConfiguredPeer) {
    PeerTable table(policy(), AF_INET);
    const PeerId p1 = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    Peer* before = table.route(ip("192.168.60.5"));
    ASSERT_NE(before, nullptr);
    before->counters.rx_packets.add(3);

    table.upsert(p1, peer_config("10.9.0.11:9191", {"192.168.50.0/24"}));
    EXPECT_EQ(peer_count(table), 1u);
    EXPECT_EQ(route_id(table, "192.168.60.5"), 0u);  // the old prefix is gone
    EXPECT_EQ(route_id(table, "192.168.50.5"), p1);
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9090"), 0u);  // and the old endpoint
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9191"), p1);
    // The same peer object: its counters survive a change of configuration.
    Peer* after = table.route(ip("192.168.50.5"));
    EXPECT_EQ(after, before);
    EXPECT_EQ(after->counters.rx_packets.read(), 3u);
    EXPECT_FALSE(after->learned);
    EXPECT_EQ(after->config.keepalive_seconds, 0);

    PeerConfig with_keepalive = peer_config("10.9.0.11:9191", {"192.168.50.0/24"});
    with_keepalive.keepalive_seconds = 25;
    table.upsert(p1, with_keepalive);
    EXPECT_EQ(table.route(ip("192.168.50.5"))->config.keepalive_seconds, 25);
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9191"), p1);
}

TEST(PeerTable, FindsPeersByEndpointInEitherForm) {
    // A dual-stack socket: IPv4 endpoints are kept mapped.
    PeerTable table(policy(), AF_INET6);
    const PeerId p1 = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    const PeerId p2 = add(table, peer_config("[fd00::12]:9090", {"192.168.50.0/24"}));

    const Peer* one = table.by_endpoint(endpoint("10.9.0.11:9090"));
    ASSERT_NE(one, nullptr);
    EXPECT_EQ(one->id, p1);
    ASSERT_TRUE(one->config.endpoint);
    EXPECT_EQ(one->config.endpoint->sockaddr_ptr()->sa_family, AF_INET6);
    EXPECT_EQ(one->config.endpoint->to_string(), "10.9.0.11:9090");
    EXPECT_EQ(endpoint_id(table, "[::ffff:10.9.0.11]:9090"), p1);  // as recvfrom() reports it
    EXPECT_EQ(endpoint_id(table, "[fd00::12]:9090"), p2);

    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9091"), 0u);  // other port
    EXPECT_EQ(endpoint_id(table, "10.9.0.12:9090"), 0u);  // other address
    EXPECT_EQ(endpoint_id(table, "[fd00::12]:9091"), 0u);
}

TEST(PeerTable, Ipv4SocketCannotReachAnIpv6Endpoint) {
    PeerTable table(policy(), AF_INET);
    add(table, peer_config("[fd00::12]:9090", {"192.168.50.0/24"}));
    const Peer* peer = table.route(ip("192.168.50.1"));
    ASSERT_NE(peer, nullptr);
    EXPECT_FALSE(peer->config.endpoint);
    EXPECT_EQ(endpoint_id(table, "[fd00::12]:9090"), 0u);

    // A v4 endpoint stays plain IPv4 on an IPv4 socket.
    add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    const Peer* v4 = table.by_endpoint(endpoint("10.9.0.11:9090"));
    ASSERT_NE(v4, nullptr);
    EXPECT_EQ(v4->config.endpoint->sockaddr_ptr()->sa_family, AF_INET);
}

TEST(PeerTable, AllowsSource) {
    PeerTable table(policy(), AF_INET);
    add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24", "fd00:60::/64"}));
    add(table, peer_config("10.9.0.12:9090", {}));
    const Peer& one = *table.by_endpoint(endpoint("10.9.0.11:9090"));
    EXPECT_TRUE(PeerTable::allows_source(one, ip("192.168.60.0")));
    EXPECT_TRUE(PeerTable::allows_source(one, ip("192.168.60.255")));
    EXPECT_TRUE(PeerTable::allows_source(one, ip("fd00:60::1")));
    EXPECT_FALSE(PeerTable::allows_source(one, ip("192.168.61.1")));
    EXPECT_FALSE(PeerTable::allows_source(one, ip("fd00:61::1")));
    EXPECT_FALSE(PeerTable::allows_source(one, ip("::ffff:192.168.60.1")));
    const Peer& two = *table.by_endpoint(endpoint("10.9.0.12:9090"));
    EXPECT_FALSE(PeerTable::allows_source(two, ip("192.168.60.1")));
    EXPECT_FALSE(PeerTable::allows_source(two, ip("0.0.0.0")));
}

TEST(PeerTable, LearnsAPeer) {
    PeerTable table(policy(), AF_INET);
    const PeerId p1 = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));

    Peer* learned = nullptr;
    ASSERT_EQ(table.learn(endpoint("10.9.0.5:40000"), ip("192.168.53.99"), &learned),
              PeerTable::LearnResult::Learned);
    ASSERT_NE(learned, nullptr);
    EXPECT_TRUE(learned->learned);
    EXPECT_NE(learned->id, p1);  // ids are shared by configured and learned peers
    EXPECT_EQ(table.find(learned->id), learned);
    ASSERT_TRUE(learned->config.endpoint);
    EXPECT_EQ(*learned->config.endpoint, endpoint("10.9.0.5:40000"));
    ASSERT_EQ(learned->config.allowed_ips.size(), 1u);
    EXPECT_EQ(learned->config.allowed_ips[0].to_string(), "192.168.53.99/32");
    EXPECT_EQ(table.learned_count(), 1u);
    EXPECT_EQ(peer_count(table), 2u);

    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.5:40000")), learned);
    EXPECT_EQ(table.route(ip("192.168.53.99")), learned);
    EXPECT_EQ(table.route(ip("192.168.53.98")), nullptr);  // only its own address
    EXPECT_TRUE(PeerTable::allows_source(*learned, ip("192.168.53.99")));
    EXPECT_FALSE(PeerTable::allows_source(*learned, ip("192.168.53.98")));
    EXPECT_EQ(route_id(table, "192.168.60.5"), p1);

    // Each learned peer gets its own id.
    Peer* second = learn(table, "10.9.0.6:40000", "192.168.53.98");
    ASSERT_NE(second, nullptr);
    EXPECT_NE(second->id, learned->id);
    EXPECT_EQ(table.learned_count(), 2u);
}

TEST(PeerTable, ALearnedPeerLearnsItsOtherAddressesUpToACap) {
    PeerTable table(policy(), AF_INET6);
    const PeerId configured = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    Peer* client = learn(table, "10.9.0.5:40000", "192.168.53.99");
    ASSERT_NE(client, nullptr);

    // A dual-stack client: its IPv6 address after its IPv4 one.
    EXPECT_TRUE(table.learn_address(*client, ip("fd00:53::99")));
    EXPECT_EQ(table.route(ip("fd00:53::99")), client);
    EXPECT_TRUE(PeerTable::allows_source(*client, ip("fd00:53::99")));
    // Not an address another peer holds, and never for a configured peer.
    EXPECT_FALSE(table.learn_address(*client, ip("192.168.60.7")));
    EXPECT_EQ(route_id(table, "192.168.60.7"), configured);
    EXPECT_FALSE(table.learn_address(*table.find(configured), ip("192.168.53.50")));
    // At most kMaxLearnedAddresses.
    for (int i = 1; client->config.allowed_ips.size() < PeerTable::kMaxLearnedAddresses; ++i) {
        ASSERT_TRUE(table.learn_address(*client, ip("10.77.0." + std::to_string(i))));
    }
    EXPECT_FALSE(table.learn_address(*client, ip("10.77.1.1")));
    EXPECT_EQ(table.route(ip("10.77.1.1")), nullptr);
}

TEST(PeerTable, LearnsAPeerWithoutAddressInTapMode) {
    PeerTable table(policy(), AF_INET);
    Peer* learned = learn(table, "10.9.0.5:40000", std::nullopt);
    ASSERT_NE(learned, nullptr);
    EXPECT_TRUE(learned->config.allowed_ips.empty());
    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.5:40000")), learned);
    EXPECT_EQ(table.route(ip("0.0.0.0")), nullptr);
    EXPECT_EQ(table.learned_count(), 1u);
}

TEST(PeerTable, LearningDisabled) {
    PeerTable table(policy(false), AF_INET);
    Peer* learned = nullptr;
    EXPECT_EQ(table.learn(endpoint("10.9.0.5:40000"), ip("192.168.53.99"), &learned),
              PeerTable::LearnResult::Disabled);
    EXPECT_EQ(learned, nullptr);
    EXPECT_EQ(table.learned_count(), 0u);
    EXPECT_EQ(peer_count(table), 0u);
    EXPECT_EQ(endpoint_id(table, "10.9.0.5:40000"), 0u);
    EXPECT_EQ(route_id(table, "192.168.53.99"), 0u);
}

TEST(PeerTable, LearningStopsAtTheCap) {
    PeerTable table(policy(true, 2), AF_INET);
    // Configured peers do not count.
    add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    add(table, peer_config("10.9.0.12:9090", {"192.168.50.0/24"}));
    Peer* first = learn(table, "10.9.0.5:40000", "192.168.53.5");
    learn(table, "10.9.0.6:40000", "192.168.53.6");
    EXPECT_EQ(table.learned_count(), 2u);

    Peer* learned = nullptr;
    EXPECT_EQ(table.learn(endpoint("10.9.0.7:40000"), ip("192.168.53.7"), &learned),
              PeerTable::LearnResult::Full);
    EXPECT_EQ(learned, nullptr);
    EXPECT_EQ(table.learned_count(), 2u);
    EXPECT_EQ(peer_count(table), 4u);
    EXPECT_EQ(endpoint_id(table, "10.9.0.7:40000"), 0u);
    EXPECT_EQ(route_id(table, "192.168.53.7"), 0u);

    // Room again once one is gone.
    ASSERT_TRUE(table.remove(first->id));
    EXPECT_EQ(table.learned_count(), 1u);
    EXPECT_EQ(table.learn(endpoint("10.9.0.7:40000"), ip("192.168.53.7"), &learned),
              PeerTable::LearnResult::Learned);
    EXPECT_EQ(table.learned_count(), 2u);

    PeerTable none(policy(true, 0), AF_INET);
    EXPECT_EQ(none.learn(endpoint("10.9.0.7:40000"), ip("192.168.53.7"), &learned),
              PeerTable::LearnResult::Full);
}

TEST(PeerTable, MoveEndpointReindexes) {
    PeerTable table(policy(), AF_INET);
    add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    Peer* configured = table.by_endpoint(endpoint("10.9.0.11:9090"));
    ASSERT_NE(configured, nullptr);

    table.move_endpoint(*configured, endpoint("10.9.0.99:5555"));
    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.11:9090")), nullptr);
    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.99:5555")), configured);
    EXPECT_EQ(*configured->config.endpoint, endpoint("10.9.0.99:5555"));
    EXPECT_EQ(table.route(ip("192.168.60.5")), configured);  // routing unchanged
    EXPECT_EQ(peer_count(table), 1u);

    Peer* learned = learn(table, "10.9.0.5:40000", "192.168.53.99");
    table.move_endpoint(*learned, endpoint("10.9.0.5:40001"));
    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.5:40000")), nullptr);
    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.5:40001")), learned);
    EXPECT_EQ(table.route(ip("192.168.53.99")), learned);
    EXPECT_EQ(table.learned_count(), 1u);

    // A later removal leaves nothing behind under either endpoint.
    ASSERT_TRUE(table.remove(learned->id));
    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.5:40001")), nullptr);
    EXPECT_EQ(table.route(ip("192.168.53.99")), nullptr);
}

TEST(PeerTable, ConfiguredPeerTakesALearnedPeersAddress) {
    PeerTable table(policy(), AF_INET);
    Peer* learned = learn(table, "10.9.0.5:40000", "192.168.53.99");
    const PeerId learned_id = learned->id;
    ASSERT_EQ(table.learned_count(), 1u);

    const PeerId p7 =
        add(table, peer_config("10.9.0.11:9090", {"192.168.53.99/32", "192.168.60.0/24"}));
    // The learned peer had nothing else: it is forgotten.
    EXPECT_EQ(table.learned_count(), 0u);
    EXPECT_EQ(peer_count(table), 1u);
    EXPECT_EQ(table.by_endpoint(endpoint("10.9.0.5:40000")), nullptr);
    EXPECT_EQ(route_id(table, "192.168.53.99"), p7);
    EXPECT_FALSE(table.remove(learned_id));
    const auto views = table.make_views();
    ASSERT_EQ(views->size(), 1u);
    EXPECT_EQ(views->at(0)->id, p7);
}

TEST(PeerTable, OnlyTheExactPrefixIsTakenFromALearnedPeer) {
    PeerTable table(policy(), AF_INET);
    Peer* learned = learn(table, "10.9.0.5:40000", "192.168.53.99");
    // A covering prefix is not the learned /32: both stay, and the longest match decides.
    const PeerId p7 = add(table, peer_config("10.9.0.11:9090", {"192.168.53.0/24"}));
    EXPECT_EQ(table.learned_count(), 1u);
    EXPECT_EQ(table.route(ip("192.168.53.99")), learned);
    EXPECT_EQ(route_id(table, "192.168.53.98"), p7);
}

TEST(PeerTable, ConfiguredPeerTakesAnotherConfiguredPeersPrefix) {
    PeerTable table(policy(), AF_INET);
    const PeerId p1 =
        add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24", "192.168.61.0/24"}));
    const PeerId p2 = add(table, peer_config("10.9.0.12:9090", {"192.168.61.0/24"}));
    EXPECT_EQ(route_id(table, "192.168.61.1"), p2);
    EXPECT_EQ(route_id(table, "192.168.60.1"), p1);
    const Peer* one = table.by_endpoint(endpoint("10.9.0.11:9090"));
    ASSERT_NE(one, nullptr);
    ASSERT_EQ(one->config.allowed_ips.size(), 1u);  // it gave the /24 up
    EXPECT_EQ(one->config.allowed_ips[0].to_string(), "192.168.60.0/24");
    EXPECT_FALSE(PeerTable::allows_source(*one, ip("192.168.61.1")));

    // A configured peer left with nothing stays.
    const PeerId p3 = add(table, peer_config("10.9.0.13:9090", {"192.168.60.0/24"}));
    EXPECT_EQ(peer_count(table), 3u);
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9090"), p1);
    EXPECT_EQ(route_id(table, "192.168.60.1"), p3);
    EXPECT_TRUE(table.by_endpoint(endpoint("10.9.0.11:9090"))->config.allowed_ips.empty());

    // Removing the new holder does not hand the prefix back.
    ASSERT_TRUE(table.remove(p3));
    EXPECT_EQ(route_id(table, "192.168.60.1"), 0u);
    EXPECT_EQ(route_id(table, "192.168.61.1"), p2);
}

TEST(PeerTable, ExpiresOnlyIdleLearnedPeers) {
    constexpr uint64_t kTimeout = 1'000'000;
    PeerTable table(policy(true, 1024, kTimeout), AF_INET);
    const PeerId p1 =
        add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));  // never heard from
    Peer* idle = learn(table, "10.9.0.5:40000", "192.168.53.5");
    Peer* busy = learn(table, "10.9.0.6:40000", "192.168.53.6");
    Peer* edge = learn(table, "10.9.0.7:40000", "192.168.53.7");
    Peer* future = learn(table, "10.9.0.8:40000", "192.168.53.8");
    const PeerId busy_id = busy->id;
    const PeerId edge_id = edge->id;
    const PeerId future_id = future->id;

    constexpr uint64_t kNow = 50'000'000;
    idle->counters.last_receive_us.set(kNow - kTimeout - 1);
    busy->counters.last_receive_us.set(kNow - 10);
    edge->counters.last_receive_us.set(kNow - kTimeout);  // exactly the timeout: not yet
    future->counters.last_receive_us.set(kNow + 5);       // clock went back: keep
    ASSERT_EQ(table.learned_count(), 4u);

    EXPECT_EQ(table.expire_idle(kNow), 1u);
    EXPECT_EQ(table.learned_count(), 3u);
    EXPECT_EQ(peer_count(table), 4u);
    EXPECT_EQ(endpoint_id(table, "10.9.0.5:40000"), 0u);
    EXPECT_EQ(route_id(table, "192.168.53.5"), 0u);
    EXPECT_EQ(endpoint_id(table, "10.9.0.6:40000"), busy_id);
    EXPECT_EQ(endpoint_id(table, "10.9.0.7:40000"), edge_id);
    EXPECT_EQ(endpoint_id(table, "10.9.0.8:40000"), future_id);
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9090"), p1);  // configured: never expires

    // Much later: every learned peer goes, the configured one stays.
    EXPECT_EQ(table.expire_idle(kNow + 10 * kTimeout), 3u);
    EXPECT_EQ(table.learned_count(), 0u);
    EXPECT_EQ(peer_count(table), 1u);
    EXPECT_EQ(route_id(table, "192.168.60.1"), p1);
    EXPECT_EQ(table.expire_idle(kNow + 100 * kTimeout), 0u);
}

TEST(PeerTable, Remove) {
    PeerTable table(policy(), AF_INET);
    const PeerId p1 = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    const PeerId p2 = add(table, peer_config("10.9.0.12:9090", {"192.168.0.0/16"}));
    Peer* learned = learn(table, "10.9.0.5:40000", "192.168.53.99");

    EXPECT_TRUE(table.remove(p1));
    EXPECT_FALSE(table.remove(p1));
    EXPECT_FALSE(table.remove(table.allocate_id()));  // never used
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9090"), 0u);
    EXPECT_EQ(route_id(table, "192.168.60.1"), p2);  // falls back to the shorter prefix
    EXPECT_EQ(peer_count(table), 2u);

    EXPECT_TRUE(table.remove(learned->id));
    EXPECT_EQ(table.learned_count(), 0u);
    EXPECT_EQ(route_id(table, "192.168.53.99"), p2);
    EXPECT_EQ(endpoint_id(table, "10.9.0.5:40000"), 0u);
    EXPECT_EQ(peer_count(table), 1u);
}

TEST(PeerTable, ViewsReflectTheTable) {
    PeerTable table(policy(), AF_INET6);
    EXPECT_TRUE(table.make_views()->empty());
    PeerConfig config = peer_config("10.9.0.11:9090", {"192.168.60.0/24"});
    config.keepalive_seconds = 15;
    const PeerId first = add(table, config);
    const PeerId second = add(table, peer_config(std::nullopt, {"192.168.50.0/24"}));
    Peer* learned = learn(table, "[fd00::5]:40000", "fd00:53::5");

    const auto views = table.make_views();
    ASSERT_EQ(views->size(), 3u);
    // In id order, which is the order they came in.
    EXPECT_EQ(views->at(0)->id, first);
    EXPECT_FALSE(views->at(0)->learned);
    EXPECT_EQ(views->at(0)->config.keepalive_seconds, 15);
    EXPECT_EQ(views->at(0)->config.endpoint, endpoint("10.9.0.11:9090"));
    EXPECT_EQ(views->at(0)->config.allowed_ips, config.allowed_ips);
    EXPECT_EQ(views->at(1)->id, second);
    EXPECT_FALSE(views->at(1)->learned);
    EXPECT_FALSE(views->at(1)->config.endpoint);
    EXPECT_EQ(views->at(2)->id, learned->id);
    EXPECT_TRUE(views->at(2)->learned);
    EXPECT_EQ(views->at(2)->config.endpoint, endpoint("[fd00::5]:40000"));
    ASSERT_EQ(views->at(2)->config.allowed_ips.size(), 1u);
    EXPECT_EQ(views->at(2)->config.allowed_ips[0].to_string(), "fd00:53::5/128");
    for (const auto& view : *views) {
        ASSERT_NE(view->peer, nullptr);
        EXPECT_EQ(view->peer->id, view->id);
        EXPECT_EQ(view->peer.get(), table.find(view->id));
    }

    // Counters are read live; the configuration is a snapshot.
    learned->counters.add_rx(100, 1);
    EXPECT_EQ(views->at(2)->peer->counters.rx_bytes.read(), 100u);
    table.move_endpoint(*learned, endpoint("[fd00::5]:40001"));
    EXPECT_EQ(views->at(2)->config.endpoint, endpoint("[fd00::5]:40000"));
    const auto later = table.make_views();
    EXPECT_EQ(later->at(2)->config.endpoint, endpoint("[fd00::5]:40001"));

    // A removed peer leaves the next views but stays readable through the old ones.
    ASSERT_TRUE(table.remove(first));
    const auto after_removal = table.make_views();
    ASSERT_EQ(after_removal->size(), 2u);
    EXPECT_EQ(after_removal->at(0)->id, second);
    EXPECT_EQ(views->at(0)->peer->config.keepalive_seconds, 15);
    EXPECT_EQ(table.find(first), nullptr);
}

// With many peers and few changes, make_views() patches the last views instead of rebuilding
// them: the result must be what a rebuild gives, whatever the mix of changes.
TEST(PeerTable, PatchedViewsMatchTheTable) {
    PeerTable table(policy(), AF_INET);
    auto address = [](int i) {
        return std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    };
    std::vector<PeerId> ids;
    for (int i = 0; i < 100; ++i) {
        ids.push_back(add(table, peer_config("10.200." + address(i) + ":9090",
                                             {"10.100." + address(i) + "/32"})));
    }
    auto check = [&table] {
        const auto views = table.make_views();
        std::vector<PeerId> in_views;
        for (const auto& view : *views) {
            in_views.push_back(view->id);
            EXPECT_EQ(view->peer.get(), table.find(view->id));
            EXPECT_EQ(view->config, table.find(view->id)->config);
        }
        std::vector<PeerId> in_table;
        table.for_each([&in_table](const Peer& peer) { in_table.push_back(peer.id); });
        EXPECT_EQ(in_views, in_table);
    };
    check();
    ASSERT_TRUE(table.remove(ids[0]));  // the first
    check();
    ASSERT_TRUE(table.remove(ids[99]));                                         // the last
    table.upsert(ids[50], peer_config("10.201.0.1:9090", {"10.100.0.51/32"}));  // changed
    add(table, peer_config("10.202.0.1:9090", {"10.102.0.1/32"}));              // new, at the end
    learn(table, "10.9.0.5:40000", "192.168.53.99");
    check();
    // A prefix taken from another peer changes that one as well.
    table.upsert(ids[10], peer_config("10.200.0.11:9090", {"10.100.0.11/32", "10.100.0.12/32"}));
    ASSERT_TRUE(table.remove(ids[20]));
    ASSERT_TRUE(table.remove(ids[21]));
    check();
}

TEST(PeerTable, ViewsAreSharedUntilTheirPeerChanges) {
    PeerTable table(policy(), AF_INET);
    const PeerId a = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    const PeerId b = add(table, peer_config("10.9.0.12:9090", {"192.168.61.0/24"}));
    Peer* learned = learn(table, "10.9.0.5:40000", "192.168.53.5");

    const auto first = table.make_views();
    // Nothing changed: the very same snapshot, so a reader can stop at one comparison.
    EXPECT_EQ(table.make_views(), first);

    // A change to one peer makes a new snapshot in which only that peer's view is new.
    table.move_endpoint(*learned, endpoint("10.9.0.5:40001"));
    const auto moved = table.make_views();
    ASSERT_NE(moved, first);
    ASSERT_EQ(moved->size(), 3u);
    EXPECT_EQ(moved->at(0), first->at(0));
    EXPECT_EQ(moved->at(1), first->at(1));
    EXPECT_NE(moved->at(2), first->at(2));
    EXPECT_EQ(moved->at(2)->config.endpoint, endpoint("10.9.0.5:40001"));

    EXPECT_TRUE(table.learn_address(*learned, ip("192.168.53.6")));
    const auto widened = table.make_views();
    EXPECT_NE(widened->at(2), moved->at(2));
    EXPECT_EQ(widened->at(2)->config.allowed_ips.size(), 2u);
    EXPECT_EQ(widened->at(0), first->at(0));

    // Upserting one peer renews its view; a peer that loses its endpoint to it, too.
    table.upsert(b, peer_config("10.9.0.11:9090", {"192.168.61.0/24"}));
    const auto stolen = table.make_views();
    EXPECT_NE(stolen->at(0), widened->at(0));
    EXPECT_FALSE(stolen->at(0)->config.endpoint);
    EXPECT_NE(stolen->at(1), widened->at(1));
    EXPECT_EQ(stolen->at(2), widened->at(2));

    // So does a peer that loses a prefix to another.
    table.upsert(b, peer_config("10.9.0.12:9090", {"192.168.61.0/24", "192.168.60.0/24"}));
    const auto taken = table.make_views();
    EXPECT_NE(taken->at(0), stolen->at(0));
    EXPECT_TRUE(taken->at(0)->config.allowed_ips.empty());

    // Adding or removing a peer leaves the other views as they were.
    const PeerId c = add(table, peer_config("10.9.0.13:9090", {"192.168.62.0/24"}));
    const auto grown = table.make_views();
    ASSERT_EQ(grown->size(), 4u);
    EXPECT_EQ(grown->at(3)->id, c);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(grown->at(i), taken->at(i)) << i;
    }
    ASSERT_TRUE(table.remove(a));
    const auto shrunk = table.make_views();
    ASSERT_EQ(shrunk->size(), 3u);
    EXPECT_EQ(shrunk->at(0), grown->at(1));
    EXPECT_EQ(shrunk->at(2), grown->at(3));
    // Counters, keepalive times and MAC addresses are not in the views: no new snapshot.
    learned->counters.add_rx(10, 1);
    learned->last_keepalive_us = 5;
    table.remember_mac(MacAddress{2, 0, 0, 0, 0, 1}, *learned, 1);
    EXPECT_EQ(table.make_views(), shrunk);
}

TEST(PeerTable, ExpiryMakesANewSnapshot) {
    PeerTable table(policy(true, 1024, 1'000'000), AF_INET);
    Peer* idle = learn(table, "10.9.0.5:40000", "192.168.53.5");
    idle->counters.last_receive_us.set(1);
    const auto before = table.make_views();
    ASSERT_EQ(before->size(), 1u);
    EXPECT_EQ(table.expire_idle(10'000'000), 1u);
    EXPECT_TRUE(table.make_views()->empty());
    EXPECT_EQ(before->size(), 1u);  // the old snapshot keeps its peer readable
    EXPECT_EQ(before->at(0)->peer->counters.last_receive_us.read(), 1u);
}

TEST(PeerTable, IdsAreNeverReused) {
    PeerTable table(policy(), AF_INET);
    const PeerId configured = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    Peer* learned = learn(table, "10.9.0.5:40000", "192.168.53.5");
    const PeerId learned_id = learned->id;
    EXPECT_NE(configured, learned_id);
    EXPECT_NE(configured, 0u);
    ASSERT_TRUE(table.remove(configured));
    ASSERT_TRUE(table.remove(learned_id));
    const PeerId next = table.allocate_id();
    EXPECT_NE(next, configured);
    EXPECT_NE(next, learned_id);
    Peer* again = learn(table, "10.9.0.5:40000", "192.168.53.5");
    EXPECT_NE(again->id, configured);
    EXPECT_NE(again->id, learned_id);
    EXPECT_NE(again->id, next);
    EXPECT_EQ(table.find(configured), nullptr);
    EXPECT_EQ(table.find(learned_id), nullptr);
    EXPECT_EQ(table.find(again->id), again);
}

TEST(PeerTable, RemembersMacAddresses) {
    PeerTable table(policy(), AF_INET);
    const PeerId p1 = add(table, peer_config("10.9.0.11:9090", {}));
    add(table, peer_config("10.9.0.12:9090", {}));
    Peer* one = table.by_endpoint(endpoint("10.9.0.11:9090"));
    Peer* two = table.by_endpoint(endpoint("10.9.0.12:9090"));
    const MacAddress a{0x02, 0, 0, 0, 0, 0x0a};
    const MacAddress b{0x02, 0, 0, 0, 0, 0x0b};
    const MacAddress unknown{0x02, 0, 0, 0, 0, 0x0c};

    EXPECT_EQ(table.by_mac(a), nullptr);
    table.remember_mac(a, *one, 1);
    table.remember_mac(b, *one, 1);
    EXPECT_EQ(table.by_mac(a), one);
    EXPECT_EQ(table.by_mac(b), one);
    EXPECT_EQ(table.by_mac(unknown), nullptr);

    // A station that moved behind another peer.
    table.remember_mac(b, *two, 1);
    EXPECT_EQ(table.by_mac(b), two);
    EXPECT_EQ(table.by_mac(a), one);

    // A removed peer's addresses are forgotten, the others' stay.
    ASSERT_TRUE(table.remove(p1));
    EXPECT_EQ(table.by_mac(a), nullptr);
    EXPECT_EQ(table.by_mac(b), two);
}

TEST(PeerTable, AnEndpointBelongsToOnePeer) {
    PeerTable table(policy(), AF_INET);
    const PeerId p1 = add(table, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    const PeerId p2 = add(table, peer_config("10.9.0.11:9090", {"192.168.50.0/24"}));
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9090"), p2);
    const Peer* one = table.route(ip("192.168.60.1"));
    ASSERT_NE(one, nullptr);
    EXPECT_EQ(one->id, p1);
    EXPECT_FALSE(one->config.endpoint);  // lost it
    // The first peer's removal does not take the endpoint from the second.
    ASSERT_TRUE(table.remove(p1));
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9090"), p2);

    // A roaming peer that lands on another's endpoint takes it too.
    const PeerId p3 = add(table, peer_config("10.9.0.13:9090", {"192.168.70.0/24"}));
    Peer* three = table.by_endpoint(endpoint("10.9.0.13:9090"));
    ASSERT_NE(three, nullptr);
    table.move_endpoint(*three, endpoint("10.9.0.11:9090"));
    EXPECT_EQ(endpoint_id(table, "10.9.0.11:9090"), p3);
    EXPECT_FALSE(table.route(ip("192.168.50.1"))->config.endpoint);
    EXPECT_EQ(endpoint_id(table, "10.9.0.13:9090"), 0u);

    // Same through a mapped form on a dual-stack table.
    PeerTable dual(policy(), AF_INET6);
    add(dual, peer_config("10.9.0.11:9090", {"192.168.60.0/24"}));
    Peer* learned = learn(dual, "[::ffff:10.9.0.11]:9090", "192.168.53.5");
    EXPECT_EQ(dual.by_endpoint(endpoint("10.9.0.11:9090")), learned);
    EXPECT_FALSE(dual.route(ip("192.168.60.1"))->config.endpoint);
}

}  // namespace
}  // namespace tunlab
