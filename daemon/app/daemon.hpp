#pragma once

#include <chrono>
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
namespace tunlab::uapi {
class Server;
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
// SIGUSR1 writes status.json into the runtime directory. The wireguard tunnels are also served
// to `wg` on their control sockets (uapi::Server), from the same loop.
//
// Losing the bus (dbus-daemon restarted, or it dropped us) does not stop the tunnels: the
// data planes never wait on the bus, and the loop connects again, with growing pauses,
// re-owning org.tunlab1 and registering every object anew.
class Daemon {
  public:
    explicit Daemon(DaemonOptions options);
    ~Daemon();
    int run();

    // The signals the loop handles; block them in every thread before any thread starts.
    static void block_signals();

  private:
    using Clock = std::chrono::steady_clock;

    // Runs `action` on the bus; if the connection fails under it, drops the connection and
    // schedules a new one.
    template <typename Action>
    void on_bus(Action&& action);
    void drop_bus(const std::exception& why);
    void reconnect_bus_if_due(Clock::time_point now);
    // Shows the data planes' peer changes on the bus, paced (see kPeerSignalsPerSecond): a
    // storm of roaming peers becomes a bounded rate of signals, never one per datagram.
    void sync_peers_if_due(Clock::time_point now);

    // Returns false when the daemon should stop.
    bool handle_signal();
    void load_configuration();
    void write_status();
    // `state` ("READY=1", ...) with a STATUS= line counting tunnels and peers; "" for the
    // status alone.
    void tell_systemd(const char* state);
    void tell_systemd_status_if_changed();
    // Keys are kept out of swap while RLIMIT_MEMLOCK allows (crypto/secret_key.hpp); past it
    // they still work, and the log says so once.
    void warn_once_if_keys_unlocked();

    DaemonOptions options_;
    TunnelManager manager_;
    std::unique_ptr<bus::BusService> bus_;
    std::unique_ptr<uapi::Server> uapi_;  // wg's control sockets
    Clock::time_point reconnect_at_{};    // while bus_ is null (and use_bus): when to try again
    Clock::duration reconnect_pause_{};
    bool warned_keys_unlocked_ = false;
    bool peers_changed_ = false;  // since the last sync
    Clock::time_point next_peer_sync_{};
    UniqueFd signals_;
    uint64_t status_generation_ = 0;
    std::pair<size_t, size_t> last_status_{0, 0};  // tunnels, peers as last told
};

}  // namespace tunlab
