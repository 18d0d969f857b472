#pragma once

#include <optional>
#include <string>

#include "common/names.hpp"
#include "model/tunnel_settings.hpp"

namespace tunlab::bus {

// /org/tunlab1/tunnel/<name>, the name escaped as systemd escapes labels (sd_bus_path_encode),
// since tunnel names may hold '-' which object paths may not.
std::string tunnel_path(const std::string& tunnel_name);
// /org/tunlab1/tunnel/<name>/peer/<id>
std::string peer_path(const std::string& tunnel_name, PeerId id);
// The id of a peer path below `tunnel_name`, or nullopt if it is not one.
std::optional<PeerId> peer_id_from_path(const std::string& tunnel_name, const std::string& path);

struct PeerAddress {
    std::string tunnel_name;
    PeerId id = 0;
};
// The tunnel and id of any peer path (one that peer_path() makes), or nullopt.
std::optional<PeerAddress> parse_peer_path(const std::string& path);

}  // namespace tunlab::bus
