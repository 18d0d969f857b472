#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "app/directories.hpp"
#include "core/tunnel_manager.hpp"
#include "util/unique_fd.hpp"

namespace tunlab::bus {
class BusService;
}

namespace tunlab {

struct DaemonOptions {
    Directories directories;
    bool use_bus = true;  // serve org.tunlab1 on the system bus
    bool offload = true;  // TUN and UDP segmentation offloads (TunnelManager)
    std::string version;
};

// The control plane: one thread, one poll loop serving the bus, signals and the tunnels'
// peer events. SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration directory,
// SIGUSR1 writes status.json into the runtime directory.
class Daemon {
  public:
    explicit Daemon(DaemonOptions options);
    ~Daemon();
    int run();

    // The signals the loop handles; block them in every thread before any thread starts.
    static void block_signals();

  private:
    // Returns false when the daemon should stop.
    bool handle_signal();
    void load_configuration();
    void write_status();
    // `state` ("READY=1", ...) with a STATUS= line counting tunnels and peers; "" for the
    // status alone.
    void tell_systemd(const char* state);
    void tell_systemd_status_if_changed();

    DaemonOptions options_;
    TunnelManager manager_;
    std::unique_ptr<bus::BusService> bus_;
    UniqueFd signals_;
    uint64_t status_generation_ = 0;
    std::pair<size_t, size_t> last_status_{0, 0};  // tunnels, peers as last told
};

}  // namespace tunlab
