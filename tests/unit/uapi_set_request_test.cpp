// WireGuard's `set=1` as tunlab reads and applies it: the pure part of the control socket.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/encoding.hpp"
#include "crypto/x25519.hpp"
#include "uapi/set_request.hpp"
#include "uapi/uapi_error.hpp"

namespace tunlab::uapi {
namespace {

crypto::PublicKey key(uint8_t fill) {
    crypto::PublicKey bytes{};
    bytes.fill(fill);
    return bytes;
}

std::string hex(uint8_t fill) {
    return crypto::to_hex(key(fill));
}

SharedSecret secret(uint8_t fill) {
    const auto bytes = key(fill);
    return SharedSecret(crypto::SecretKey(bytes));
}

Prefix prefix(const char* text) {
    return *Prefix::parse(text);
}

int error_of(const std::vector<std::string>& lines) {
    std::vector<std::string_view> views(lines.begin(), lines.end());
    try {
        parse_set_request(views);
    } catch (const UapiError& error) {
        return error.error_number();
    }
    return 0;
}

TunnelConfig apply(const TunnelConfig& current, const std::vector<std::string>& lines) {
    std::vector<std::string_view> views(lines.begin(), lines.end());
    return apply_set_request(current, parse_set_request(views));
}

TunnelConfig wireguard_tunnel() {
    TunnelConfig config;
    config.name = "wg";
    config.protocol = ProtocolKind::WireGuard;
    config.private_key = secret(0x11);
    config.listen_port = 51820;
    PeerConfig first;
    first.public_key = key(0xa1);
    first.allowed_ips = {prefix("10.1.0.0/16"), prefix("10.9.0.0/24")};
    PeerConfig second;
    second.public_key = key(0xa2);
    second.allowed_ips = {prefix("10.2.0.0/16")};
    second.endpoint = Endpoint::parse("192.0.2.7:51820");
    config.peers = {first, second};
    return config;
}

TEST(UapiSetRequest, ErrnoForEachKindOfBadLine) {
    EXPECT_EQ(error_of({"no_equals_sign"}), EPROTO);
    EXPECT_EQ(error_of({"frobnicate=1"}), EINVAL);
    EXPECT_EQ(error_of({"private_key=" + hex(1).substr(2)}), EINVAL);  // 31 bytes
    EXPECT_EQ(error_of({"private_key=" + std::string(64, 'g')}), EINVAL);
    EXPECT_EQ(error_of({"listen_port=65536"}), EINVAL);
    EXPECT_EQ(error_of({"listen_port=-1"}), EINVAL);
    EXPECT_EQ(error_of({"listen_port="}), EINVAL);
    EXPECT_EQ(error_of({"replace_peers=false"}), EINVAL);
    EXPECT_EQ(error_of({"fwmark=1"}), EOPNOTSUPP);
    EXPECT_EQ(error_of({"fwmark=0"}), 0);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "allowed_ip=10.0.0.0"}), EINVAL);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "allowed_ip=10.0.0.0/33"}), EINVAL);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "endpoint=vpn.example.org:51820"}), EINVAL);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "endpoint=192.0.2.1"}), EINVAL);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "remove=yes"}), EINVAL);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "protocol_version=2"}), EINVAL);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "listen_port=1"}), EINVAL);  // a device key
    EXPECT_EQ(error_of({"public_key=" + hex(2), "persistent_keepalive_interval=70000"}), EINVAL);
    EXPECT_EQ(error_of({"public_key=" + hex(2), "endpoint=[2001:db8::1]:51820",
                        "allowed_ip=-10.0.0.0/8", "protocol_version=1"}),
              0);
}

TEST(UapiSetRequest, ErrorMessagesNeverQuoteAKey) {
    const std::string private_hex(63, 'a');
    try {
        const std::vector<std::string> owned{"private_key=" + private_hex};
        parse_set_request({owned.begin(), owned.end()});
        FAIL();
    } catch (const UapiError& error) {
        EXPECT_EQ(std::string(error.what()).find(private_hex), std::string::npos);
    }
}

TEST(UapiSetRequest, AddsAPeerAndTakesItsAllowedIpFromTheOtherPeer) {
    const TunnelConfig next =
        apply(wireguard_tunnel(), {"public_key=" + hex(0xa3), "endpoint=192.0.2.9:1000",
                                   "persistent_keepalive_interval=25", "allowed_ip=10.9.0.0/24"});
    ASSERT_EQ(next.peers.size(), 3u);
    EXPECT_EQ(next.peers[0].allowed_ips, std::vector<Prefix>{prefix("10.1.0.0/16")});
    EXPECT_EQ(next.peers[2].public_key, key(0xa3));
    EXPECT_EQ(next.peers[2].allowed_ips, std::vector<Prefix>{prefix("10.9.0.0/24")});
    EXPECT_EQ(next.peers[2].keepalive_seconds, 25);
    EXPECT_EQ(next.peers[2].endpoint, Endpoint::parse("192.0.2.9:1000"));
}

TEST(UapiSetRequest, UpdatesRemovesAndReplaces) {
    const TunnelConfig current = wireguard_tunnel();
    TunnelConfig next =
        apply(current, {"public_key=" + hex(0xa1), "replace_allowed_ips=true",
                        "allowed_ip=10.5.0.0/16", "public_key=" + hex(0xa2), "remove=true"});
    ASSERT_EQ(next.peers.size(), 1u);
    EXPECT_EQ(next.peers[0].allowed_ips, std::vector<Prefix>{prefix("10.5.0.0/16")});

    next = apply(current, {"public_key=" + hex(0xa1), "allowed_ip=-10.9.0.0/24"});
    EXPECT_EQ(next.peers[0].allowed_ips, std::vector<Prefix>{prefix("10.1.0.0/16")});

    next =
        apply(current, {"replace_peers=true", "public_key=" + hex(0xa4), "allowed_ip=10.4.0.0/16"});
    ASSERT_EQ(next.peers.size(), 1u);
    EXPECT_EQ(next.peers[0].public_key, key(0xa4));

    // update_only leaves an unknown peer uncreated; a section for ourselves is ignored.
    const auto own = crypto::public_key_of(current.private_key.key());
    next = apply(current, {"public_key=" + hex(0xa5), "update_only=true", "allowed_ip=10.6.0.0/16",
                           "public_key=" + crypto::to_hex(own), "allowed_ip=10.7.0.0/16"});
    EXPECT_EQ(next.peers, current.peers);
}

TEST(UapiSetRequest, KeysAndPort) {
    const TunnelConfig current = wireguard_tunnel();
    TunnelConfig next = apply(current, {"private_key=" + hex(0x22), "listen_port=4000",
                                        "public_key=" + hex(0xa2), "preshared_key=" + hex(0x33)});
    EXPECT_EQ(next.private_key, secret(0x22));
    EXPECT_EQ(next.listen_port, 4000);
    EXPECT_EQ(next.peers[1].preshared_key, secret(0x33));
    next = apply(next, {"public_key=" + hex(0xa2), "preshared_key=" + std::string(64, '0')});
    EXPECT_TRUE(next.peers[1].preshared_key.empty());
    EXPECT_THROW(apply(current, {"private_key=" + std::string(64, '0')}), UapiError);
}

}  // namespace
}  // namespace tunlab::uapi
