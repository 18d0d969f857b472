#include "service/object_paths.hpp"

#include <systemd/sd-bus.h>

#include <charconv>
#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace tunlab::bus {

std::string tunnel_path(const std::string& tunnel_name) {
    char* encoded = nullptr;
    if (sd_bus_path_encode(kTunnelsPath, tunnel_name.c_str(), &encoded) < 0) {
        throw std::bad_alloc();
    }
    std::unique_ptr<char, decltype(&std::free)> owner(encoded, &std::free);
    return encoded;
}

std::string peer_path(const std::string& tunnel_name, PeerId id) {
    return tunnel_path(tunnel_name) + "/peer/" + std::to_string(id);
}

std::optional<PeerId> peer_id_from_path(const std::string& tunnel_name, const std::string& path) {
    const std::string prefix = tunnel_path(tunnel_name) + "/peer/";
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) {
        return std::nullopt;
    }
    PeerId id = 0;
    const char* begin = path.data() + prefix.size();
    const char* end = path.data() + path.size();
    const auto [stop, error] = std::from_chars(begin, end, id);
    // Only the path peer_path() makes: "peer/01" names no peer.
    if (error != std::errc{} || stop != end || peer_path(tunnel_name, id) != path) {
        return std::nullopt;
    }
    return id;
}

std::optional<PeerAddress> parse_peer_path(const std::string& path) {
    // "<tunnel path>/peer/<id>": an encoded tunnel name holds no '/', so the tunnel path ends
    // at the first '/' after the tunnels' prefix.
    const std::string prefix = std::string(kTunnelsPath) + "/";
    if (path.compare(0, prefix.size(), prefix) != 0) {
        return std::nullopt;
    }
    const size_t end_of_tunnel = path.find('/', prefix.size());
    if (end_of_tunnel == std::string::npos) {
        return std::nullopt;
    }
    char* decoded = nullptr;
    const std::string tunnel = path.substr(0, end_of_tunnel);
    if (sd_bus_path_decode(tunnel.c_str(), kTunnelsPath, &decoded) <= 0 || decoded == nullptr) {
        return std::nullopt;
    }
    std::unique_ptr<char, decltype(&std::free)> owner(decoded, &std::free);
    PeerAddress address{decoded, 0};
    const auto id = peer_id_from_path(address.tunnel_name, path);
    if (!id) {
        return std::nullopt;
    }
    address.id = *id;
    return address;
}

}  // namespace tunlab::bus
