#include "app/daemon.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/tunnel_config.hpp"
#include "core/status.hpp"
#include "service/bus_service.hpp"
#include "util/atomic_file.hpp"
#include "util/log.hpp"
#include "util/system_error.hpp"

namespace tunlab {

namespace {

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
    const sigset_t set = handled_signals();
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_.valid()) {
        throw system_error("signalfd");
    }
}

Daemon::~Daemon() {
    bus_.reset();  // the bus objects refer to the tunnels
}

int Daemon::run() {
    log::info("tunlabd ", options_.version, " starting; configuration in ",
              options_.directories.config.string());
    load_configuration();
    if (options_.use_bus) {
        bus_ = std::make_unique<bus::BusService>(manager_, options_.version, bus::Authorizer());
    }
    tell_systemd("READY=1");
    // systemd's watchdog: ping from this loop, so that a stuck control plane (not just a dead
    // process) gets the service restarted. Twice per period, as sd_watchdog_enabled(3) advises.
    using Clock = std::chrono::steady_clock;
    uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
    const auto watchdog_interval = std::chrono::microseconds(watchdog_usec / 2);
    auto next_ping = Clock::now();
    std::vector<pollfd> fds;
    while (true) {
        int timeout_ms = -1;
        if (watchdog) {
            const auto now = Clock::now();
            if (now >= next_ping) {
                sd_notify(0, "WATCHDOG=1");
                next_ping = now + watchdog_interval;
            }
            timeout_ms = static_cast<int>(
                std::chrono::ceil<std::chrono::milliseconds>(next_ping - now).count());
        }
        fds.clear();
        fds.push_back({signals_.get(), POLLIN, 0});
        if (bus_) {
            // sd-bus may want other events (POLLOUT while a reply is queued) or a timeout on
            // every turn, so ask again each time.
            const bool more_pending = bus_->process();
            fds.push_back(bus_->poll_entry());
            const int bus_timeout = more_pending ? 0 : bus_->poll_timeout_ms();
            if (bus_timeout >= 0 && (timeout_ms < 0 || bus_timeout < timeout_ms)) {
                timeout_ms = bus_timeout;
            }
        }
        const size_t first_tunnel = fds.size();
        for (const auto& [name, tunnel] : manager_.tunnels()) {
            fds.push_back({tunnel->events_fd(), POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
            log::error("poll: ", std::strerror(errno));
            return 1;
        }
        bool peers_changed = false;
        size_t index = first_tunnel;
        for (const auto& [name, tunnel] : manager_.tunnels()) {
            if (fds[index++].revents & POLLIN) {
                tunnel->consume_events();
                peers_changed = true;
            }
        }
        if (peers_changed && bus_) {
            bus_->sync();
        }
        if ((fds[0].revents & POLLIN) && !handle_signal()) {
            return 0;
        }
        tell_systemd_status_if_changed();
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
            bus_.reset();
            manager_.stop_all();
            return false;
        case SIGHUP:
            tell_systemd("RELOADING=1");
            log::info("reloading configuration");
            load_configuration();
            if (bus_) {
                bus_->sync();
            }
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
        std::filesystem::create_directories(options_.directories.runtime);
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
