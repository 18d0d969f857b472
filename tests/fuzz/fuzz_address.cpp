// libFuzzer target: the address parsers that read user text (D-Bus arguments, tunlabctl
// arguments, configuration files): IpAddress, Prefix (CIDR), InterfaceAddress, Endpoint.
//
// Input: the text. Every parser gets all of it; whatever parses must print back to text that
// parses to the same value.
//
// Endpoint::parse() falls back to getaddrinfo() for host names. no_network.cpp (linked in)
// replaces getaddrinfo() so that no lookup leaves the machine: numeric hosts are parsed by the
// real one with AI_NUMERICHOST, four fixed names resolve from a table, other names fail.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/tunnel_config.hpp"
#include "fuzz_check.hpp"
#include "net/endpoint.hpp"
#include "net/ip_address.hpp"

namespace {

using tunlab::Endpoint;
using tunlab::Family;
using tunlab::InterfaceAddress;
using tunlab::IpAddress;
using tunlab::Prefix;

// The names no_network.cpp resolves.
bool is_fake_name(std::string_view host) {
    return host == "localhost" || host == "ip6-localhost" || host == "server.test" ||
           host == "server6.test";
}

void check_ip_address(std::string_view text) {
    const auto address = IpAddress::parse(text);
    if (!address) {
        return;
    }
    for (size_t i = address->family == Family::V4 ? 4 : 16; i < 16; ++i) {
        FUZZ_CHECK(address->bytes[i] == 0, "IPv4 address with bytes past the fourth");
    }
    const std::string printed = address->to_string();
    const auto again = IpAddress::parse(printed);
    FUZZ_CHECK(again && *again == *address, "IpAddress does not survive to_string/parse");
    FUZZ_CHECK(again->to_string() == printed, "IpAddress::to_string is not canonical");
    FUZZ_CHECK(tunlab::IpAddressHash{}(*again) == tunlab::IpAddressHash{}(*address),
               "equal addresses hash differently");
    FUZZ_CHECK(address->masked(address->bit_width()) == *address, "full-length mask changed it");
    FUZZ_CHECK(address->masked(0).is_unspecified(), "zero-length mask left bits");
}

void check_prefix(std::string_view text) {
    const auto prefix = Prefix::parse(text);
    const auto interface_address = InterfaceAddress::parse(text);
    FUZZ_CHECK(prefix.has_value() == interface_address.has_value(),
               "Prefix and InterfaceAddress disagree on what is CIDR");
    // The wrappers that the configuration and the bus use throw exactly when parse fails.
    const std::string owned(text);
    bool wrapper_accepts = true;
    try {
        (void)tunlab::parse_prefix(owned, "field");
        (void)tunlab::parse_interface_address(owned, "field");
    } catch (const tunlab::ConfigError&) {
        wrapper_accepts = false;
    } catch (...) {
        tunlab::fuzz::unexpected_exception("parse_prefix/parse_interface_address");
    }
    FUZZ_CHECK(wrapper_accepts == prefix.has_value(), "parse_prefix disagrees with Prefix::parse");
    if (!prefix) {
        return;
    }

    FUZZ_CHECK(prefix->length <= prefix->address.bit_width(), "prefix longer than the address");
    FUZZ_CHECK(prefix->address.masked(prefix->length) == prefix->address, "prefix keeps host bits");
    FUZZ_CHECK(prefix->contains(prefix->address), "prefix does not contain its own address");
    const auto again = Prefix::parse(prefix->to_string());
    FUZZ_CHECK(again && *again == *prefix, "Prefix does not survive to_string/parse");

    FUZZ_CHECK(interface_address->length == prefix->length, "prefix lengths differ");
    FUZZ_CHECK(prefix->contains(interface_address->address),
               "an interface address is outside its own prefix");
    FUZZ_CHECK(interface_address->address.masked(prefix->length) == prefix->address,
               "interface address and prefix name different networks");
    const auto interface_again = InterfaceAddress::parse(interface_address->to_string());
    FUZZ_CHECK(interface_again && *interface_again == *interface_address,
               "InterfaceAddress does not survive to_string/parse");

    // A bare address is a host prefix.
    if (text.find('/') == std::string_view::npos) {
        FUZZ_CHECK(prefix->length == prefix->address.bit_width(), "bare address is not a host");
        FUZZ_CHECK(*prefix == Prefix::host(prefix->address), "Prefix::host disagrees");
    }
}

// The host part as Endpoint::parse splits it, or nullopt.
std::optional<std::string_view> endpoint_host(std::string_view text) {
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        return text.substr(1, close - 1);
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    return text.substr(0, colon);
}

void check_endpoint(std::string_view text) {
    std::string why;
    const auto endpoint = Endpoint::parse(text, &why);
    if (!endpoint) {
        FUZZ_CHECK(!why.empty(), "Endpoint::parse failed without saying why");
        return;
    }
    FUZZ_CHECK(endpoint->port() != 0, "endpoint with port 0");
    const auto family = endpoint->sockaddr_ptr()->sa_family;
    FUZZ_CHECK((family == AF_INET && endpoint->sockaddr_length() == sizeof(sockaddr_in)) ||
                   (family == AF_INET6 && endpoint->sockaddr_length() == sizeof(sockaddr_in6)),
               "endpoint with a bad sockaddr");

    // Only a strict numeric address (or one of the test resolver's names, or a scoped IPv6
    // address) may succeed: "010.9.0.11" must not quietly become 8.9.0.11.
    const auto host = endpoint_host(text);
    FUZZ_CHECK(host.has_value(), "Endpoint::parse accepted text without a host part");
    if (!is_fake_name(*host) && host->find('%') == std::string_view::npos) {
        const auto address = IpAddress::parse(*host);
        FUZZ_CHECK(address.has_value(), "Endpoint::parse accepted a host that is not an address");
        FUZZ_CHECK(Endpoint(*address, endpoint->port()) == *endpoint,
                   "Endpoint::parse changed the address");
    }

    const std::string printed = endpoint->to_string();
    const auto again = Endpoint::parse(printed);
    FUZZ_CHECK(again && *again == *endpoint, "Endpoint does not survive to_string/parse");
    FUZZ_CHECK(again->to_string() == printed, "Endpoint::to_string is not canonical");
    FUZZ_CHECK(tunlab::EndpointHash{}(*again) == tunlab::EndpointHash{}(*endpoint),
               "equal endpoints hash differently");

    const auto from_kernel =
        Endpoint::from_sockaddr(endpoint->sockaddr_ptr(), endpoint->sockaddr_length());
    FUZZ_CHECK(from_kernel && *from_kernel == *endpoint, "Endpoint does not survive sockaddr");

    const auto on_v6 = endpoint->for_socket_family(AF_INET6);
    FUZZ_CHECK(on_v6 && *on_v6 == *endpoint, "endpoint not reachable from an IPv6 socket");
    FUZZ_CHECK(on_v6->sockaddr_ptr()->sa_family == AF_INET6, "IPv6 socket form is not IPv6");
    const auto on_v4 = endpoint->for_socket_family(AF_INET);
    FUZZ_CHECK(on_v4.has_value() != endpoint->is_ipv6(),
               "reachable from an IPv4 socket exactly when it is not IPv6");
    if (on_v4) {
        FUZZ_CHECK(*on_v4 == *endpoint && on_v4->sockaddr_ptr()->sa_family == AF_INET,
                   "IPv4 socket form differs");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 512) {
        return -1;  // nothing longer is interesting: the longest address text is 45 characters
    }
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_ip_address(text);
    check_prefix(text);
    check_endpoint(text);
    return 0;
}
