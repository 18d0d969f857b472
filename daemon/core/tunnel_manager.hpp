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

    // Makes the tunnels that come from configuration files match `configs`: a tunnel whose
    // file is unchanged since the last apply keeps running untouched (with any changes made to
    // it since), one whose file changed is restarted, one whose file is gone is stopped.
    // Tunnels created by request are not touched, and a file naming one of them is skipped.
    // A tunnel that fails to start is logged (naming the tunnel and the cause) and does not
    // stop the others.
    ApplyResult apply(const std::vector<TunnelConfig>& configs);
    void stop_all();

    // For requests: throw RequestError (AlreadyExists, NotFound, Failed with the cause).
    Tunnel& create(const TunnelConfig& config);
    void remove(const std::string& name);
    Tunnel* find(const std::string& name) const;

    const std::map<std::string, std::unique_ptr<Tunnel>>& tunnels() const { return tunnels_; }
    size_t peer_count() const;

  private:
    std::unique_ptr<Tunnel> start(const TunnelConfig& config);

    Netlink netlink_;
    std::map<std::string, std::unique_ptr<Tunnel>> tunnels_;
    std::map<std::string, TunnelConfig> from_files_;  // as last applied
};

}  // namespace tunlab
