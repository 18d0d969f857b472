#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <tunlab/Peer_adaptor.h>

#include "core/tunnel.hpp"
#include "peers/peer.hpp"
#include "service/bus_context.hpp"

namespace tunlab::bus {

// /org/tunlab1/tunnel/<name>/peer/<id>, org.tunlab1.Peer. Shows the peer as the data plane
// last published it (see TunnelObject::sync); counters are read live.
class PeerObject final : public GatedAdaptorInterfaces<org::tunlab1::Peer_adaptor> {
  public:
    PeerObject(sdbus::IConnection& connection, BusContext& context, Tunnel& tunnel,
               std::shared_ptr<const PeerView> view);
    ~PeerObject();

    const std::string& path() const { return path_; }
    // Takes the newest view and signals what changed.
    void update(const std::shared_ptr<const PeerView>& view);

  private:
    void SetEndpoint(const std::string& endpoint) override;
    void SetAllowedIPs(const std::vector<std::string>& allowed_ips) override;
    std::string Endpoint() override;
    std::vector<std::string> AllowedIPs() override;
    uint16_t Keepalive() override;
    bool Learned() override;
    uint64_t LastReceive() override;
    uint64_t LastSend() override;
    std::map<std::string, uint64_t> Counters() override;
    std::string PublicKey() override;
    bool HasPresharedKey() override;
    uint64_t LatestHandshake() override;

    BusContext& context_;
    Tunnel& tunnel_;
    std::shared_ptr<const PeerView> view_;  // shared with the data plane's snapshots
    std::string path_;
};

}  // namespace tunlab::bus
