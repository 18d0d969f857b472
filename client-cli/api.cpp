#include "api.hpp"

#include <tunlab/Manager_proxy.h>
#include <tunlab/Peer_proxy.h>
#include <tunlab/Tunnel_proxy.h>

#include "common/names.hpp"

namespace tunlabctl {

namespace {

using tunlab::bus::kBusName;
using tunlab::bus::kManagerPath;

// The generated proxies want a handler for every signal; tunlabctl's `monitor` listens with
// one match rule instead, so these stay empty.
class ManagerProxy : public sdbus::ProxyInterfaces<org::tunlab1::Manager_proxy> {
  public:
    explicit ManagerProxy(sdbus::IConnection& connection)
        : ProxyInterfaces(connection, kBusName, kManagerPath) {
        registerProxy();
    }
    ~ManagerProxy() { unregisterProxy(); }

  private:
    void onTunnelAdded(const sdbus::ObjectPath&, const std::string&) override {}
    void onTunnelRemoved(const sdbus::ObjectPath&, const std::string&) override {}
};

class TunnelProxy : public sdbus::ProxyInterfaces<org::tunlab1::Tunnel_proxy> {
  public:
    TunnelProxy(sdbus::IConnection& connection, const std::string& path)
        : ProxyInterfaces(connection, kBusName, path) {
        registerProxy();
    }
    ~TunnelProxy() { unregisterProxy(); }

  private:
    void onPeerAdded(const sdbus::ObjectPath&) override {}
    void onPeerRemoved(const sdbus::ObjectPath&) override {}
};

template <typename Value>
Value property(const std::map<std::string, sdbus::Variant>& properties, const std::string& name) {
    const auto found = properties.find(name);
    if (found == properties.end() || !found->second.containsValueOfType<Value>()) {
        throw sdbus::Error("org.tunlab1.Error.Failed",
                           "the daemon sent no valid '" + name + "' property");
    }
    return found->second.get<Value>();
}

std::vector<std::string> paths_to_strings(const std::vector<sdbus::ObjectPath>& paths) {
    return {paths.begin(), paths.end()};
}

}  // namespace

Api::Api() : connection_(sdbus::createSystemBusConnection()) {}

std::map<std::string, sdbus::Variant> Api::get_all(const std::string& path,
                                                   const std::string& interface) {
    auto proxy = sdbus::createProxy(*connection_, kBusName, path);
    std::map<std::string, sdbus::Variant> properties;
    proxy->callMethod("GetAll")
        .onInterface("org.freedesktop.DBus.Properties")
        .withArguments(interface)
        .storeResultsTo(properties);
    return properties;
}

std::string Api::version() {
    return property<std::string>(get_all(kManagerPath, org::tunlab1::Manager_proxy::INTERFACE_NAME),
                                 "Version");
}

std::vector<std::string> Api::tunnel_paths() {
    return paths_to_strings(property<std::vector<sdbus::ObjectPath>>(
        get_all(kManagerPath, org::tunlab1::Manager_proxy::INTERFACE_NAME), "Tunnels"));
}

TunnelInfo Api::tunnel(const std::string& path) {
    const auto all = get_all(path, org::tunlab1::Tunnel_proxy::INTERFACE_NAME);
    TunnelInfo info;
    info.path = path;
    info.name = property<std::string>(all, "Name");
    info.interface = property<std::string>(all, "Interface");
    info.mode = property<std::string>(all, "Mode");
    info.protocol = property<std::string>(all, "Protocol");
    info.public_key = property<std::string>(all, "PublicKey");
    info.listen_address = property<std::string>(all, "ListenAddress");
    info.listen_port = property<uint16_t>(all, "ListenPort");
    info.mtu = property<uint32_t>(all, "MTU");
    info.state = property<std::string>(all, "State");
    info.addresses = property<std::vector<std::string>>(all, "Addresses");
    info.routes = property<std::vector<std::string>>(all, "Routes");
    info.peer_paths = paths_to_strings(property<std::vector<sdbus::ObjectPath>>(all, "Peers"));
    info.counters = property<Counters>(all, "Counters");
    return info;
}

PeerInfo Api::peer(const std::string& path) {
    const auto all = get_all(path, org::tunlab1::Peer_proxy::INTERFACE_NAME);
    PeerInfo info;
    info.path = path;
    info.endpoint = property<std::string>(all, "Endpoint");
    info.allowed_ips = property<std::vector<std::string>>(all, "AllowedIPs");
    info.keepalive = property<uint16_t>(all, "Keepalive");
    info.learned = property<bool>(all, "Learned");
    info.last_receive_us = property<uint64_t>(all, "LastReceive");
    info.last_send_us = property<uint64_t>(all, "LastSend");
    info.counters = property<Counters>(all, "Counters");
    info.public_key = property<std::string>(all, "PublicKey");
    info.has_preshared_key = property<bool>(all, "HasPresharedKey");
    info.latest_handshake_us = property<uint64_t>(all, "LatestHandshake");
    return info;
}

std::string Api::tunnel_path(const std::string& name) {
    return ManagerProxy(*connection_).GetTunnel(name);
}

std::string Api::create_tunnel(const std::string& name, const Options& options) {
    return ManagerProxy(*connection_).CreateTunnel(name, options);
}

void Api::delete_tunnel(const std::string& name) {
    ManagerProxy(*connection_).DeleteTunnel(name);
}

std::string Api::add_peer(const std::string& tunnel_path, const std::string& endpoint,
                          const Options& options) {
    return TunnelProxy(*connection_, tunnel_path).AddPeer(endpoint, options);
}

void Api::remove_peer(const std::string& tunnel_path, const std::string& peer_path) {
    TunnelProxy(*connection_, tunnel_path).RemovePeer(sdbus::ObjectPath(peer_path));
}

void Api::add_address(const std::string& tunnel_path, const std::string& cidr) {
    TunnelProxy(*connection_, tunnel_path).AddAddress(cidr);
}

void Api::remove_address(const std::string& tunnel_path, const std::string& cidr) {
    TunnelProxy(*connection_, tunnel_path).RemoveAddress(cidr);
}

void Api::add_route(const std::string& tunnel_path, const std::string& destination) {
    TunnelProxy(*connection_, tunnel_path).AddRoute(destination, {});
}

void Api::remove_route(const std::string& tunnel_path, const std::string& destination) {
    TunnelProxy(*connection_, tunnel_path).RemoveRoute(destination);
}

void Api::reset_counters(const std::string& tunnel_path) {
    TunnelProxy(*connection_, tunnel_path).ResetCounters();
}

}  // namespace tunlabctl
