#pragma once

#include <map>
#include <optional>
#include <string>

#include "crypto/secret_key.hpp"

namespace tunlabctl {

// The secret keys of a wireguard tunnel, as its WireGuard control socket (the cross-platform
// userspace API, "UAPI": /run/wireguard/<interface>.sock, root's only) tells them: the only
// way out of tunlabd for a key, since none travels over D-Bus.
struct UapiKeys {
    tunlab::crypto::SecretKey private_key;
    // Per peer public key (base64), its preshared key; peers without one are not listed.
    std::map<std::string, tunlab::crypto::SecretKey> preshared_keys;
};

// The socket's path for `interface`.
std::string uapi_socket_path(const std::string& interface);

// Asks the socket ("get=1"). Empty, with `why` set to a sentence for the user, when the socket
// cannot be opened (not root: "only root can read keys (from PATH)"; no socket: "PATH does not
// exist") or does not answer as the protocol says.
std::optional<UapiKeys> read_uapi_keys(const std::string& interface, std::string& why);

}  // namespace tunlabctl
