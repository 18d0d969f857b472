#include "net/ip_address.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>

#include "net/endpoint.hpp"
#include "parse_helpers.hpp"

namespace tunlab {
namespace {

using test_support::endpoint;
using test_support::ip;
using test_support::prefix;

// ---- IpAddress ----

TEST(IpAddress, ParsesIpv4) {
    const auto address = IpAddress::parse("192.168.60.5");
    ASSERT_TRUE(address);
    EXPECT_EQ(address->family, Family::V4);
    EXPECT_EQ(address->bit_width(), 32u);
    EXPECT_EQ(address->bytes[0], 192);
    EXPECT_EQ(address->bytes[1], 168);
    EXPECT_EQ(address->bytes[2], 60);
    EXPECT_EQ(address->bytes[3], 5);
    for (size_t i = 4; i < 16; ++i) {
        EXPECT_EQ(address->bytes[i], 0) << "byte " << i;
    }
    EXPECT_EQ(address->to_string(), "192.168.60.5");
}

TEST(IpAddress, ParsesIpv6AndFormatsCanonically) {
    const auto address = IpAddress::parse("FD00:0:0:0:0:0:0:1");
    ASSERT_TRUE(address);
    EXPECT_EQ(address->family, Family::V6);
    EXPECT_EQ(address->bit_width(), 128u);
    EXPECT_EQ(address->bytes[0], 0xfd);
    EXPECT_EQ(address->bytes[1], 0x00);
    EXPECT_EQ(address->bytes[15], 0x01);
    EXPECT_EQ(address->to_string(), "fd00::1");
    EXPECT_EQ(ip("::").to_string(), "::");
    EXPECT_EQ(ip("2001:db8:0:0:1:0:0:1").to_string(), "2001:db8::1:0:0:1");
}

TEST(IpAddress, MappedIpv4StaysIpv6) {
    const IpAddress address = ip("::ffff:10.9.0.5");
    EXPECT_EQ(address.family, Family::V6);
    EXPECT_EQ(address.bytes[10], 0xff);
    EXPECT_EQ(address.bytes[11], 0xff);
    EXPECT_EQ(address.bytes[12], 10);
    EXPECT_NE(address, ip("10.9.0.5"));
}

TEST(IpAddress, RejectsMalformedText) {
    for (const char* text :
         {"", " ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "010.9.0.11",
          "1.2.3.-4", "a.b.c.d", "fd00::1::2", "fd00:::1", "12345::1", "fd00::1/64", "[fd00::1]",
          "fe80::1%lo", "1.2.3.4:80", "0000:0000:0000:0000:0000:0000:0000:0000:0000"}) {
        EXPECT_FALSE(IpAddress::parse(text)) << '"' << text << '"';
    }
}

TEST(IpAddress, UsesOnlyTheGivenCharacters) {
    // A string_view that is a piece of a longer string: the rest must not be read.
    const std::string text = "10.9.0.55";
    const auto address = IpAddress::parse(std::string_view(text).substr(0, 8));
    ASSERT_TRUE(address);
    EXPECT_EQ(address->to_string(), "10.9.0.5");
}

// Bug: the text is copied into a C string for inet_pton(), which stops at the first NUL, so
// anything after an embedded NUL is silently ignored ("10.9.0.5\0junk" reads as 10.9.0.5).
// A JSON configuration can carry one ("\u0000").
TEST(IpAddress, RejectsEmbeddedNul) {
    using namespace std::string_view_literals;
    EXPECT_FALSE(IpAddress::parse("10.9.0.5\0junk"sv));
    EXPECT_FALSE(IpAddress::parse("fd00::1\0"sv));
    EXPECT_FALSE(Prefix::parse("192.168.60.0\0/24"sv));
}

TEST(IpAddress, IsUnspecified) {
    EXPECT_TRUE(ip("0.0.0.0").is_unspecified());
    EXPECT_TRUE(ip("::").is_unspecified());
    EXPECT_FALSE(ip("0.0.0.1").is_unspecified());
    EXPECT_FALSE(ip("::1").is_unspecified());
}

TEST(IpAddress, Masked) {
    EXPECT_EQ(ip("192.168.60.5").masked(24), ip("192.168.60.0"));
    EXPECT_EQ(ip("192.168.60.5").masked(32), ip("192.168.60.5"));
    EXPECT_EQ(ip("192.168.60.5").masked(0), ip("0.0.0.0"));
    EXPECT_EQ(ip("255.255.255.255").masked(17), ip("255.255.128.0"));
    EXPECT_EQ(ip("fd00:1234:5678::ffff").masked(20), ip("fd00:1000::"));
    EXPECT_EQ(ip("fd00:1234:5678::ffff").masked(128), ip("fd00:1234:5678::ffff"));
    EXPECT_EQ(ip("ffff:ffff::").masked(1), ip("8000::"));
}

TEST(IpAddress, ConstructsFromNetworkOrderBytes) {
    const uint8_t v4[4] = {10, 9, 0, 11};
    EXPECT_EQ(IpAddress::v4(v4), ip("10.9.0.11"));
    uint8_t v6[16] = {0xfd, 0x00};
    v6[15] = 0x42;
    EXPECT_EQ(IpAddress::v6(v6), ip("fd00::42"));
}

TEST(IpAddress, OrderingAndHash) {
    EXPECT_LT(ip("10.0.0.1"), ip("10.0.0.2"));
    EXPECT_LT(ip("255.255.255.255"), ip("::"));  // IPv4 sorts before IPv6
    IpAddressHash hash;
    EXPECT_EQ(hash(ip("10.0.0.1")), hash(ip("10.0.0.1")));
    EXPECT_NE(hash(ip("10.0.0.1")), hash(ip("10.0.0.2")));
    // Same bytes, other family: different values, and the hash tells them apart.
    IpAddress zero_v4 = ip("0.0.0.0");
    IpAddress zero_v6 = ip("::");
    EXPECT_NE(zero_v4, zero_v6);
    EXPECT_NE(hash(zero_v4), hash(zero_v6));
}

// ---- Prefix ----

TEST(Prefix, ParsesAndClearsHostBits) {
    const auto prefix = Prefix::parse("192.168.60.5/24");
    ASSERT_TRUE(prefix);
    EXPECT_EQ(prefix->address, ip("192.168.60.0"));
    EXPECT_EQ(prefix->length, 24);
    EXPECT_EQ(prefix->to_string(), "192.168.60.0/24");
    EXPECT_EQ(*prefix, *Prefix::parse("192.168.60.0/24"));

    const auto v6 = Prefix::parse("fd00:1:2:3::99/48");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->address, ip("fd00:1:2::"));
    EXPECT_EQ(v6->length, 48);
    EXPECT_EQ(v6->to_string(), "fd00:1:2::/48");
}

TEST(Prefix, BareAddressIsAHostPrefix) {
    const auto v4 = Prefix::parse("10.9.0.5");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->length, 32);
    EXPECT_EQ(v4->address, ip("10.9.0.5"));
    EXPECT_EQ(*v4, Prefix::host(ip("10.9.0.5")));
    EXPECT_EQ(v4->to_string(), "10.9.0.5/32");

