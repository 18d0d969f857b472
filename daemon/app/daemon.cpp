#include "app/daemon.hpp"

#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "config/tunnel_config.hpp"
#include "core/status.hpp"
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

Daemon::Daemon(Directories directories) : directories_(std::move(directories)) {
    const sigset_t set = handled_signals();
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!signals_.valid()) {
        throw system_error("signalfd");
    }
}

int Daemon::run() {
    log::info("tunlabd starting; configuration in ", directories_.config.string());
    load_configuration();
    tell_systemd("READY=1");
    while (true) {
        signalfd_siginfo info{};
        const ssize_t length = ::read(signals_.get(), &info, sizeof info);
        if (length != sizeof info) {
            if (errno == EINTR) {
                continue;
            }
            log::error("reading signals: ", std::strerror(errno));
            return 1;
        }
        switch (info.ssi_signo) {
            case SIGTERM:
            case SIGINT:
                tell_systemd("STOPPING=1");
                log::info("stopping on signal ", info.ssi_signo);
                manager_.stop_all();
                return 0;
            case SIGHUP:
                tell_systemd("RELOADING=1");
                log::info("reloading configuration");
                load_configuration();
                tell_systemd("READY=1");
                break;
            case SIGUSR1:
                write_status();
                break;
        }
    }
}

void Daemon::load_configuration() {
    const ConfigDirectory loaded = load_config_directory(directories_.config);
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
        std::filesystem::create_directories(directories_.runtime);
        write_file_atomically(directories_.runtime / "status.json", status.dump(2) + "\n");
    } catch (const std::exception& error) {
        log::error("cannot write status: ", error.what());
    }
}

void Daemon::tell_systemd(const char* state) {
    const std::string message = std::string(state) +
                                "\nSTATUS=" + std::to_string(manager_.tunnels().size()) +
                                " tunnel(s), " + std::to_string(manager_.peer_count()) + " peer(s)";
    sd_notify(0, message.c_str());
}

}  // namespace tunlab
