#include "service/object_paths.hpp"

#include <systemd/sd-bus.h>

#include <charconv>
#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace tunlab::bus {

std::string tunnel_path(const std::string& tunnel_name) {
    char* encoded = nullptr;
    if (sd_bus_path_encode("/org/tunlab1/tunnel", tunnel_name.c_str(), &encoded) < 0) {
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

}  // namespace tunlab::bus
