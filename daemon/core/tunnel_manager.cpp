#include "core/tunnel_manager.hpp"

#include <set>

#include "core/error.hpp"
#include "util/log.hpp"

namespace tunlab {

TunnelManager::ApplyResult TunnelManager::apply(const std::vector<TunnelConfig>& configs) {
    ApplyResult result;
    std::map<std::string, const TunnelConfig*> wanted;
    for (const auto& config : configs) {
        wanted.emplace(config.name, &config);
    }
    for (auto position = from_files_.begin(); position != from_files_.end();) {
        const auto& [name, applied] = *position;
        const auto want = wanted.find(name);
        if (want != wanted.end() && *want->second == applied && tunnels_.contains(name)) {
            wanted.erase(want);  // unchanged and running: leave it alone
            ++position;
            continue;
        }
        if (tunnels_.erase(name) > 0) {
            log::notice("tunnel ", name, ": stopped (configuration file ",
                        want == wanted.end() ? "removed" : "changed", ")");
            ++result.stopped;
        }
        position = from_files_.erase(position);
    }
    for (const auto& [name, config] : wanted) {
        if (tunnels_.contains(name)) {
            log::warning("tunnel ", name, ": a tunnel of that name was created over the bus; ",
                         "its configuration file is ignored");
            continue;
        }
        if (auto tunnel = start(*config)) {
            tunnels_.emplace(name, std::move(tunnel));
            from_files_.emplace(name, *config);
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

void TunnelManager::stop_all() {
    tunnels_.clear();
    from_files_.clear();
}

Tunnel& TunnelManager::create(const TunnelConfig& config) {
    if (tunnels_.contains(config.name)) {
        throw RequestError(ErrorKind::AlreadyExists,
                           "name: a tunnel named " + config.name + " already exists");
    }
    try {
        auto tunnel = std::make_unique<Tunnel>(config, netlink_);
        log::notice("tunnel ", config.name, ": created on ", tunnel->interface_name(),
                    ", UDP port ", tunnel->listen_port());
        return *tunnels_.emplace(config.name, std::move(tunnel)).first->second;
    } catch (const std::exception& error) {
        throw RequestError(ErrorKind::Failed,
                           "cannot create tunnel " + config.name + ": " + error.what());
    }
}

void TunnelManager::remove(const std::string& name) {
    if (tunnels_.erase(name) == 0) {
        throw RequestError(ErrorKind::NotFound, "name: there is no tunnel named " + name);
    }
    from_files_.erase(name);
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
