#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/ip_address.hpp"

namespace tunlab {

// A UDP peer address. Stored in the form the tunnel's socket uses: an IPv4 address seen on a
// dual-stack IPv6 socket is kept as ::ffff:a.b.c.d so that lookups compare like with like.
class Endpoint {
  public:
    Endpoint() = default;
    Endpoint(const IpAddress& address, uint16_t port);
    static std::optional<Endpoint> from_sockaddr(const sockaddr* address, socklen_t length);

    // "a.b.c.d:port", "[v6]:port" or "hostname:port" (resolved once, now).
    // On failure, `error` says why.
    static std::optional<Endpoint> parse(std::string_view text, std::string* error = nullptr);

    IpAddress address() const;  // unmapped: ::ffff:10.9.0.5 reads back as 10.9.0.5
    uint16_t port() const;
    bool is_ipv6() const { return storage_.ss_family == AF_INET6 && !is_v4_mapped(); }

    // The same endpoint, converted for a socket of `socket_family` (AF_INET or AF_INET6).
    // nullopt if it cannot be reached from such a socket (IPv6 on an IPv4 socket).
    std::optional<Endpoint> for_socket_family(int socket_family) const;

    const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
    socklen_t sockaddr_length() const { return length_; }
    std::string to_string() const;

    bool operator==(const Endpoint& other) const;

  private:
    bool is_v4_mapped() const;

    sockaddr_storage storage_{};
    socklen_t length_ = 0;
};

struct EndpointHash {
    size_t operator()(const Endpoint& endpoint) const noexcept;
};

}  // namespace tunlab
