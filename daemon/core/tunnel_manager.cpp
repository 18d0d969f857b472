#include "core/tunnel_manager.hpp"

#include <set>

#include "core/error.hpp"
#include "util/log.hpp"

namespace tunlab {

TunnelManager::TunnelManager(StateStore store) : store_(std::move(store)) {}

TunnelManager::~TunnelManager() {
    stop_all();
}

TunnelManager::ApplyResult TunnelManager::apply(const std::vector<TunnelConfig>& files) {
    std::vector<std::string> errors;
    states_ = store_.load(errors);
    for (const auto& error : errors) {
        log::error(error);
    }
    // Work out what should run: name → config.
    std::map<std::string, TunnelConfig> wanted;
    std::set<std::string> named_by_file;
    // At start-up and reload nobody waits for an answer: a state that cannot be saved is
    // logged, and the tunnel runs anyway.
    auto save_or_log = [this](const std::string& name, const TunnelState& state) {
        try {
            save(name, state);
        } catch (const RequestError& error) {
            log::error(error.what());
        }
    };
    for (const auto& file : files) {
        named_by_file.insert(file.name);
        const auto state = states_.find(file.name);
        if (state == states_.end()) {
            save_or_log(file.name, TunnelState{TunnelState::Origin::File, file, file});
            wanted.emplace(file.name, file);
        } else if (state->second.origin == TunnelState::Origin::Bus) {
            log::warning("tunnel ", file.name, ": a tunnel of that name was created over the bus; ",
                         "its configuration file is ignored");
            wanted.emplace(file.name, *state->second.current);
        } else if (state->second.base != file) {
            log::notice("tunnel ", file.name, ": configuration file changed; the tunnel ",
                        "follows it (changes made over the bus, if any, are dropped)");
            save_or_log(file.name, TunnelState{TunnelState::Origin::File, file, file});
            wanted.emplace(file.name, file);
        } else if (state->second.current) {
            wanted.emplace(file.name, *state->second.current);
        }  // else: deleted over the bus, and the file has not changed since
    }
    for (const auto& [name, state] : std::map(states_)) {
        if (state.origin == TunnelState::Origin::File && !named_by_file.contains(name)) {
            store_.erase(name);  // its file is gone
            states_.erase(name);
        } else if (state.origin == TunnelState::Origin::Bus && state.current) {
            wanted.emplace(name, *state.current);
        }
    }

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
    return result;
}

std::unique_ptr<Tunnel> TunnelManager::start(const TunnelConfig& config) {
    try {
        auto tunnel = std::make_unique<Tunnel>(config, netlink_);
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

void TunnelManager::save(const std::string& name, const TunnelState& state) {
    try {
        store_.save(name, state);
    } catch (const std::exception& error) {
        throw RequestError(ErrorKind::Failed,
                           "cannot save the state of tunnel " + name + ": " + error.what());
    }
    states_[name] = state;
}

void TunnelManager::save_current(const Tunnel& tunnel) {
    TunnelState state = states_[tunnel.name()];
    state.current = tunnel.config();
    save(tunnel.name(), state);
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
        tunnel = std::make_unique<Tunnel>(config, netlink_);
    } catch (const std::exception& error) {
        throw RequestError(ErrorKind::Failed,
                           "cannot create tunnel " + config.name + ": " + error.what());
    }
    // A file-defined tunnel deleted over the bus and created again stays tied to its file.
    const auto state = states_.find(config.name);
    if (state != states_.end() && state->second.origin == TunnelState::Origin::File) {
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
        throw RequestError(ErrorKind::NotFound, "name: there is no tunnel named " + name);
    }
    const auto state = states_.find(name);
    if (state != states_.end() && state->second.origin == TunnelState::Origin::File) {
        // Remember the deletion for as long as the file stays as it is.
        save(name, TunnelState{TunnelState::Origin::File, state->second.base, std::nullopt});
    } else {
        store_.erase(name);
        states_.erase(name);
    }
    tunnels_.erase(running);
    log::notice("tunnel ", name, ": deleted");
}

Tunnel* TunnelManager::find(const std::string& name) const {
    const auto found = tunnels_.find(name);
    return found == tunnels_.end() ? nullptr : found->second.get();
}

size_t TunnelManager::peer_count() const {
    size_t count = 0;
    for (const auto& [name, tunnel] : tunnels_) {
        count += tunnel->peers()->size();
    }
    return count;
}

}  // namespace tunlab