    const auto v6 = Prefix::parse("fd00::5");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->length, 128);
    EXPECT_EQ(*v6, Prefix::host(ip("fd00::5")));
    EXPECT_EQ(v6->to_string(), "fd00::5/128");
}

TEST(Prefix, ZeroAndFullLengths) {
    const auto all_v4 = Prefix::parse("1.2.3.4/0");
    ASSERT_TRUE(all_v4);
    EXPECT_EQ(all_v4->to_string(), "0.0.0.0/0");
    const auto all_v6 = Prefix::parse("fd00::1/0");
    ASSERT_TRUE(all_v6);
    EXPECT_EQ(all_v6->to_string(), "::/0");
    EXPECT_TRUE(Prefix::parse("1.2.3.4/32"));
    EXPECT_TRUE(Prefix::parse("fd00::1/128"));
}

TEST(Prefix, RejectsBadLengths) {
    for (const char* text : {"1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/", "1.2.3.4/24x", "1.2.3.4/x24",
                             "1.2.3.4/ 24", "1.2.3.4/+24", "1.2.3.4/24/", "1.2.3.4/2.4",
                             "1.2.3.4//24", "1.2.3.4/99999999999999999999", "fd00::/129", "fd00::/",
                             "", "/24", "/", "1.2.3/24", "fd00::1::/64"}) {
        EXPECT_FALSE(Prefix::parse(text)) << '"' << text << '"';
        EXPECT_FALSE(InterfaceAddress::parse(text)) << '"' << text << '"';
    }
}

