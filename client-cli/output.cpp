#include "output.hpp"

#include <chrono>
#include <cstdio>
#include <sstream>

namespace tunlabctl {

namespace {

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string joined;
    for (const auto& item : items) {
        if (!joined.empty()) {
            joined += separator;
        }
        joined += item;
    }
    return joined.empty() ? "-" : joined;
}

uint64_t counter(const Counters& counters, const std::string& name) {
    const auto found = counters.find(name);
    return found == counters.end() ? 0 : found->second;
}

std::string traffic(const Counters& counters) {
    std::ostringstream text;
    text << "rx " << counter(counters, "rx_packets") << " packets ("
         << human_bytes(static_cast<double>(counter(counters, "rx_bytes"))) << "), tx "
         << counter(counters, "tx_packets") << " packets ("
         << human_bytes(static_cast<double>(counter(counters, "tx_bytes"))) << ")";
    return text.str();
}

}  // namespace

std::string human_bytes(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t unit = 0;
    while (bytes >= 1024 && unit + 1 < std::size(units)) {
        bytes /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
    return text;
}

std::string time_ago(uint64_t microseconds_since_epoch) {
    if (microseconds_since_epoch == 0) {
        return "never";
    }
    using namespace std::chrono;
    const auto now = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
    const double seconds = static_cast<double>(static_cast<int64_t>(now) -
                                               static_cast<int64_t>(microseconds_since_epoch)) /
                           1e6;
    char text[32];
    std::snprintf(text, sizeof text, "%.1fs ago", seconds < 0 ? 0.0 : seconds);
    return text;
}

std::string handshake_ago(uint64_t microseconds_since_epoch) {
    if (microseconds_since_epoch == 0) {
        return "never";
    }
    using namespace std::chrono;
    const auto now = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
    const int64_t elapsed =
        (static_cast<int64_t>(now) - static_cast<int64_t>(microseconds_since_epoch)) / 1'000'000;
    if (elapsed <= 0) {
        return "now";
    }
    // As `wg show` says it: "1 minute, 3 seconds ago".
    const std::pair<int64_t, const char*> units[] = {
        {86400 * 365, "year"}, {86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    std::string text;
    int64_t left = elapsed;
    for (const auto& [size, unit] : units) {
        if (left >= size) {
            const int64_t count = left / size;
            left %= size;
            text += (text.empty() ? "" : ", ") + std::to_string(count) + " " + unit +
                    (count == 1 ? "" : "s");
        }
    }
    return text + " ago";
}

std::string describe_counters(const Counters& counters) {
    std::string text = traffic(counters);
    std::string drops;
    for (const auto& [name, value] : counters) {
        if (name.rfind("drop_", 0) == 0 && value > 0) {
            drops += (drops.empty() ? "" : ", ") + name.substr(5) + " " + std::to_string(value);
        }
    }
    if (counter(counters, "rx_keepalives") > 0) {
        text += ", keepalives " + std::to_string(counter(counters, "rx_keepalives"));
    }
    return text + "; drops: " + (drops.empty() ? "none" : drops);
}

std::string describe_tunnel(const TunnelInfo& tunnel, const std::vector<PeerInfo>& peers) {
    std::ostringstream text;
    text << "tunnel " << tunnel.name << ": " << tunnel.state << "\n"
         << "  interface   " << tunnel.interface << " (" << tunnel.mode << ", MTU " << tunnel.mtu
         << ")\n"
         << "  listening   " << tunnel.listen_address << " port " << tunnel.listen_port << " ("
         << tunnel.protocol << ")\n";
    if (!tunnel.public_key.empty()) {
        text << "  public key  " << tunnel.public_key << "\n";
    }
    text << "  addresses   " << join(tunnel.addresses) << "\n"
         << "  routes      " << join(tunnel.routes) << "\n"
         << "  traffic     " << describe_counters(tunnel.counters) << "\n";
    for (const auto& peer : peers) {
        const auto id = peer.path.substr(peer.path.rfind('/') + 1);
        text << "  peer " << id << (peer.learned ? " (learned)" : "") << "\n";
        if (!peer.public_key.empty()) {
            text << "    public key    " << peer.public_key
                 << (peer.has_preshared_key ? " (with a preshared key)" : "") << "\n";
        }
        text << "    endpoint      " << (peer.endpoint.empty() ? "(unknown)" : peer.endpoint)
             << "\n"
             << "    allowed ips   " << join(peer.allowed_ips) << "\n";
        if (!peer.public_key.empty()) {
            text << "    handshake     " << handshake_ago(peer.latest_handshake_us) << "\n"
                 << "    transfer      "
                 << human_bytes(static_cast<double>(counter(peer.counters, "rx_bytes")))
                 << " received, "
                 << human_bytes(static_cast<double>(counter(peer.counters, "tx_bytes")))
                 << " sent\n";
        } else {
            text << "    traffic       " << traffic(peer.counters) << "\n";
        }
        text << "    last receive  " << time_ago(peer.last_receive_us) << ", last send "
             << time_ago(peer.last_send_us) << "\n";
        if (peer.keepalive > 0) {
            text << "    keepalive     every " << peer.keepalive << "s\n";
        }
    }
    return text.str();
}

nlohmann::json to_json(const PeerInfo& peer) {
    return {
        {"path", peer.path},
        {"endpoint",
         peer.endpoint.empty() ? nlohmann::json(nullptr) : nlohmann::json(peer.endpoint)},
        {"allowed_ips", peer.allowed_ips},
        {"keepalive", peer.keepalive},
        {"learned", peer.learned},
        {"last_receive", peer.last_receive_us},
        {"last_send", peer.last_send_us},
        {"counters", peer.counters},
        {"public_key", peer.public_key},
        {"has_preshared_key", peer.has_preshared_key},
        {"latest_handshake", peer.latest_handshake_us},
    };
}

nlohmann::json to_json(const TunnelInfo& tunnel, const std::vector<PeerInfo>& peers) {
    nlohmann::json peer_list = nlohmann::json::array();
    for (const auto& peer : peers) {
        peer_list.push_back(to_json(peer));
    }
    return {
        {"path", tunnel.path},
        {"name", tunnel.name},
        {"interface", tunnel.interface},
        {"mode", tunnel.mode},
        {"protocol", tunnel.protocol},
        {"public_key", tunnel.public_key},
        {"listen_address", tunnel.listen_address},
        {"listen_port", tunnel.listen_port},
        {"mtu", tunnel.mtu},
        {"state", tunnel.state},
        {"addresses", tunnel.addresses},
        {"routes", tunnel.routes},
        {"counters", tunnel.counters},
        {"peers", std::move(peer_list)},
    };
}

}  // namespace tunlabctl
