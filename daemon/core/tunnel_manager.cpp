#include "core/tunnel_manager.hpp"

#include <malloc.h>

#include <system_error>

#include "core/error.hpp"
#include "core/reconcile.hpp"
#include "system/udp_socket.hpp"
#include "util/log.hpp"

namespace tunlab {

TunnelManager::TunnelManager(StateStore store, bool offload)
    : offload_(offload), store_(std::move(store)) {}

TunnelManager::~TunnelManager() {
    stop_all();
}

TunnelManager::ApplyResult TunnelManager::apply(const std::vector<TunnelConfig>& files) {
    std::vector<std::string> errors;
    auto states = store_.load(errors);
    for (const auto& error : errors) {
        log::error(error);
    }
    saved_.clear();
    for (const auto& [name, state] : states) {
        saved_.emplace(name, Saved{state.origin, state.base});
    }
    Reconciliation plan = reconcile(files, states);
    for (const auto& note : plan.notes) {
        if (note.warning) {
            log::warning(note.text);
        } else {
            log::notice(note.text);
        }
    }
    // At start-up and reload nobody waits for an answer: a state that cannot be saved is
    // logged, and the tunnel runs anyway.
    for (const auto& [name, state] : plan.saves) {
        try {
            save(name, state);
        } catch (const RequestError& error) {
            log::error(error.what());
        }
    }
    for (const auto& name : plan.erases) {
        try {
            store_.erase(name);
        } catch (const std::exception& error) {
            log::error("tunnel ", name, ": cannot remove its saved state: ", error.what());
        }
        saved_.erase(name);
    }
    auto& wanted = plan.wanted;

    ApplyResult result;
    for (auto position = tunnels_.begin(); position != tunnels_.end();) {
        const auto want = wanted.find(position->first);
        if (want != wanted.end() && position->second->config() == want->second) {
            wanted.erase(want);  // running as it should: leave it alone
            ++position;
            continue;
        }
        log::notice("tunnel ", position->first, ": stopped (",
                    want == wanted.end() ? "no longer configured" : "configuration changed", ")");
        position = tunnels_.erase(position);
        ++result.stopped;
    }
    for (const auto& [name, config] : wanted) {
        if (auto tunnel = start(config)) {
            const Tunnel& started = *tunnel;
            adopt(std::move(tunnel));
            // Record what the kernel chose (the device name), so that the next apply finds
            // the tunnel running as wanted.
            try {
                save_current(started);
            } catch (const RequestError& error) {
                log::error(error.what());
            }
            ++result.started;
        } else {
            ++result.failed;
        }
    }
    // Parsing and saving 10,000 peers leaves tens of MB of freed JSON behind that malloc keeps
    // for later; a daemon that mostly idles should give it back.
    ::malloc_trim(0);
    return result;
}

std::unique_ptr<Tunnel> TunnelManager::start(const TunnelConfig& config) {
    try {
        auto tunnel = std::make_unique<Tunnel>(config, netlink_, offload_);
        log::notice("tunnel ", config.name, ": up on ", tunnel->interface_name(), ", UDP port ",
                    tunnel->listen_port(), ", ", config.peers.size(), " peer(s), MTU ",
                    tunnel->mtu());
        return tunnel;
    } catch (const std::exception& error) {
        log::error("tunnel ", config.name, ": cannot start: ", error.what());
        return nullptr;
    }
}

void TunnelManager::adopt(std::unique_ptr<Tunnel> tunnel) {
    tunnel->set_change_listener([this](const Tunnel& changed) { save_current(changed); });
    const std::string name = tunnel->name();
    tunnels_.emplace(name, std::move(tunnel));
}

void TunnelManager::write(const std::string& name, TunnelState::Origin origin,
                          const std::optional<TunnelConfig>& base,
                          const std::optional<TunnelConfig>& current) {
    try {
        store_.save(name, origin, base, current);
    } catch (const std::exception& error) {
        throw RequestError(ErrorKind::Failed,
                           "cannot save the state of tunnel " + name + ": " + error.what());
    }
}

void TunnelManager::save(const std::string& name, const TunnelState& state) {
    write(name, state.origin, state.base, state.current);
    saved_[name] = Saved{state.origin, state.base};
}

// After every change by request: only what changed goes to disk (StateStore::save_change),
// without copying the base (every peer of the file) or the running peers for it.
void TunnelManager::save_current(const Tunnel& tunnel) {
    const Saved& saved = saved_[tunnel.name()];
    try {
        store_.save_change(tunnel.name(), saved.origin, saved.base,
                           StateStore::Change{tunnel.serial(), tunnel.settings(),
                                              tunnel.configured_peers(), tunnel.changed_peers()});
    } catch (const std::exception& error) {
        throw RequestError(ErrorKind::Failed, "cannot save the state of tunnel " + tunnel.name() +
                                                  ": " + error.what());
    }
}

void TunnelManager::stop_all() {
    tunnels_.clear();
}

Tunnel& TunnelManager::create(const TunnelConfig& config) {
    if (tunnels_.contains(config.name)) {
        throw RequestError(ErrorKind::AlreadyExists,
                           "name: a tunnel named " + config.name + " already exists");
    }
    std::unique_ptr<Tunnel> tunnel;
    try {
        tunnel = std::make_unique<Tunnel>(config, netlink_, offload_);
    } catch (const std::exception& error) {
        throw RequestError(ErrorKind::Failed,
                           "cannot create tunnel " + config.name + ": " + error.what());
    }
    // A file-defined tunnel deleted over the bus and created again stays tied to its file.
    const auto state = saved_.find(config.name);
    if (state != saved_.end() && state->second.origin == TunnelState::Origin::File) {
        save(config.name,
             TunnelState{TunnelState::Origin::File, state->second.base, tunnel->config()});
    } else {
        save(config.name, TunnelState{TunnelState::Origin::Bus, std::nullopt, tunnel->config()});
    }
    log::notice("tunnel ", config.name, ": created on ", tunnel->interface_name(), ", UDP port ",
                tunnel->listen_port());
    Tunnel& created = *tunnel;
    adopt(std::move(tunnel));
    return created;
}

void TunnelManager::remove(const std::string& name) {
    const auto running = tunnels_.find(name);
    if (running == tunnels_.end()) {
        throw RequestError(ErrorKind::NotFound,
                           "name: there is no tunnel named " + quote_input(name));
    }
    const auto state = saved_.find(name);
    if (state != saved_.end() && state->second.origin == TunnelState::Origin::File) {
        // Remember the deletion for as long as the file stays as it is.
        write(name, TunnelState::Origin::File, state->second.base, std::nullopt);
    } else {
        try {
            store_.erase(name);
        } catch (const std::exception& error) {
            throw RequestError(ErrorKind::Failed, "cannot remove the saved state of tunnel " +
                                                      name + ": " + error.what());
        }
        saved_.erase(name);
    }
    tunnels_.erase(running);
    log::notice("tunnel ", name, ": deleted");
}

Tunnel* TunnelManager::find(const std::string& name) const {
    const auto found = tunnels_.find(name);
    return found == tunnels_.end() ? nullptr : found->second.get();
}

void TunnelManager::reconfigure(const TunnelConfig& wanted) {
    Tunnel* tunnel = find(wanted.name);
    if (tunnel == nullptr) {
        throw RequestError(ErrorKind::NotFound,
                           "name: there is no tunnel named " + quote_input(wanted.name));
    }
    TunnelConfig current = tunnel->config();
    TunnelConfig same_peers = wanted;
    same_peers.peers = current.peers;
    if (same_peers == current) {
        tunnel->set_peers(wanted.peers);
        return;
    }
    same_peers.private_key = current.private_key;
    same_peers.private_key_file = current.private_key_file;
    same_peers.listen_port = current.listen_port;
    if (!(same_peers == current)) {
        throw RequestError(ErrorKind::InvalidArgument,
                           "only the peers, the private key and the listen port can change");
    }
    restart(wanted);
}

// The old tunnel goes first (its port and device are what the new one takes); if the new one
// cannot start or be saved, the old one comes back (as a new start: its sessions and learned
// endpoints are lost). So a new port is tried first, which is what fails in practice.
void TunnelManager::restart(const TunnelConfig& wanted) {
    const auto running = tunnels_.find(wanted.name);
    const TunnelConfig before = running->second->config();
    if (wanted.listen_port != 0 && wanted.listen_port != before.listen_port) {
        try {
            UdpSocket probe(wanted.listen_address, wanted.listen_port, false);
        } catch (const std::system_error& error) {
            throw RequestError(
                ErrorKind::Failed,
                "listen_port " + std::to_string(wanted.listen_port) + ": " + error.what(),
                error.code().value());
        }
    }
    tunnels_.erase(running);
    auto bring_back = [&] {
        if (auto tunnel = start(before)) {
            adopt(std::move(tunnel));
        }
    };
    std::unique_ptr<Tunnel> tunnel;
    try {
        tunnel = std::make_unique<Tunnel>(wanted, netlink_, offload_);
        save_current(*tunnel);
    } catch (const std::exception& error) {
        tunnel.reset();
        bring_back();
        const auto* system = dynamic_cast<const std::system_error*>(&error);
        const auto* request = dynamic_cast<const RequestError*>(&error);
        if (request) {
            throw;
        }
        throw RequestError(ErrorKind::Failed,
                           "cannot restart tunnel " + wanted.name + ": " + error.what(),
                           system ? system->code().value() : 0);
    }
    log::notice("tunnel ", wanted.name, ": restarted on ", tunnel->interface_name(), ", UDP port ",
                tunnel->listen_port());
    adopt(std::move(tunnel));
}

size_t TunnelManager::peer_count() const {
    size_t count = 0;
    for (const auto& [name, tunnel] : tunnels_) {
        count += tunnel->peers()->size();
    }
    return count;
}

}  // namespace tunlab