TEST(Prefix, Contains) {
    const Prefix lan = *Prefix::parse("192.168.60.0/24");
    EXPECT_TRUE(lan.contains(ip("192.168.60.0")));
    EXPECT_TRUE(lan.contains(ip("192.168.60.5")));
    EXPECT_TRUE(lan.contains(ip("192.168.60.255")));
    EXPECT_FALSE(lan.contains(ip("192.168.61.0")));
    EXPECT_FALSE(lan.contains(ip("192.168.59.255")));
    // Other family, even with the same leading bytes.
    EXPECT_FALSE(lan.contains(ip("c0a8:3c00::")));
    EXPECT_FALSE(lan.contains(ip("::ffff:192.168.60.5")));

    const Prefix odd = *Prefix::parse("10.0.0.0/9");
    EXPECT_TRUE(odd.contains(ip("10.127.255.255")));
    EXPECT_FALSE(odd.contains(ip("10.128.0.0")));

    const Prefix host = Prefix::host(ip("10.9.0.5"));
    EXPECT_TRUE(host.contains(ip("10.9.0.5")));
    EXPECT_FALSE(host.contains(ip("10.9.0.4")));

    const Prefix everything = *Prefix::parse("0.0.0.0/0");
    EXPECT_TRUE(everything.contains(ip("255.255.255.255")));
    EXPECT_FALSE(everything.contains(ip("::")));

    const Prefix v6 = *Prefix::parse("fd00:0:0:1::/64");
    EXPECT_TRUE(v6.contains(ip("fd00:0:0:1:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(v6.contains(ip("fd00:0:0:2::")));
    EXPECT_TRUE(Prefix::parse("::/0")->contains(ip("fd00::1")));
    EXPECT_FALSE(Prefix::parse("::/0")->contains(ip("10.0.0.1")));
}

TEST(InterfaceAddress, KeepsHostPart) {
    const auto address = InterfaceAddress::parse("192.168.53.99/24");
    ASSERT_TRUE(address);
    EXPECT_EQ(address->address, ip("192.168.53.99"));
    EXPECT_EQ(address->length, 24);
    EXPECT_EQ(address->to_string(), "192.168.53.99/24");
    EXPECT_NE(*address, *InterfaceAddress::parse("192.168.53.0/24"));

    const auto v6 = InterfaceAddress::parse("fd00::99/64");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->address, ip("fd00::99"));
    EXPECT_EQ(v6->to_string(), "fd00::99/64");

    const auto bare = InterfaceAddress::parse("10.9.0.5");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->length, 32);
}

// ---- Endpoint ----

TEST(Endpoint, ParsesIpv4) {
    const Endpoint parsed = endpoint("10.9.0.11:9090");
    EXPECT_EQ(parsed.address(), ip("10.9.0.11"));
    EXPECT_EQ(parsed.port(), 9090);
    EXPECT_FALSE(parsed.is_ipv6());
    EXPECT_EQ(parsed.to_string(), "10.9.0.11:9090");
    ASSERT_EQ(parsed.sockaddr_length(), sizeof(sockaddr_in));
    const auto* in = reinterpret_cast<const sockaddr_in*>(parsed.sockaddr_ptr());
    EXPECT_EQ(in->sin_family, AF_INET);
    EXPECT_EQ(ntohs(in->sin_port), 9090);
    EXPECT_EQ(ntohl(in->sin_addr.s_addr), 0x0a09000bu);
}

TEST(Endpoint, ParsesBracketedIpv6) {
    const Endpoint parsed = endpoint("[fd00::1]:9090");
    EXPECT_EQ(parsed.address(), ip("fd00::1"));
    EXPECT_EQ(parsed.port(), 9090);
    EXPECT_TRUE(parsed.is_ipv6());
    EXPECT_EQ(parsed.to_string(), "[fd00::1]:9090");
    ASSERT_EQ(parsed.sockaddr_length(), sizeof(sockaddr_in6));
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(parsed.sockaddr_ptr());
    EXPECT_EQ(in6->sin6_family, AF_INET6);
    EXPECT_EQ(ntohs(in6->sin6_port), 9090);
    EXPECT_EQ(in6->sin6_addr.s6_addr[0], 0xfd);
    EXPECT_EQ(in6->sin6_addr.s6_addr[15], 0x01);
}

TEST(Endpoint, PortLimits) {
    EXPECT_EQ(endpoint("10.9.0.11:1").port(), 1);
    EXPECT_EQ(endpoint("10.9.0.11:65535").port(), 65535);
    EXPECT_EQ(endpoint("[::1]:65535").port(), 65535);
}

TEST(Endpoint, RejectsBadTextWithAReason) {
    for (const char* text :
         {"10.9.0.11", "10.9.0.11:", "10.9.0.11:0", "10.9.0.11:65536", "10.9.0.11:99999999999",
          "10.9.0.11:-1", "10.9.0.11:90x", "10.9.0.11: 9090", ":9090", "", "[fd00::1]",
          "[fd00::1]:", "[fd00::1]9090", "[fd00::1:9090", "[]:9090", "[fd00::1]:0",
          "[fd00::1]:65536"}) {
        std::string error;
        EXPECT_FALSE(Endpoint::parse(text, &error)) << '"' << text << '"';
        EXPECT_FALSE(error.empty()) << '"' << text << '"';
    }
    // No error pointer: still just nullopt.
    EXPECT_FALSE(Endpoint::parse("10.9.0.11:0"));
}

TEST(Endpoint, SpecificReasons) {
    std::string error;
    EXPECT_FALSE(Endpoint::parse("10.9.0.11:65536", &error));
    EXPECT_EQ(error, "port must be a number from 1 to 65535");
    EXPECT_FALSE(Endpoint::parse("10.9.0.11:0", &error));
    EXPECT_EQ(error, "port must be a number from 1 to 65535");
    EXPECT_FALSE(Endpoint::parse("10.9.0.11", &error));
    EXPECT_EQ(error, "expected host:port");
    EXPECT_FALSE(Endpoint::parse("[fd00::1]9090", &error));
    EXPECT_EQ(error, "expected [IPv6-address]:port");
    EXPECT_FALSE(Endpoint::parse(":9090", &error));
    EXPECT_EQ(error, "host is empty");
}

TEST(Endpoint, UnbracketedIpv6IsRejectedWithAReason) {
    std::string error;
    EXPECT_FALSE(Endpoint::parse("fd00::1:9090", &error));
    EXPECT_NE(error.find("brackets"), std::string::npos) << error;
    error.clear();
    EXPECT_FALSE(Endpoint::parse("::1:9090", &error));
    EXPECT_NE(error.find("brackets"), std::string::npos) << error;
}

TEST(Endpoint, ResolvesAHostName) {
    const Endpoint resolved = endpoint("localhost:9090");
    EXPECT_EQ(resolved.port(), 9090);
    const IpAddress address = resolved.address();
    EXPECT_TRUE(address == ip("127.0.0.1") || address == ip("::1")) << address.to_string();
    // It becomes the address, not the name.
    EXPECT_EQ(resolved.to_string().find("localhost"), std::string::npos);

    std::string error;
    EXPECT_FALSE(Endpoint::parse("no-such-host.invalid:9090", &error));
    EXPECT_FALSE(error.empty());
}

// Bug: an IPv4 address that inet_pton() rejects falls through to getaddrinfo(), which reads it
// with inet_aton()'s loose rules: a leading zero means octal, missing parts are filled in. A
// typo in a peer address then silently sends the tunnel's (unencrypted) traffic to another
// host: "010.9.0.11" is 8.9.0.11, "10.9.0.011" is 10.9.0.9, "10.1" is 10.0.0.1.
TEST(Endpoint, RejectsLooseNumericIpv4Forms) {
    for (const char* text : {"010.9.0.11:9090", "10.9.0.011:9090", "10.1:9090", "1.2.3:9090",
                             "0x0a.9.0.11:9090", "167837707:9090"}) {
        std::string error;
        const auto parsed = Endpoint::parse(text, &error);
        if (parsed) {
            ADD_FAILURE() << '"' << text << "\" was accepted as " << parsed->to_string();
        } else {
            EXPECT_FALSE(error.empty()) << text;
        }
    }
}

// Bug: a scoped link-local address resolves (getaddrinfo takes "%lo"), but the endpoint is
// rebuilt from address and port only, so the scope is lost and sendto() to it fails.
TEST(Endpoint, KeepsTheScopeOfALinkLocalAddress) {
    const unsigned loopback_index = if_nametoindex("lo");
    ASSERT_NE(loopback_index, 0u);
    std::string error;
    const auto parsed = Endpoint::parse("[fe80::1%lo]:9090", &error);
    ASSERT_TRUE(parsed) << error;
    EXPECT_EQ(parsed->address(), ip("fe80::1"));
    EXPECT_EQ(parsed->port(), 9090);
    ASSERT_EQ(parsed->sockaddr_ptr()->sa_family, AF_INET6);
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(parsed->sockaddr_ptr());
    EXPECT_EQ(in6->sin6_scope_id, loopback_index);
}

TEST(Endpoint, FromSockaddr) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(4242);
    in.sin_addr.s_addr = htonl(0x0a090005);
    const auto v4 = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->address(), ip("10.9.0.5"));
    EXPECT_EQ(v4->port(), 4242);
    // Too short for its family, or no address at all.
    EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in - 1));
    EXPECT_FALSE(Endpoint::from_sockaddr(nullptr, 0));

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(4243);
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.9.0.5", &in6.sin6_addr), 1);
    const auto mapped =
        Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->address(), ip("10.9.0.5"));  // read back unmapped
    EXPECT_EQ(mapped->address().family, Family::V4);
    EXPECT_FALSE(mapped->is_ipv6());
    EXPECT_EQ(mapped->to_string(), "10.9.0.5:4243");
    EXPECT_EQ(mapped->sockaddr_ptr()->sa_family, AF_INET6);  // kept in the socket's form

    sockaddr other{};
    other.sa_family = AF_UNIX;
    EXPECT_FALSE(Endpoint::from_sockaddr(&other, sizeof other));
}

