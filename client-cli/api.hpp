#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tunlabctl {

using Options = std::map<std::string, sdbus::Variant>;
using Counters = std::map<std::string, uint64_t>;

struct PeerInfo {
    std::string path;
    std::string endpoint;  // empty: not known yet
    std::vector<std::string> allowed_ips;
    uint16_t keepalive = 0;
    bool learned = false;
    uint64_t last_receive_us = 0;
    uint64_t last_send_us = 0;
    Counters counters;
    std::string public_key;  // empty: a plain peer
    bool has_preshared_key = false;
    uint64_t latest_handshake_us = 0;
};

struct TunnelInfo {
    std::string path;
    std::string name;
    std::string interface;
    std::string mode;
    std::string protocol;
    std::string public_key;  // empty: plain
    std::string listen_address;
    uint16_t listen_port = 0;
    uint32_t mtu = 0;
    std::string state;
    std::vector<std::string> addresses;
    std::vector<std::string> routes;
    std::vector<std::string> peer_paths;
    Counters counters;
};

// Everything tunlabctl knows about tunlabd, through org.tunlab1 on the system bus only.
// Reads use Properties.GetAll (one round trip per object); changes go through the proxies
// generated from dbus/*.xml. Errors arrive as sdbus::Error with the daemon's error name.
class Api {
  public:
    Api();  // connects to the system bus; throws sdbus::Error if it cannot
    sdbus::IConnection& connection() { return *connection_; }

    std::string version();
    std::vector<std::string> tunnel_paths();
    TunnelInfo tunnel(const std::string& path);
    PeerInfo peer(const std::string& path);
    std::string tunnel_path(const std::string& name);

    std::string create_tunnel(const std::string& name, const Options& options);
    void delete_tunnel(const std::string& name);
    std::string add_peer(const std::string& tunnel_path, const std::string& endpoint,
                         const Options& options);
    void remove_peer(const std::string& tunnel_path, const std::string& peer_path);
    void add_address(const std::string& tunnel_path, const std::string& cidr);
    void remove_address(const std::string& tunnel_path, const std::string& cidr);
    void add_route(const std::string& tunnel_path, const std::string& destination);
    void remove_route(const std::string& tunnel_path, const std::string& destination);
    void reset_counters(const std::string& tunnel_path);

  private:
    std::map<std::string, sdbus::Variant> get_all(const std::string& path,
                                                  const std::string& interface);

    std::unique_ptr<sdbus::IConnection> connection_;
};

}  // namespace tunlabctl
