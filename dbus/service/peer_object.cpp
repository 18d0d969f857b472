#include "service/peer_object.hpp"

#include <utility>

#include "crypto/encoding.hpp"
#include "service/object_paths.hpp"
#include "service/requests.hpp"

namespace tunlab::bus {

PeerObject::PeerObject(sdbus::IConnection& connection, BusContext& context, Tunnel& tunnel,
                       std::shared_ptr<const PeerView> view)
    : GatedAdaptorInterfaces(connection, peer_path(tunnel.name(), view->id), context.policy),
      context_(context),
      tunnel_(tunnel),
      view_(std::move(view)),
      path_(peer_path(tunnel.name(), view_->id)) {
    registerAdaptor();
}

PeerObject::~PeerObject() {
    unregisterAdaptor();
}

void PeerObject::update(const std::shared_ptr<const PeerView>& view) {
    if (view == view_) {
        return;  // the data plane made no new view: nothing about this peer changed
    }
    const std::shared_ptr<const PeerView> previous = std::exchange(view_, view);
    const PeerConfig& before = previous->config;
    std::vector<std::string> changed;
    if (before.endpoint != view->config.endpoint) {
        changed.push_back("Endpoint");
        emitEndpointChanged(Endpoint());
    }
    if (before.allowed_ips != view->config.allowed_ips) {
        changed.push_back("AllowedIPs");
    }
    if (before.keepalive_seconds != view->config.keepalive_seconds) {
        changed.push_back("Keepalive");
    }
    if (previous->latest_handshake_us != view->latest_handshake_us) {
        emitHandshakeCompleted(view->latest_handshake_us);
    }
    if (!changed.empty()) {
        getObject().emitPropertiesChangedSignal(INTERFACE_NAME, changed);
    }
}

void PeerObject::SetEndpoint(const std::string& endpoint) {
    changing(context_, [&] {
        tunnel_.set_peer_endpoint(view_->id, endpoint_request(endpoint, tunnel_.socket_address()));
    });
}

void PeerObject::SetAllowedIPs(const std::vector<std::string>& allowed_ips) {
    changing(context_,
             [&] { tunnel_.set_peer_allowed_ips(view_->id, allowed_ips_request(allowed_ips)); });
}

std::string PeerObject::Endpoint() {
    return view_->config.endpoint ? view_->config.endpoint->to_string() : std::string();
}

std::vector<std::string> PeerObject::AllowedIPs() {
    std::vector<std::string> strings;
    for (const auto& prefix : view_->config.allowed_ips) {
        strings.push_back(prefix.to_string());
    }
    return strings;
}

uint16_t PeerObject::Keepalive() {
    return view_->config.keepalive_seconds;
}

bool PeerObject::Learned() {
    return view_->learned;
}

uint64_t PeerObject::LastReceive() {
    return view_->peer->counters.last_receive_us.read();
}

uint64_t PeerObject::LastSend() {
    return view_->peer->counters.last_send_us.read();
}

std::string PeerObject::PublicKey() {
    const auto& key = view_->config.public_key;
    return key ? crypto::key_to_base64(*key) : std::string();
}

bool PeerObject::HasPresharedKey() {
    return !view_->config.preshared_key.empty();
}

uint64_t PeerObject::LatestHandshake() {
    return view_->peer->latest_handshake_us.read();
}

std::map<std::string, uint64_t> PeerObject::Counters() {
    return guarded([&] {
        CounterMap map;
        view_->peer->counters.add_to(map);
        return map;
    });
}

}  // namespace tunlab::bus