TEST(Endpoint, Ipv4OnAnIpv6SocketIsMapped) {
    const Endpoint v4 = endpoint("10.9.0.11:9090");
    const auto mapped = v4.for_socket_family(AF_INET6);
    ASSERT_TRUE(mapped);
    ASSERT_EQ(mapped->sockaddr_ptr()->sa_family, AF_INET6);
    ASSERT_EQ(mapped->sockaddr_length(), sizeof(sockaddr_in6));
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(mapped->sockaddr_ptr());
    char text[INET6_ADDRSTRLEN] = {};
    ASSERT_NE(inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text), nullptr);
    EXPECT_STREQ(text, "::ffff:10.9.0.11");
    EXPECT_EQ(ntohs(in6->sin6_port), 9090);
    EXPECT_EQ(mapped->address(), ip("10.9.0.11"));
    EXPECT_EQ(mapped->port(), 9090);
    EXPECT_FALSE(mapped->is_ipv6());
    EXPECT_EQ(mapped->to_string(), "10.9.0.11:9090");

    // And back.
    const auto unmapped = mapped->for_socket_family(AF_INET);
    ASSERT_TRUE(unmapped);
    ASSERT_EQ(unmapped->sockaddr_ptr()->sa_family, AF_INET);
    ASSERT_EQ(unmapped->sockaddr_length(), sizeof(sockaddr_in));
    const auto* in = reinterpret_cast<const sockaddr_in*>(unmapped->sockaddr_ptr());
    EXPECT_EQ(ntohl(in->sin_addr.s_addr), 0x0a09000bu);
    EXPECT_EQ(ntohs(in->sin_port), 9090);

    // Same family: unchanged.
    const auto same = v4.for_socket_family(AF_INET);
    ASSERT_TRUE(same);
    EXPECT_EQ(same->sockaddr_ptr()->sa_family, AF_INET);
    EXPECT_EQ(*same, v4);
}

