#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/tunnel_manager.hpp"
#include "util/unique_fd.hpp"

namespace tunlab::uapi {

// WireGuard's cross-platform userspace API, so that stock `wg` reads and changes tunlab's
// wireguard tunnels: every such tunnel gets `<directory>/<interface>.sock`, made with umask
// 077 (only the daemon's user, and root, may connect), where `get=1` and `set=1` are answered
// as wireguard-go answers them. A `set` is one change through TunnelManager::reconfigure, the
// path every change takes: checked, saved before the reply, shown on the bus (`changed`),
// and nothing changed if it fails.
//
// It runs on the control thread and never blocks it: sockets are non-blocking, a client that
// sends nothing is closed after kIdleTimeout, requests and lines have bounds, and at most
// kMaxConnections are open (a new client displaces the one idle the longest).
class Server {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr size_t kMaxConnections = 64;
    static constexpr size_t kMaxLine = 4096;
    static constexpr size_t kMaxRequest = 32 << 20;
    static constexpr Clock::duration kIdleTimeout = std::chrono::seconds(10);

    Server(std::filesystem::path directory, TunnelManager& manager, std::function<void()> changed);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves every running wireguard tunnel and no other: call on each turn of the loop (a
    // tunnel may have come or gone by any route). Cheap when nothing changed.
    void sync();
    // Appends what to poll; pass the same entries, after poll, to handle().
    void add_poll_entries(std::vector<pollfd>& fds) const;
    void handle(std::span<const pollfd> entries, Clock::time_point now);
    // When the next idle client is due to be closed.
    std::optional<Clock::time_point> next_deadline() const;

  private:
    struct Listener {
        std::string tunnel;  // its name
        std::string interface;
        std::filesystem::path path;
        UniqueFd fd;
        dev_t device = 0;  // of the socket file, so that only ours is ever removed
        ino_t inode = 0;
    };
    struct Connection {
        UniqueFd fd;
        std::string tunnel;
        std::string input;   // received, not yet handled (wiped as it goes: it holds keys)
        size_t scanned = 0;  // input up to here is whole lines of the request being read
        bool in_set = false;
        bool after_get = false;  // the line just handled was "get=1"
        std::string output;      // answers not yet sent (it holds keys too)
        size_t sent = 0;
        bool close_after_output = false;
        bool closed = false;
        Clock::time_point last_active;
    };

    std::unique_ptr<Listener> listen(const Tunnel& tunnel);
    void stop_listening(Listener& listener) noexcept;
    void accept_from(const Listener& listener, Clock::time_point now);
    void read_from(Connection& connection, Clock::time_point now);
    void handle_requests(Connection& connection);
    // Applies one `set` (its lines after "set=1", without the empty line that ends it) and
    // returns the answer.
    std::string set(const std::string& tunnel_name, std::string_view request);
    void write_to(Connection& connection, Clock::time_point now);
    static void close(Connection& connection) noexcept;

    std::filesystem::path directory_;
    TunnelManager& manager_;
    std::function<void()> changed_;
    std::map<std::string, std::unique_ptr<Listener>> listeners_;  // by tunnel name
    // Tunnels (name, serial) whose socket could not be made: not tried again on every turn.
    std::set<std::pair<std::string, uint64_t>> failed_;
    std::vector<std::unique_ptr<Connection>> connections_;
};

}  // namespace tunlab::uapi
