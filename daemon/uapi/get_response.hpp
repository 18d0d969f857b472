#pragma once

#include <string>

#include "core/tunnel.hpp"

namespace tunlab::uapi {

// The answer to `get=1` for `tunnel`, as wireguard-go gives it: the private key, the port the
// socket is bound to, then every peer (in the order they were added) with its preshared key,
// current endpoint, latest handshake, byte counters (the same as the bus's), persistent
// keepalive and allowed IPs; "errno=0" and an empty line end it. It holds keys: wipe it after
// use (crypto::secure_wipe).
std::string get_response(const Tunnel& tunnel);

}  // namespace tunlab::uapi
