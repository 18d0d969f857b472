#include "app/daemon.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "config/tunnel_config.hpp"
#include "core/status.hpp"
#include "crypto/secret_key.hpp"
#include "service/bus_service.hpp"
#include "uapi/server.hpp"
#include "util/atomic_file.hpp"
#include "util/log.hpp"
#include "util/system_error.hpp"

namespace tunlab {

namespace {

// Between reconnection attempts: from the first to the last, doubling.
constexpr std::chrono::milliseconds kFirstReconnectPause{100};
constexpr std::chrono::milliseconds kLastReconnectPause{5000};
// Peer changes the data planes publish (learned, expired, roamed) reach the bus at most
// kPeerSignalsPerSecond on average: after a sync that sent n signals, the next waits n times
// the budget's interval. One change is shown at once; a storm of roaming peers costs the bus
// a bounded rate, its changes coalesce meanwhile, and each peer's last state arrives with the
// next sync.
constexpr size_t kPeerSignalsPerSecond = 200;

// Lowers `timeout_ms` (-1: none) to the time until `deadline`.
void wait_no_longer_than(int& timeout_ms, std::chrono::steady_clock::time_point deadline,
                         std::chrono::steady_clock::time_point now) {
    const auto until =
        std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
    if (timeout_ms < 0 || until < timeout_ms) {
        timeout_ms = static_cast<int>(until);
    }
}

sigset_t handled_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
        sigaddset(&set, signal);
    }
    return set;
}

}  // namespace

void Daemon::block_signals() {
    const sigset_t set = handled_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)),
      manager_(StateStore(options_.directories.state), options_.offload) {
    // A change made with `wg` is shown on the bus before `wg` gets its answer, as one made
    // over the bus is signalled before its reply.
    uapi_ = std::make_unique<uapi::Server>(options_.directories.uapi, manager_, [this] {
        on_bus([](bus::BusService& bus) { bus.sync(); });
    });
    const sigset_t set = handled_signals();
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_.valid()) {
        throw system_error("signalfd");
    }
}

Daemon::~Daemon() {
    bus_.reset();  // the bus objects refer to the tunnels
    uapi_.reset();
}

template <typename Action>
void Daemon::on_bus(Action&& action) {
    if (!bus_) {
        return;
    }
    try {
        action(*bus_);
    } catch (const sdbus::Error& error) {
        drop_bus(error);
    }
}

void Daemon::drop_bus(const std::exception& why) {
    log::error("lost the system bus (", why.what(), "); the tunnels keep running, reconnecting");
    bus_.reset();
    reconnect_pause_ = kFirstReconnectPause;
    reconnect_at_ = Clock::now() + reconnect_pause_;
}

void Daemon::reconnect_bus_if_due(Clock::time_point now) {
    if (bus_ || !options_.use_bus || now < reconnect_at_) {
        return;
    }
    try {
        bus_ = std::make_unique<bus::BusService>(manager_, options_.version, bus::Authorizer());
        log::notice("connected to the system bus again; org.tunlab1 is served");
        peers_changed_ = false;  // the new service showed every peer as it is now
    } catch (const sdbus::Error& error) {
        bus_.reset();
        reconnect_pause_ = std::min<Clock::duration>(reconnect_pause_ * 2, kLastReconnectPause);
        reconnect_at_ = now + reconnect_pause_;
        log::debug("cannot connect to the system bus yet: ", error.what());
    }
}

void Daemon::sync_peers_if_due(Clock::time_point now) {
    if (!peers_changed_ || now < next_peer_sync_) {
        return;
    }
    peers_changed_ = false;
    size_t signals = 0;
    on_bus([&](bus::BusService& bus) { signals = bus.sync(); });
    next_peer_sync_ = now + std::chrono::seconds(1) * signals / kPeerSignalsPerSecond;
}