TEST(Endpoint, Ipv6CannotUseAnIpv4Socket) {
    const Endpoint v6 = endpoint("[fd00::1]:9090");
    EXPECT_FALSE(v6.for_socket_family(AF_INET));
    const auto same = v6.for_socket_family(AF_INET6);
    ASSERT_TRUE(same);
    EXPECT_EQ(same->sockaddr_ptr()->sa_family, AF_INET6);
    EXPECT_EQ(same->address(), ip("fd00::1"));
}

TEST(Endpoint, EqualityAndHashAcrossMappedForms) {
    const Endpoint plain = endpoint("10.9.0.11:9090");
    const Endpoint mapped = *plain.for_socket_family(AF_INET6);
    const Endpoint parsed_mapped = endpoint("[::ffff:10.9.0.11]:9090");
    EXPECT_EQ(parsed_mapped.sockaddr_ptr()->sa_family, AF_INET6);
    EXPECT_EQ(plain, mapped);
    EXPECT_EQ(mapped, plain);
    EXPECT_EQ(plain, parsed_mapped);
    EndpointHash hash;
    EXPECT_EQ(hash(plain), hash(mapped));
    EXPECT_EQ(hash(plain), hash(parsed_mapped));

    EXPECT_FALSE(plain == endpoint("10.9.0.11:9091"));
    EXPECT_FALSE(plain == endpoint("10.9.0.12:9090"));
    EXPECT_FALSE(endpoint("[::1]:9090") == endpoint("127.0.0.1:9090"));
    EXPECT_FALSE(endpoint("[fd00::1]:9090") == endpoint("[fd00::2]:9090"));

    std::unordered_set<Endpoint, EndpointHash> set;
    set.insert(plain);
    EXPECT_TRUE(set.contains(mapped));
    EXPECT_TRUE(set.contains(parsed_mapped));
    EXPECT_FALSE(set.insert(mapped).second);
    EXPECT_FALSE(set.contains(endpoint("10.9.0.11:9091")));
}

TEST(Endpoint, ConstructedFromAddressAndPort) {
    const Endpoint v4(ip("192.168.60.5"), 53);
    EXPECT_EQ(v4.to_string(), "192.168.60.5:53");
    EXPECT_EQ(v4.sockaddr_ptr()->sa_family, AF_INET);
    const Endpoint v6(ip("fd00::5"), 53);
    EXPECT_EQ(v6.to_string(), "[fd00::5]:53");
    EXPECT_TRUE(v6.is_ipv6());
    EXPECT_EQ(v6, endpoint("[fd00::5]:53"));
}

}  // namespace
}  // namespace tunlab
