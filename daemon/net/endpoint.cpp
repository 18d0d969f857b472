#include "net/endpoint.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>

namespace tunlab {

namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

Endpoint::Endpoint(const IpAddress& address, uint16_t port) {
    if (address.family == Family::V4) {
        auto* in = reinterpret_cast<sockaddr_in*>(&storage_);
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        std::memcpy(&in->sin_addr, address.bytes.data(), 4);
        length_ = sizeof(sockaddr_in);
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage_);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        std::memcpy(&in6->sin6_addr, address.bytes.data(), 16);
        length_ = sizeof(sockaddr_in6);
    }
}

std::optional<Endpoint> Endpoint::from_sockaddr(const sockaddr* address, socklen_t length) {
    if (address == nullptr) {
        return std::nullopt;
    }
    if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        return Endpoint(IpAddress::v4(reinterpret_cast<const uint8_t*>(&in->sin_addr)),
                        ntohs(in->sin_port));
    }
    if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        Endpoint endpoint(IpAddress::v6(reinterpret_cast<const uint8_t*>(&in6->sin6_addr)),
                          ntohs(in6->sin6_port));
        // Keep the scope of a link-local address; flow info means nothing to us.
        reinterpret_cast<sockaddr_in6*>(&endpoint.storage_)->sin6_scope_id = in6->sin6_scope_id;
        return endpoint;
    }
    return std::nullopt;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text, std::string* error) {
    auto fail = [error](const char* why) -> std::optional<Endpoint> {
        if (error != nullptr) {
            *error = why;
        }
        return std::nullopt;
    };
    std::string_view host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return fail("expected [IPv6-address]:port");
        }
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return fail("expected host:port");
        }
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return fail("an IPv6 address needs brackets: [address]:port");
        }
    }
    unsigned port = 0;
    const auto [end, parse_error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || parse_error != std::errc{} ||
        end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
        return fail("port must be a number from 1 to 65535");
    }
    if (host.empty()) {
        return fail("host is empty");
    }
    if (host.find('\0') != std::string_view::npos) {
        return fail("host contains a NUL character");
    }
    if (auto address = IpAddress::parse(host)) {
        return Endpoint(*address, static_cast<uint16_t>(port));
    }
    const std::string host_string(host);
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* results = nullptr;
    // getaddrinfo() also takes inet_aton()'s loose IPv4 forms, which inet_pton() above did not:
    // "010.9.0.11" is octal (8.9.0.11), "10.1" is 10.0.0.1. A typo must not become another host.
    hints.ai_family = AF_INET;
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(host_string.c_str(), nullptr, &hints, &results) == 0) {
        freeaddrinfo(results);
        return fail("not an IPv4 address: write it as a.b.c.d, without leading zeros");
    }
    // A name: resolve it once. The tunnel then follows the address, not the name.
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = 0;
    results = nullptr;
    if (getaddrinfo(host_string.c_str(), nullptr, &hints, &results) != 0 || results == nullptr) {
        return fail("host name does not resolve");
    }
    auto endpoint = from_sockaddr(results->ai_addr, results->ai_addrlen);
    freeaddrinfo(results);
    if (!endpoint) {
        return fail("host name does not resolve to an IP address");
    }
    // Keep what the resolver filled in (the scope of "fe80::1%eth0"); only the port is ours.
    if (endpoint->storage_.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&endpoint->storage_)->sin_port =
            htons(static_cast<uint16_t>(port));
    } else {
        reinterpret_cast<sockaddr_in6*>(&endpoint->storage_)->sin6_port =
            htons(static_cast<uint16_t>(port));
    }
    return endpoint;
}

bool Endpoint::is_v4_mapped() const {
    if (storage_.ss_family != AF_INET6) {
        return false;
    }
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return std::memcmp(&in6->sin6_addr, kV4MappedPrefix, sizeof kV4MappedPrefix) == 0;
}

IpAddress Endpoint::address() const {
    if (storage_.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&storage_);
        return IpAddress::v4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
    }
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    const auto* raw = reinterpret_cast<const uint8_t*>(&in6->sin6_addr);
    return is_v4_mapped() ? IpAddress::v4(raw + 12) : IpAddress::v6(raw);
}

uint16_t Endpoint::port() const {
    if (storage_.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
}

std::optional<Endpoint> Endpoint::for_socket_family(int socket_family) const {
    if (socket_family == storage_.ss_family) {
        return *this;
    }
    if (socket_family == AF_INET) {
        if (!is_v4_mapped()) {
            return std::nullopt;
        }
        return Endpoint(address(), port());
    }
    // An IPv4 endpoint on a dual-stack IPv6 socket.
    Endpoint mapped;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&mapped.storage_);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port());
    auto* raw = reinterpret_cast<uint8_t*>(&in6->sin6_addr);
    std::memcpy(raw, kV4MappedPrefix, sizeof kV4MappedPrefix);
    std::memcpy(raw + 12, address().bytes.data(), 4);
    mapped.length_ = sizeof(sockaddr_in6);
    return mapped;
}

std::string Endpoint::to_string() const {
    const IpAddress ip = address();
    if (ip.family == Family::V6) {
        return "[" + ip.to_string() + "]:" + std::to_string(port());
    }
    return ip.to_string() + ":" + std::to_string(port());
}

bool Endpoint::operator==(const Endpoint& other) const {
    return address() == other.address() && port() == other.port();
}

size_t EndpointHash::operator()(const Endpoint& endpoint) const noexcept {
    return IpAddressHash{}(endpoint.address()) * 31u + endpoint.port();
}

}  // namespace tunlab
