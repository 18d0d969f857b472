#include "service/bus_service.hpp"

#include <malloc.h>

#include "service/object_paths.hpp"
#include "util/log.hpp"

namespace tunlab::bus {

BusService::BusService(TunnelManager& manager, std::string version, Authorizer authorizer)
    : authorizer_(std::move(authorizer)),
      context_{manager, std::move(version), ObjectPolicy{authorizer_, signals_sent_},
               [this] { sync(); }},
      // Asking for the name while connecting: sdbus-c++ 1.2 then owns it before any object
      // is visible, so no client can see a half-registered service.
      connection_(sdbus::createSystemBusConnection(kBusName)) {
    // sd-bus runs match callbacks before it looks a method call's path up among the
    // registered objects (sd-bus.c process_message: process_match, then bus_process_object),
    // and sdbus-c++ 1.2's match callback returns 0, so the call then goes on to its object.
    // Only calls addressed to us reach this: without eavesdrop='true' the bus delivers no one
    // else's.
    materialize_match_ = connection_->addMatch(
        std::string("type='method_call',path_namespace='") + kTunnelsPath + "'",
        [this](sdbus::Message& message) { materialize_target(message); });
    manager_object_ = std::make_unique<ManagerObject>(*connection_, context_);
    sync();
    // Setting up thousands of peers leaves freed temporaries behind that malloc keeps; give
    // them back once, while nothing else is going on.
    ::malloc_trim(0);
}

BusService::~BusService() {
    materialize_match_.reset();
    tunnels_.clear();
    manager_object_.reset();
}

pollfd BusService::poll_entry() const {
    const auto data = connection_->getEventLoopPollData();
    return pollfd{data.fd, data.events, 0};
}

int BusService::poll_timeout_ms() const {
    return connection_->getEventLoopPollData().getPollTimeout();
}

bool BusService::process() {
    // Bounded, so that a storm of calls cannot starve signals, the watchdog or peer events;
    // the caller must not sleep while this says more is pending.
    constexpr int kRequestsPerTurn = 64;
    for (int handled = 0; handled < kRequestsPerTurn; ++handled) {
        if (!connection_->processPendingRequest()) {
            return false;
        }
    }
    return true;
}

void BusService::materialize_target(sdbus::Message& message) noexcept {
    try {
        const auto peer = parse_peer_path(message.getPath());  // "" for no path
        if (!peer) {
            return;  // the tunnel object itself, or no path of ours
        }
        if (const auto tunnel = tunnels_.find(peer->tunnel_name); tunnel != tunnels_.end()) {
            tunnel->second->materialize_peer(peer->id);
        }
    } catch (const std::exception& error) {
        // The call then finds no object and fails with UnknownObject: better than no daemon.
        log::warning("cannot register a peer object: ", error.what());
    } catch (...) {
        log::warning("cannot register a peer object: unexpected error");
    }
}

size_t BusService::sync() {
    const size_t signals_before = signals_sent_;
    bool changed = false;
    // Objects whose tunnel is gone, or was replaced by a restart, go first.
    for (auto position = tunnels_.begin(); position != tunnels_.end();) {
        const Tunnel* current = context_.manager.find(position->first);
        if (current == nullptr || current->serial() != position->second->tunnel_serial()) {
            const std::string name = position->first;
            position = tunnels_.erase(position);
            manager_object_->emitTunnelRemoved(tunnel_path(name), name);
            changed = true;
        } else {
            ++position;
        }
    }
    for (const auto& [name, tunnel] : context_.manager.tunnels()) {
        auto found = tunnels_.find(name);
        if (found == tunnels_.end()) {
            found =
                tunnels_
                    .emplace(name, std::make_unique<TunnelObject>(*connection_, context_, *tunnel))
                    .first;
            manager_object_->emitTunnelAdded(tunnel_path(name), name);
            changed = true;
        }
        found->second->sync();
    }
    if (changed) {
        manager_object_->emit_tunnels_changed();
    }
    return signals_sent_ - signals_before;
}

}  // namespace tunlab::bus
