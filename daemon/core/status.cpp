#include "core/status.hpp"

#include <nlohmann/json.hpp>

#include "crypto/encoding.hpp"

namespace tunlab {

namespace {

nlohmann::json peer_json(const PeerView& view) {
    nlohmann::json peer;
    peer["endpoint"] = view.config.endpoint ? nlohmann::json(view.config.endpoint->to_string())
                                            : nlohmann::json(nullptr);
    peer["allowed_ips"] = nlohmann::json::array();
    for (const auto& prefix : view.config.allowed_ips) {
        peer["allowed_ips"].push_back(prefix.to_string());
    }
    peer["learned"] = view.learned;
    peer["keepalive"] = view.config.keepalive_seconds;
    if (view.config.public_key) {
        peer["public_key"] = crypto::key_to_base64(*view.config.public_key);
        peer["has_preshared_key"] = !view.config.preshared_key.empty();
        peer["latest_handshake"] = view.latest_handshake_us;
    }
    const TrafficCounters& counters = view.peer->counters;
    peer["last_receive"] = counters.last_receive_us.read();
    peer["last_send"] = counters.last_send_us.read();
    CounterMap map;
    counters.add_to(map);
    peer["counters"] = map;
    return peer;
}

}  // namespace

nlohmann::json status_json(const TunnelManager& manager) {
    nlohmann::json tunnels = nlohmann::json::object();
    for (const auto& [name, tunnel] : manager.tunnels()) {
        nlohmann::json entry;
        entry["interface"] = tunnel->interface_name();
        entry["mode"] = to_string(tunnel->mode());
        entry["protocol"] = to_string(tunnel->protocol());
        if (tunnel->protocol() == ProtocolKind::WireGuard) {
            entry["public_key"] = tunnel->public_key();
        }
        entry["listen_port"] = tunnel->listen_port();
        entry["mtu"] = tunnel->mtu();
        entry["counters"] = tunnel->counters();
        entry["peers"] = nlohmann::json::array();
        // Named, so that the snapshot outlives the loop: a range-for over `*tunnel->peers()`
        // would read a vector the data plane may free meanwhile.
        const auto views = tunnel->peers();
        for (const auto& view : *views) {
            entry["peers"].push_back(peer_json(*view));
        }
        tunnels[name] = std::move(entry);
    }
    return nlohmann::json{{"tunnels", std::move(tunnels)}};
}

}  // namespace tunlab
