#pragma once

#include <cstdint>

#include "net/endpoint.hpp"
#include "net/ip_address.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

// The tunnel's UDP socket. An unspecified IPv6 listen address gives a dual-stack socket that
// also serves IPv4 peers (as ::ffff:a.b.c.d); on a host without IPv6 it falls back to IPv4.
class UdpSocket {
  public:
    UdpSocket(const IpAddress& listen_address, uint16_t port);

    int fd() const { return fd_.get(); }
    int family() const { return family_; }
    uint16_t bound_port() const { return bound_port_; }

  private:
    UniqueFd fd_;
    int family_ = 0;
    uint16_t bound_port_ = 0;
};

}  // namespace tunlab
