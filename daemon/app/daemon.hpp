#pragma once

#include <cstdint>

#include "app/directories.hpp"
#include "core/tunnel_manager.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

// The control plane: one thread, one epoll loop, serving signals (and, later, the bus).
// SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration directory, SIGUSR1 writes
// status.json into the runtime directory.
class Daemon {
  public:
    explicit Daemon(Directories directories);
    int run();

    // The signals the loop handles; block them in every thread before any thread starts.
    static void block_signals();

  private:
    void load_configuration();
    void write_status();
    void tell_systemd(const char* state);

    Directories directories_;
    TunnelManager manager_;
    UniqueFd signals_;
    uint64_t status_generation_ = 0;
};

}  // namespace tunlab
