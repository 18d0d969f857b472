#pragma once

#include <memory>
#include <string>

#include "config/tunnel_config.hpp"
#include "dataplane/data_plane.hpp"
#include "system/netlink.hpp"
#include "system/tun_device.hpp"
#include "system/udp_socket.hpp"

namespace tunlab {

// A running tunnel: its device configured as the config says, its UDP socket, and the data
// plane moving packets between them. Construction brings it all up (or throws and leaves
// nothing behind); destruction takes down what this tunnel created and nothing else.
class Tunnel {
  public:
    Tunnel(const TunnelConfig& config, Netlink& netlink);
    ~Tunnel();
    Tunnel(const Tunnel&) = delete;
    Tunnel& operator=(const Tunnel&) = delete;

    const TunnelConfig& config() const { return config_; }
    const std::string& interface_name() const { return device_.name(); }
    uint16_t listen_port() const { return socket_.bound_port(); }
    int socket_family() const { return socket_.family(); }
    const TunnelCounters& counters() const { return data_plane_->counters(); }
    std::shared_ptr<const PeerViews> peers() const { return data_plane_->peers(); }

  private:
    void configure_device();
    void undo_device_configuration() noexcept;

    TunnelConfig config_;
    Netlink& netlink_;
    TunDevice device_;
    UdpSocket socket_;
    std::unique_ptr<DataPlane> data_plane_;
};

}  // namespace tunlab
