#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/ip_address.hpp"

struct mnl_socket;

namespace tunlab {

// Interface configuration over rtnetlink (libmnl): what `ip link/addr/route` would do, without
// running `ip`. One instance per thread; every call is a synchronous request/ack exchange and
// throws std::system_error (errno from the kernel's NLMSG_ERROR) on failure, with a message that
// names the operation, e.g. "add address 192.168.53.99/24 to tun0: File exists".
class Netlink {
  public:
    Netlink();

    void set_link_up(unsigned ifindex, bool up);
    void set_mtu(unsigned ifindex, uint32_t mtu);
    void add_address(unsigned ifindex, const InterfaceAddress& address);
    void remove_address(unsigned ifindex, const InterfaceAddress& address);
    // A route to `destination` out of the interface (scope link, protocol static, main table).
    void add_route(unsigned ifindex, const Prefix& destination);
    void remove_route(unsigned ifindex, const Prefix& destination);

  private:
    struct SocketCloser {
        void operator()(mnl_socket* socket) const;
    };

    void request(void* message_header, const std::string& what);

    std::unique_ptr<mnl_socket, SocketCloser> socket_;
    uint32_t port_id_ = 0;
    uint32_t sequence_ = 0;
};

}  // namespace tunlab
