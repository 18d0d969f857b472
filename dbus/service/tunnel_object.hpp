#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <tunlab/Tunnel_adaptor.h>

#include <map>
#include <memory>

#include "core/tunnel.hpp"
#include "service/bus_context.hpp"
#include "service/peer_objects.hpp"

namespace tunlab::bus {

// /org/tunlab1/tunnel/<name>, org.tunlab1.Tunnel. Lives exactly as long as its Tunnel: the
// service removes it in the same control-loop turn that the tunnel goes away.
class TunnelObject final : public GatedAdaptorInterfaces<org::tunlab1::Tunnel_adaptor> {
  public:
    TunnelObject(sdbus::IConnection& connection, BusContext& context, Tunnel& tunnel);
    ~TunnelObject();

    // The serial of the tunnel this object shows (Tunnel::serial); compared, never the
    // address, since a restarted tunnel may land where the old one was.
    uint64_t tunnel_serial() const { return tunnel_serial_; }
    // Shows the tunnel as it is now: peer objects that match its peers, and PeerAdded/
    // PeerRemoved, EndpointChanged and PropertiesChanged signals for what changed since the
    // last sync (its peers, addresses, routes and MTU, which follows the peers unless set).
    void sync();
    // Registers peer `id`'s object if it exists, so that the call now being dispatched to its
    // path finds it (see PeerObjects).
    void materialize_peer(PeerId id) { peer_objects_.materialize(id); }

  private:
    sdbus::ObjectPath AddPeer(const std::string& endpoint,
                              const std::map<std::string, sdbus::Variant>& options) override;
    void RemovePeer(const sdbus::ObjectPath& peer) override;
    void AddAddress(const std::string& cidr) override;
    void RemoveAddress(const std::string& cidr) override;
    void AddRoute(const std::string& destination,
                  const std::map<std::string, sdbus::Variant>& options) override;
    void RemoveRoute(const std::string& destination) override;
    void ResetCounters() override;

    std::string Name() override;
    std::string Interface() override;
    std::string Mode() override;
    std::string Protocol() override;
    std::string PublicKey() override;
    std::string ListenAddress() override;
    uint16_t ListenPort() override;
    uint32_t MTU() override;
    std::vector<std::string> Addresses() override;
    std::vector<std::string> Routes() override;
    std::vector<sdbus::ObjectPath> Peers() override;
    std::string State() override;
    std::map<std::string, uint64_t> Counters() override;

    BusContext& context_;
    Tunnel& tunnel_;
    // Matches the data plane's newest snapshot: it hands out the same one until something
    // changes, so most syncs end at one pointer comparison.
    PeerObjects peer_objects_;
    // What the last sync showed of the properties that signal.
    uint32_t published_mtu_;
    std::vector<InterfaceAddress> published_addresses_;
    std::vector<Prefix> published_routes_;
    uint64_t tunnel_serial_;
};

}  // namespace tunlab::bus
