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
    // `offload`: ask for UDP_GRO and report UDP_SEGMENT (else both stay off).
    UdpSocket(const IpAddress& listen_address, uint16_t port, bool offload = true);

    int fd() const { return fd_.get(); }
    int family() const { return family_; }
    uint16_t bound_port() const { return bound_port_; }
    // Whether the kernel takes UDP_SEGMENT (one sendmsg, many datagrams) and delivers
    // UDP_GRO (many datagrams of one sender, one recvmsg). Probed, never assumed.
    bool segmentation_offload() const { return segmentation_offload_; }
    bool receive_offload() const { return receive_offload_; }

  private:
    void tune(bool offload);

    UniqueFd fd_;
    int family_ = 0;
    uint16_t bound_port_ = 0;
    bool segmentation_offload_ = false;
    bool receive_offload_ = false;
};

}  // namespace tunlab
