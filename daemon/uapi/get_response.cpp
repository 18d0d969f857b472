#include "uapi/get_response.hpp"

#include "crypto/encoding.hpp"

namespace tunlab::uapi {

namespace {

void line(std::string& out, std::string_view key, std::string_view value) {
    out.append(key);
    out.push_back('=');
    out.append(value);
    out.push_back('\n');
}

void line(std::string& out, std::string_view key, uint64_t value) {
    line(out, key, std::to_string(value));
}

// Hex of a secret goes straight into `out`, leaving no copy behind in a temporary.
void secret_line(std::string& out, std::string_view key, const SharedSecret& secret) {
    static constexpr char kDigits[] = "0123456789abcdef";
    out.append(key);
    out.push_back('=');
    for (size_t index = 0; index < crypto::kKeySize; ++index) {
        const uint8_t byte = secret.empty() ? 0 : secret.key().bytes()[index];
        out.push_back(kDigits[byte >> 4]);
        out.push_back(kDigits[byte & 0xf]);
    }
    out.push_back('\n');
}

}  // namespace

std::string get_response(const Tunnel& tunnel) {
    const auto views = tunnel.peers();
    std::string out;
    out.reserve(128 + views->size() * 512);
    if (!tunnel.private_key().empty()) {
        secret_line(out, "private_key", tunnel.private_key());
    }
    line(out, "listen_port", tunnel.listen_port());
    for (const auto& view : *views) {
        const PeerConfig& peer = view->config;
        if (view->learned || !peer.public_key) {
            continue;
        }
        line(out, "public_key", crypto::to_hex(*peer.public_key));
        secret_line(out, "preshared_key", peer.preshared_key);
        line(out, "protocol_version", 1);
        if (peer.endpoint) {
            line(out, "endpoint", peer.endpoint->to_string());
        }
        const uint64_t handshake_us = view->peer->latest_handshake_us.read();
        line(out, "last_handshake_time_sec", handshake_us / 1'000'000);
        line(out, "last_handshake_time_nsec", handshake_us % 1'000'000 * 1000);
        line(out, "tx_bytes", view->peer->counters.tx_bytes.read());
        line(out, "rx_bytes", view->peer->counters.rx_bytes.read());
        line(out, "persistent_keepalive_interval", peer.keepalive_seconds);
        for (const auto& prefix : peer.allowed_ips) {
            line(out, "allowed_ip", prefix.to_string());
        }
    }
    out.append("errno=0\n\n");
    return out;
}

}  // namespace tunlab::uapi
