#include "core/tunnel_manager.hpp"

#include <set>

#include "util/log.hpp"

namespace tunlab {

TunnelManager::ApplyResult TunnelManager::apply(const std::vector<TunnelConfig>& configs) {
    ApplyResult result;
    std::set<std::string> wanted;
    for (const auto& config : configs) {
        wanted.insert(config.name);
    }
    for (auto position = tunnels_.begin(); position != tunnels_.end();) {
        if (!wanted.contains(position->first)) {
            log::notice("tunnel ", position->first, ": stopped (no longer configured)");
            position = tunnels_.erase(position);
            ++result.stopped;
        } else {
            ++position;
        }
    }
    for (const auto& config : configs) {
        const auto running = tunnels_.find(config.name);
        if (running != tunnels_.end()) {
            if (running->second->config() == config) {
                continue;
            }
            log::notice("tunnel ", config.name, ": configuration changed, restarting");
            tunnels_.erase(running);
            ++result.stopped;
        }
        if (start(config)) {
            ++result.started;
        } else {
            ++result.failed;
        }
    }
    return result;
}

bool TunnelManager::start(const TunnelConfig& config) {
    try {
        auto tunnel = std::make_unique<Tunnel>(config, netlink_);
        log::notice("tunnel ", config.name, ": up on ", tunnel->interface_name(), ", UDP port ",
                    tunnel->listen_port(), ", ", config.peers.size(), " peer(s), MTU ",
                    config.effective_mtu());
        tunnels_.emplace(config.name, std::move(tunnel));
        return true;
    } catch (const std::exception& error) {
        log::error("tunnel ", config.name, ": cannot start: ", error.what());
        return false;
    }
}

void TunnelManager::stop_all() {
    tunnels_.clear();
}

size_t TunnelManager::peer_count() const {
    size_t count = 0;
    for (const auto& [name, tunnel] : tunnels_) {
        count += tunnel->peers()->size();
    }
    return count;
}

}  // namespace tunlab
