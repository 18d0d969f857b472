#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/state_store.hpp"
#include "config/tunnel_config.hpp"
#include "core/tunnel.hpp"
#include "system/netlink.hpp"

namespace tunlab {

// The set of running tunnels, and the memory of them in the state directory. Lives on the
// control thread.
//
// Every change made by request is saved before the request returns. On start and on reload,
// the tunnels to run come from the configuration files and the saved state:
// - a tunnel created by request comes back as it was last saved;
// - a tunnel from a file comes back with the changes made to it by request, for as long as
//   its file says what it said when those changes began; once an admin edits the file, the
//   file wins (and the changes made by request are dropped, with a log line);
// - a file that is removed takes its tunnel with it.
class TunnelManager {
  public:
    struct ApplyResult {
        size_t started = 0;
        size_t stopped = 0;
        size_t failed = 0;
    };

    // `offload`: open tunnels with the kernel's offloads (TunDevice); off to compare or to
    // work around a kernel that gets them wrong.
    explicit TunnelManager(StateStore store, bool offload = true);
    ~TunnelManager();

    // Reads the saved state and applies `files` (the configuration directory) on top of it.
    // A tunnel that fails to start is logged (naming the tunnel and the cause) and does not
    // stop the others; it is tried again at the next apply.
    ApplyResult apply(const std::vector<TunnelConfig>& files);
    void stop_all();

    // For requests: throw RequestError (AlreadyExists, NotFound, Failed with the cause).
    Tunnel& create(const TunnelConfig& config);
    void remove(const std::string& name);
    Tunnel* find(const std::string& name) const;
    // Makes the running tunnel `wanted.name` run as `wanted`, as one change, saved before it
    // returns: new peers are changed in place (Tunnel::set_peers); a new private key or listen
    // port restart the tunnel on the same interface. Nothing else may differ. Throws
    // RequestError (Failed with the system's errno for a port in use) having changed nothing.
    void reconfigure(const TunnelConfig& wanted);

    const std::map<std::string, std::unique_ptr<Tunnel>>& tunnels() const { return tunnels_; }
    size_t peer_count() const;

  private:
    std::unique_ptr<Tunnel> start(const TunnelConfig& config);
    void restart(const TunnelConfig& wanted);
    bool offload_;
    void adopt(std::unique_ptr<Tunnel> tunnel);
    void save(const std::string& name, const TunnelState& state);
    void save_current(const Tunnel& tunnel);
    void write(const std::string& name, TunnelState::Origin origin,
               const std::optional<TunnelConfig>& base, const std::optional<TunnelConfig>& current);

    // What the state directory says of a tunnel, less its current configuration: that is a
    // copy of every peer, only ever read back from disk (by apply), and replaced whole by each
    // save; the running tunnel has it.
    struct Saved {
        TunnelState::Origin origin = TunnelState::Origin::Bus;
        std::optional<TunnelConfig> base;
    };

    StateStore store_;
    Netlink netlink_;
    std::map<std::string, std::unique_ptr<Tunnel>> tunnels_;
    std::map<std::string, Saved> saved_;  // mirrors the state directory
};

}  // namespace tunlab
