#include "service/tunnel_object.hpp"

#include "core/error.hpp"
#include "service/object_paths.hpp"
#include "service/requests.hpp"
#include "util/printable.hpp"

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

}  // namespace

TunnelObject::TunnelObject(sdbus::IConnection& connection, BusContext& context, Tunnel& tunnel)
    : GatedAdaptorInterfaces(connection, tunnel_path(tunnel.name()), context.policy),
      context_(context),
      tunnel_(tunnel),
      peer_objects_(connection, context, tunnel),
      published_mtu_(tunnel.mtu()),
      published_addresses_(tunnel.addresses()),
      published_routes_(tunnel.routes()),
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

void TunnelObject::sync() {
    const bool peers_changed =
        peer_objects_.sync(tunnel_.peers(), [this](const std::string& path, bool added) {
            if (added) {
                emitPeerAdded(path);
            } else {
                emitPeerRemoved(path);
            }
        });
    std::vector<std::string> properties;
    if (peers_changed) {
        properties.push_back("Peers");
    }
    if (tunnel_.mtu() != published_mtu_) {
        published_mtu_ = tunnel_.mtu();
        properties.push_back("MTU");
    }
    if (tunnel_.addresses() != published_addresses_) {
        published_addresses_ = tunnel_.addresses();
        properties.push_back("Addresses");
    }
    if (tunnel_.routes() != published_routes_) {
        published_routes_ = tunnel_.routes();
        properties.push_back("Routes");
    }
    if (!properties.empty()) {
        getObject().emitPropertiesChangedSignal(INTERFACE_NAME, properties);
    }
}

sdbus::ObjectPath TunnelObject::AddPeer(const std::string& endpoint,
                                        const std::map<std::string, sdbus::Variant>& options) {
    return changing(context_, [&] {
        const PeerId id = tunnel_.add_peer(
            add_peer_request(endpoint, options, tunnel_.socket_address(), tunnel_.protocol()));
        return sdbus::ObjectPath(peer_path(tunnel_.name(), id));
    });
}

void TunnelObject::RemovePeer(const sdbus::ObjectPath& peer) {
    changing(context_, [&] {
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
    changing(context_, [&] { tunnel_.add_address(address_request(cidr)); });
}

void TunnelObject::RemoveAddress(const std::string& cidr) {
    changing(context_, [&] { tunnel_.remove_address(address_request(cidr)); });
}

void TunnelObject::AddRoute(const std::string& destination,
                            const std::map<std::string, sdbus::Variant>& options) {
    changing(context_, [&] { tunnel_.add_route(route_request(destination, options)); });
}

void TunnelObject::RemoveRoute(const std::string& destination) {
    changing(context_, [&] { tunnel_.remove_route(route_request(destination)); });
}

void TunnelObject::ResetCounters() {
    changing(context_, [&] { tunnel_.reset_counters(); });
}

std::string TunnelObject::Name() {
    return tunnel_.name();
}

std::string TunnelObject::Interface() {
    return tunnel_.interface_name();
}

std::string TunnelObject::Mode() {
    return std::string(to_string(tunnel_.mode()));
}

std::string TunnelObject::Protocol() {
    return std::string(to_string(tunnel_.protocol()));
}

std::string TunnelObject::PublicKey() {
    return guarded([&] { return tunnel_.public_key(); });
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
