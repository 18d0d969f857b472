#include "service/tunnel_object.hpp"

#include <set>

#include "config/tunnel_config.hpp"
#include "core/error.hpp"
#include "service/bus_service.hpp"
#include "service/errors.hpp"
#include "service/object_paths.hpp"
#include "service/options.hpp"

namespace tunlab::bus {

namespace {

template <typename Item>
std::vector<std::string> to_strings(const std::vector<Item>& items) {
    std::vector<std::string> strings;
    strings.reserve(items.size());
    for (const auto& item : items) {
        strings.push_back(item.to_string());
    }
    return strings;
}

void reject_unknown_options(const std::map<std::string, sdbus::Variant>& options,
                            const std::set<std::string>& known) {
    for (const auto& [key, value] : options) {
        if (!known.contains(key)) {
            throw RequestError(ErrorKind::InvalidArgument,
                               "options: unknown option '" + quote_input(key) + "'");
        }
    }
}

}  // namespace

TunnelObject::TunnelObject(sdbus::IConnection& connection, BusService& service, Tunnel& tunnel)
    : GatedAdaptorInterfaces(connection, tunnel_path(tunnel.name()), service.object_policy()),
      connection_(connection),
      service_(service),
      tunnel_(tunnel),
      peer_objects_(connection, service, tunnel),
      published_mtu_(tunnel.mtu()),
      tunnel_serial_(tunnel.serial()) {
    registerAdaptor();
    // The peers the tunnel starts with (from its file or saved state) come with it:
    // TunnelAdded announces them. 10,000 PeerAdded signals at start-up would only cost time
    // and memory (sd-bus queues them all) and tell nobody anything.
    peer_objects_.sync(tunnel_.peers(), nullptr);
}

TunnelObject::~TunnelObject() {
    unregisterAdaptor();
}

template <typename Change>
auto TunnelObject::change(Change&& change_body) {
    return guarded([&] {
        if constexpr (std::is_void_v<decltype(change_body())>) {
            change_body();
            sync_peers();
        } else {
            auto result = change_body();
            sync_peers();
            return result;
        }
    });
}

void TunnelObject::sync_peers() {
    const bool changed =
        peer_objects_.sync(tunnel_.peers(), [this](const std::string& path, bool added) {
            if (added) {
                emitPeerAdded(path);
            } else {
                emitPeerRemoved(path);
            }
        });
    std::vector<std::string> properties;
    if (changed) {
        properties.push_back("Peers");
    }
    if (tunnel_.mtu() != published_mtu_) {  // the default MTU follows the peers
        published_mtu_ = tunnel_.mtu();
        properties.push_back("MTU");
    }
    if (!properties.empty()) {
        getObject().emitPropertiesChangedSignal(INTERFACE_NAME, properties);
    }
}

sdbus::ObjectPath TunnelObject::AddPeer(const std::string& endpoint,
                                        const std::map<std::string, sdbus::Variant>& options) {
    return change([&] {
        reject_unknown_options(options, {"allowed_ips", "keepalive"});
        nlohmann::json peer = options_to_json(options);
        if (!endpoint.empty()) {
            peer["endpoint"] = endpoint;
        }
        const PeerId id =
            tunnel_.add_peer(peer_config_from_json(peer, "", tunnel_.listen_address()));
        return sdbus::ObjectPath(peer_path(tunnel_.name(), id));
    });
}

void TunnelObject::RemovePeer(const sdbus::ObjectPath& peer) {
    change([&] {
        const auto id = peer_id_from_path(tunnel_.name(), peer);
        if (!id) {
            throw RequestError(
                ErrorKind::InvalidArgument,
                "peer: " + quote_input(peer) + " is not a peer path of tunnel " + tunnel_.name());
        }
        tunnel_.remove_peer(*id);
    });
}

void TunnelObject::AddAddress(const std::string& cidr) {
    change([&] {
        tunnel_.add_address(parse_interface_address(cidr, "cidr"));
        getObject().emitPropertiesChangedSignal(INTERFACE_NAME, {"Addresses"});
    });
}

void TunnelObject::RemoveAddress(const std::string& cidr) {
    change([&] {
        tunnel_.remove_address(parse_interface_address(cidr, "cidr"));
        getObject().emitPropertiesChangedSignal(INTERFACE_NAME, {"Addresses"});
    });
}

void TunnelObject::AddRoute(const std::string& destination,
                            const std::map<std::string, sdbus::Variant>& options) {
    change([&] {
        // No route option exists yet; the map is there so that one can be added (metric,
        // table) without breaking callers.
        reject_unknown_options(options, {});
        tunnel_.add_route(parse_prefix(destination, "destination"));
        getObject().emitPropertiesChangedSignal(INTERFACE_NAME, {"Routes"});
    });
}

void TunnelObject::RemoveRoute(const std::string& destination) {
    change([&] {
        tunnel_.remove_route(parse_prefix(destination, "destination"));
        getObject().emitPropertiesChangedSignal(INTERFACE_NAME, {"Routes"});
    });
}

void TunnelObject::ResetCounters() {
    change([&] { tunnel_.reset_counters(); });
}

std::string TunnelObject::Name() {
    return tunnel_.name();
}

std::string TunnelObject::Interface() {
    return tunnel_.interface_name();
}

std::string TunnelObject::Mode() {
    return tunnel_.mode() == DeviceMode::Tun ? "tun" : "tap";
}

std::string TunnelObject::Protocol() {
    return "plain";
}

std::string TunnelObject::ListenAddress() {
    return guarded([&] { return tunnel_.listen_address().to_string(); });
}

uint16_t TunnelObject::ListenPort() {
    return tunnel_.listen_port();
}

uint32_t TunnelObject::MTU() {
    return tunnel_.mtu();
}

std::vector<std::string> TunnelObject::Addresses() {
    return guarded([&] { return to_strings(tunnel_.addresses()); });
}

std::vector<std::string> TunnelObject::Routes() {
    return guarded([&] { return to_strings(tunnel_.routes()); });
}

std::vector<sdbus::ObjectPath> TunnelObject::Peers() {
    return guarded([&] { return peer_objects_.paths(); });
}

std::string TunnelObject::State() {
    return tunnel_.running() ? "up" : "failed";
}

std::map<std::string, uint64_t> TunnelObject::Counters() {
    return guarded([&] { return tunnel_.counters(); });
}

}  // namespace tunlab::bus