int Daemon::run() {
    log::info("tunlabd ", options_.version, " starting; configuration in ",
              options_.directories.config.string());
    load_configuration();
    if (options_.use_bus) {
        // At start-up a bus that cannot be reached is fatal: systemd restarts us, and a client
        // started after READY=1 may rely on the API being there.
        bus_ = std::make_unique<bus::BusService>(manager_, options_.version, bus::Authorizer());
    }
    tell_systemd("READY=1");
    // systemd's watchdog: ping from this loop, so that a stuck control plane (not just a dead
    // process) gets the service restarted. Twice per period, as sd_watchdog_enabled(3) advises.
    uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
    const auto watchdog_interval = std::chrono::microseconds(watchdog_usec / 2);
    auto next_ping = Clock::now();
    std::vector<pollfd> fds;
    while (true) {
        int timeout_ms = -1;
        const auto now = Clock::now();
        if (watchdog) {
            if (now >= next_ping) {
                sd_notify(0, "WATCHDOG=1");
                next_ping = now + watchdog_interval;
            }
            wait_no_longer_than(timeout_ms, next_ping, now);
        }
        reconnect_bus_if_due(now);
        sync_peers_if_due(now);
        fds.clear();
        fds.push_back({signals_.get(), POLLIN, 0});
        // sd-bus may want other events (POLLOUT while a reply is queued) or a timeout on every
        // turn, so ask again each time.
        bool bus_pending = false;
        on_bus([&](bus::BusService& bus) { bus_pending = bus.process(); });
        if (bus_) {
            fds.push_back(bus_->poll_entry());
            const int bus_timeout = bus_pending ? 0 : bus_->poll_timeout_ms();
            if (bus_timeout >= 0 && (timeout_ms < 0 || bus_timeout < timeout_ms)) {
                timeout_ms = bus_timeout;
            }
        } else if (options_.use_bus) {
            wait_no_longer_than(timeout_ms, reconnect_at_, now);
        }
        if (peers_changed_) {
            wait_no_longer_than(timeout_ms, next_peer_sync_, now);
        }
        const size_t first_tunnel = fds.size();
        for (const auto& [name, tunnel] : manager_.tunnels()) {
            fds.push_back({tunnel->events_fd(), POLLIN, 0});
        }
        uapi_->sync();
        const size_t first_uapi = fds.size();
        uapi_->add_poll_entries(fds);
        if (const auto deadline = uapi_->next_deadline()) {
            wait_no_longer_than(timeout_ms, *deadline, now);
        }
        if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
            log::error("poll: ", std::strerror(errno));
            return 1;
        }
        size_t index = first_tunnel;
        for (const auto& [name, tunnel] : manager_.tunnels()) {
            if (fds[index++].revents & POLLIN) {
                tunnel->consume_events();
                peers_changed_ = true;
            }
        }
        uapi_->handle(std::span(fds).subspan(first_uapi), Clock::now());
        sync_peers_if_due(Clock::now());
        if ((fds[0].revents & POLLIN) && !handle_signal()) {
            return 0;
        }
        tell_systemd_status_if_changed();
        warn_once_if_keys_unlocked();
    }
}

void Daemon::warn_once_if_keys_unlocked() {
    if (!warned_keys_unlocked_ && !crypto::secure_memory_fully_locked()) {
        warned_keys_unlocked_ = true;
        log::warning(
            "the memory-lock limit (RLIMIT_MEMLOCK, LimitMEMLOCK= in the unit) is "
            "reached: further keys live in memory that may be swapped out");
    }
}

bool Daemon::handle_signal() {
    signalfd_siginfo info{};
    if (::read(signals_.get(), &info, sizeof info) != sizeof info) {
        return true;
    }
    switch (info.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            tell_systemd("STOPPING=1");
            log::info("stopping on signal ", info.ssi_signo);
            bus_.reset();  // its objects show the tunnels: gone first
            uapi_.reset();
            manager_.stop_all();
            return false;
        case SIGHUP:
            tell_systemd("RELOADING=1");
            log::info("reloading configuration");
            load_configuration();
            on_bus([](bus::BusService& bus) { bus.sync(); });
            tell_systemd("READY=1");
            break;
        case SIGUSR1:
            write_status();
            break;
    }
    return true;
}

void Daemon::load_configuration() {
    const ConfigDirectory loaded = load_config_directory(options_.directories.config);
    for (const auto& error : loaded.errors) {
        log::error(error);
    }
    for (const auto& note : loaded.notes) {
        log::warning(note);
    }
    const auto result = manager_.apply(loaded.tunnels);
    if (result.failed > 0 || !loaded.errors.empty()) {
        log::warning(loaded.errors.size(), " bad configuration file(s), ", result.failed,
                     " tunnel(s) failed to start; the others run");
    }
}

void Daemon::write_status() {
    nlohmann::json status = status_json(manager_);
    status["generation"] = ++status_generation_;
    try {
        create_directories_with_mode(options_.directories.runtime, 0755);
        write_file_atomically(options_.directories.runtime / "status.json", status.dump(2) + "\n");
    } catch (const std::exception& error) {
        log::error("cannot write status: ", error.what());
    }
}

void Daemon::tell_systemd_status_if_changed() {
    if (std::pair{manager_.tunnels().size(), manager_.peer_count()} != last_status_) {
        tell_systemd("");
    }
}

void Daemon::tell_systemd(const char* state) {
    last_status_ = {manager_.tunnels().size(), manager_.peer_count()};
    std::string message = state;
    if (!message.empty()) {
        message += "\n";
    }
    message += "STATUS=" + std::to_string(last_status_.first) + " tunnel(s), " +
               std::to_string(last_status_.second) + " peer(s)";
    sd_notify(0, message.c_str());
}

}  // namespace tunlab
