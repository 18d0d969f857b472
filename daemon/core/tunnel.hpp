#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/tunnel_config.hpp"
#include "core/configured_peers.hpp"
#include "dataplane/data_plane.hpp"
#include "system/netlink.hpp"
#include "system/tun_device.hpp"
#include "system/udp_socket.hpp"

namespace tunlab {

// A running tunnel: its device configured as the config says, its UDP socket, and the data
// plane moving packets between them. Construction brings it all up (or throws and leaves
// nothing behind); destruction takes down what this tunnel created and nothing else.
//
// The methods that change it run on the control thread and throw RequestError with the kind
// a client can act on.
class Tunnel {
  public:
    // `offload`: ask the kernel for TUN and UDP segmentation offloads (see DataPlane).
    Tunnel(const TunnelConfig& config, Netlink& netlink, bool offload = true);
    ~Tunnel();
    Tunnel(const Tunnel&) = delete;
    Tunnel& operator=(const Tunnel&) = delete;

    // The configuration as it stands now, runtime changes included (learned peers are not
    // configuration and are left out).
    TunnelConfig config() const;
    const std::string& name() const { return config_.name; }
    // Unique for the daemon's life: tells a restarted tunnel from the one it replaced, even at
    // the same address.
    uint64_t serial() const { return serial_; }
    const std::string& interface_name() const { return device_.name(); }
    uint16_t listen_port() const { return socket_.bound_port(); }
    uint32_t mtu() const { return mtu_; }
    // Cheap reads of single settings: config() copies every configured peer.
    DeviceMode mode() const { return config_.mode; }
    ProtocolKind protocol() const { return config_.protocol; }
    // Base64; empty for a protocol without keys.
    std::string public_key() const;
    // Only for those who may see it (root, on WireGuard's control socket).
    const SharedSecret& private_key() const { return config_.private_key; }
    const IpAddress& listen_address() const { return config_.listen_address; }
    // What the socket listens on: the listen address, or 0.0.0.0 where "::" fell back to
    // IPv4 (a kernel without IPv6). Endpoints of peers must be of its family.
    IpAddress socket_address() const;
    const std::vector<InterfaceAddress>& addresses() const { return config_.addresses; }
    const std::vector<Prefix>& routes() const { return config_.routes; }
    bool running() const { return data_plane_->running(); }
    CounterMap counters() const { return data_plane_->counters().snapshot(); }
    std::shared_ptr<const PeerViews> peers() const { return data_plane_->peers(); }
    int events_fd() const { return data_plane_->events_fd(); }
    void consume_events() { data_plane_->consume_events(); }

    // For the change listener, to save a change without copying every peer (config() does):
    // the settings (config() without its peers), the configured peers by id, and the ids of
    // those the change touched.
    const TunnelConfig& settings() const { return config_; }
    const ConfiguredPeers::Map& configured_peers() const { return configured_peers_.peers(); }
    std::span<const PeerId> changed_peers() const { return configured_peers_.changes(); }

    // Called after every change to the configuration, to save it; if it throws, the change is
    // taken back and the error reaches the caller of the change (see commit()).
    void set_change_listener(std::function<void(const Tunnel&)> listener) {
        change_listener_ = std::move(listener);
    }

    PeerId add_peer(const PeerConfig& peer);
    // Makes the configured peers exactly `wanted`, as one change: a peer is matched to the
    // running one with its public key (so it keeps its id, sessions and roamed endpoint), the
    // others are added or removed. For tunnels whose peers are keys (WireGuard).
    void set_peers(const std::vector<PeerConfig>& wanted);
    void remove_peer(PeerId id);
    void set_peer_endpoint(PeerId id, const std::optional<Endpoint>& endpoint);
    void set_peer_allowed_ips(PeerId id, const std::vector<Prefix>& allowed_ips);
    void add_address(const InterfaceAddress& address);
    void remove_address(const InterfaceAddress& address);
    void add_route(const Prefix& destination);
    void remove_route(const Prefix& destination);
    void reset_counters();

  private:
    void configure_device(const TunnelConfig& wanted);
    void undo_device_configuration() noexcept;
    // Every change goes through here: `apply` makes it (or throws having changed nothing), the
    // MTU follows the peers, and the change listener saves it; if either fails, `undo` takes
    // the change back and the error goes on. So a change that fails changed nothing, and one
    // that returns is saved.
    template <typename Apply, typename Undo>
    void commit(Apply&& apply, Undo&& undo);
    uint32_t fitting_mtu() const;
    void set_mtu(uint32_t mtu);
    void check_peer(PeerId id, const PeerConfig& peer) const;
    std::shared_ptr<const PeerView> find_peer(PeerId id) const;
    // Peer `id` as `in_data_plane` in the data plane and, if set, as `configured` in the
    // configuration.
    void put_peer(PeerId id, const PeerConfig& in_data_plane,
                  const std::optional<PeerConfig>& configured);
    // Changes one thing about a peer, by `edit(PeerConfig&)`, wherever the peer is kept.
    template <typename Edit>
    void edit_peer(PeerId id, Edit&& edit);
    void execute(DataPlane::Command command);
    void require_data_plane(bool responded) const;

    TunnelConfig config_;  // peers live in configured_peers_
    uint32_t mtu_ = 0;
    uint64_t serial_ = 0;
    ConfiguredPeers configured_peers_;
    Netlink& netlink_;
    TunDevice device_;
    UdpSocket socket_;
    std::unique_ptr<DataPlane> data_plane_;
    std::function<void(const Tunnel&)> change_listener_;
};

}  // namespace tunlab
