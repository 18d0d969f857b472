#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/tunnel_config.hpp"
#include "core/tunnel.hpp"
#include "system/netlink.hpp"

namespace tunlab {

// The set of running tunnels. Lives on the control thread.
class TunnelManager {
  public:
    struct ApplyResult {
        size_t started = 0;
        size_t stopped = 0;
        size_t failed = 0;
    };

    // Makes the running tunnels match `configs`: unchanged tunnels keep running untouched,
    // changed ones are restarted, missing ones stopped. A tunnel that fails to start is logged
    // (naming the tunnel and the cause) and does not stop the others.
    ApplyResult apply(const std::vector<TunnelConfig>& configs);
    void stop_all();

    const std::map<std::string, std::unique_ptr<Tunnel>>& tunnels() const { return tunnels_; }
    size_t peer_count() const;

  private:
    bool start(const TunnelConfig& config);

    Netlink netlink_;
    std::map<std::string, std::unique_ptr<Tunnel>> tunnels_;
};

}  // namespace tunlab
