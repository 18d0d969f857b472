// A wireguard tunnel → wg-quick text (see wg_quick.hpp). What wg-quick cannot say becomes a
// "# tunlab: " comment line, so that nothing is lost without a word; reading the text back
// (wg_quick_parse.cpp) gives the same tunnel whenever there is no such comment.
#include <algorithm>
#include <sstream>

#include "config/wg_quick.hpp"
#include "crypto/encoding.hpp"

namespace tunlab {

namespace {

template <typename Items>
std::string join(const Items& items) {
    std::string text;
    for (const auto& item : items) {
        text += (text.empty() ? "" : ", ") + item.to_string();
    }
    return text;
}

bool contains(const std::vector<Prefix>& prefixes, const Prefix& prefix) {
    return std::find(prefixes.begin(), prefixes.end(), prefix) != prefixes.end();
}

// A secret's line; left out, a comment says so (wg-quick would refuse the file without it).
void secret_line(std::ostringstream& out, const char* key, const SharedSecret& secret,
                 Secrets secrets) {
    if (secret.empty()) {
        return;
    }
    if (secrets == Secrets::Include) {
        out << key << " = " << crypto::key_to_base64(secret.key().bytes()) << "\n";
    } else {
        out << "# " << key << " left out\n";
    }
}

void interface_section(std::ostringstream& out, const TunnelConfig& config, Secrets secrets,
                       bool routes_off) {
    out << "[Interface]\n";
    secret_line(out, "PrivateKey", config.private_key, secrets);
    if (config.listen_port != 0) {
        out << "ListenPort = " << config.listen_port << "\n";
    }
    if (!config.addresses.empty()) {
        out << "Address = " << join(config.addresses) << "\n";
    }
    if (config.mtu) {
        out << "MTU = " << *config.mtu << "\n";
    }
    if (routes_off) {
        out << "Table = off\n";
    }
}

// tunlab's settings that have no wg-quick key.
void tunlab_comments(std::ostringstream& out, const TunnelConfig& config, bool routes_off) {
    if (!config.interface.empty() && config.interface != config.name) {
        out << "# tunlab: interface "
            << config.interface << " (wg-quick names the interface after this file)\n";
    }
    if (!config.listen_address.is_unspecified() || config.listen_address.family != Family::V6) {
        out << "# tunlab: listen_address " << config.listen_address.to_string()
            << " (wg-quick listens on every address)\n";
    }
    if (config.busy_poll_us != 0) {
        out << "# tunlab: busy_poll_us " << config.busy_poll_us << "\n";
    }
    const auto derived =
        routes_off ? std::vector<Prefix>() : wg_quick_routes(config.peers, config.addresses);
    for (const auto& route : config.routes) {
        if (!contains(derived, route)) {
            out << "# tunlab: route " << route.to_string()
                << " (wg-quick routes the peers' AllowedIPs only; add it with `tunlabctl "
                   "add-route`)\n";
        }
    }
    for (const auto& route : derived) {
        if (!contains(config.routes, route)) {
            out << "# tunlab: no route to " << route.to_string()
                << " (wg-quick routes every one of the peers' AllowedIPs)\n";
        }
    }
}

void peer_section(std::ostringstream& out, const PeerConfig& peer, Secrets secrets) {
    out << "\n[Peer]\n";
    if (peer.public_key) {
        out << "PublicKey = " << crypto::key_to_base64(*peer.public_key) << "\n";
    }
    secret_line(out, "PresharedKey", peer.preshared_key, secrets);
    if (peer.endpoint) {
        out << "Endpoint = " << peer.endpoint->to_string() << "\n";
    }
    if (!peer.allowed_ips.empty()) {
        out << "AllowedIPs = " << join(peer.allowed_ips) << "\n";
    }
    if (peer.keepalive_seconds != 0) {
        out << "PersistentKeepalive = " << peer.keepalive_seconds << "\n";
    }
}

}  // namespace

std::string wg_quick_from_tunnel_config(const TunnelConfig& config, Secrets secrets) {
    if (config.protocol != ProtocolKind::WireGuard) {
        throw ConfigError("protocol",
                          "wg-quick files are for protocol wireguard; this tunnel's is " +
                              std::string(to_string(config.protocol)));
    }
    // No routes where wg-quick would add some: what wg-quick's Table = off says.
    const bool routes_off =
        config.routes.empty() && !wg_quick_routes(config.peers, config.addresses).empty();
    std::ostringstream out;
    interface_section(out, config, secrets, routes_off);
    tunlab_comments(out, config, routes_off);
    for (const auto& peer : config.peers) {
        peer_section(out, peer, secrets);
    }
    return out.str();
}

}  // namespace tunlab
