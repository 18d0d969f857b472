#include "uapi/set_request.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <string>

#include "crypto/encoding.hpp"
#include "crypto/x25519.hpp"
#include "uapi/uapi_error.hpp"
#include "util/printable.hpp"

namespace tunlab::uapi {

namespace {

UapiError invalid(const std::string& message) {
    return UapiError(EINVAL, message);
}

template <typename Unsigned>
Unsigned parse_unsigned(std::string_view value, std::string_view key) {
    Unsigned number = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (value.empty() || error != std::errc() || end != value.data() + value.size()) {
        throw invalid(std::string(key) + ": '" + quote_input(value) + "' is not a number in range");
    }
    return number;
}

// Keys are never quoted: a private or preshared key must not reach the log, even a wrong one.
SharedSecret parse_secret(std::string_view value, std::string_view key) {
    crypto::SecretKey secret;
    if (!crypto::key_from_hex(value, secret.bytes())) {
        throw invalid(std::string(key) + ": not a key (64 hex digits)");
    }
    return SharedSecret(std::move(secret));
}

crypto::PublicKey parse_public_key(std::string_view value) {
    const auto key = crypto::key_from_hex(value);
    if (!key) {
        throw invalid("public_key: not a key (64 hex digits)");
    }
    return *key;
}

void require_true(std::string_view value, std::string_view key) {
    if (value != "true") {
        throw invalid(std::string(key) + ": '" + quote_input(value) + "' is not true");
    }
}

// Numeric only, as wireguard-go reads it (`wg` resolves names before it sends them): a name
// here would stall the control thread on DNS.
Endpoint parse_endpoint(std::string_view value) {
    const size_t colon = value.rfind(':');
    std::string_view host = colon == std::string_view::npos ? value : value.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    std::string why;
    const auto endpoint = IpAddress::parse(host) ? Endpoint::parse(value, &why) : std::nullopt;
    if (!endpoint) {
        throw invalid("endpoint: '" + quote_input(value) + "' is not an address:port");
    }
    return *endpoint;
}

SetRequest::AllowedIp parse_allowed_ip(std::string_view value) {
    SetRequest::AllowedIp allowed;
    if (!value.empty() && value.front() == '-') {
        allowed.remove = true;
        value.remove_prefix(1);
    }
    const auto prefix =
        value.find('/') == std::string_view::npos ? std::nullopt : Prefix::parse(value);
    if (!prefix) {
        throw invalid("allowed_ip: '" + quote_input(value) + "' is not a prefix");
    }
    allowed.prefix = *prefix;
    return allowed;
}

void parse_device_line(SetRequest& request, std::string_view key, std::string_view value) {
    if (key == "private_key") {
        request.private_key = parse_secret(value, key);
    } else if (key == "listen_port") {
        request.listen_port = parse_unsigned<uint16_t>(value, key);
    } else if (key == "fwmark") {
        if (parse_unsigned<uint32_t>(value, key) != 0) {
            throw UapiError(EOPNOTSUPP, "fwmark: tunlab does not mark its packets");
        }
    } else if (key == "replace_peers") {
        require_true(value, key);
        request.replace_peers = true;
    } else {
        throw invalid("invalid UAPI device key: " + quote_input(key));
    }
}

void parse_peer_line(SetRequest::PeerSection& peer, std::string_view key, std::string_view value) {
    if (key == "update_only") {
        require_true(value, key);
        peer.update_only = true;
    } else if (key == "remove") {
        require_true(value, key);
        peer.remove = true;
    } else if (key == "preshared_key") {
        peer.preshared_key = parse_secret(value, key);
    } else if (key == "endpoint") {
        peer.endpoint = parse_endpoint(value);
    } else if (key == "persistent_keepalive_interval") {
        peer.keepalive_seconds = parse_unsigned<uint16_t>(value, key);
    } else if (key == "replace_allowed_ips") {
        require_true(value, key);
        peer.replace_allowed_ips = true;
        peer.allowed_ips.clear();
    } else if (key == "allowed_ip") {
        peer.allowed_ips.push_back(parse_allowed_ip(value));
    } else if (key == "protocol_version") {
        if (value != "1") {
            throw invalid("protocol_version: '" + quote_input(value) + "' is not 1");
        }
    } else {
        throw invalid("invalid UAPI peer key: " + quote_input(key));
    }
}

// The peers of a configuration being edited: in their order, by public key, and who holds
// each allowed prefix (a prefix belongs to one peer: the cryptokey routing table).
class PeerEdit {
  public:
    explicit PeerEdit(std::vector<PeerConfig> peers) {
        for (auto& peer : peers) {
            const auto key = peer.public_key.value_or(crypto::PublicKey{});
            for (const auto& prefix : peer.allowed_ips) {
                owners_[prefix] = key;
            }
            slots_.emplace(key, order_.size());
            order_.push_back(std::move(peer));
        }
    }

    PeerConfig* find(const crypto::PublicKey& key) {
        const auto slot = slots_.find(key);
        return slot == slots_.end() ? nullptr : &*order_[slot->second];
    }

    PeerConfig& add(const crypto::PublicKey& key) {
        PeerConfig peer;
        peer.public_key = key;
        slots_.emplace(key, order_.size());
        return *order_.emplace_back(std::move(peer));
    }

    void remove(const crypto::PublicKey& key) {
        const auto slot = slots_.find(key);
        if (slot == slots_.end()) {
            return;
        }
        clear_allowed_ips(*order_[slot->second]);
        order_[slot->second].reset();
        slots_.erase(slot);
    }

    void clear_allowed_ips(PeerConfig& peer) {
        for (const auto& prefix : peer.allowed_ips) {
            owners_.erase(prefix);
        }
        peer.allowed_ips.clear();
    }

    void allow(PeerConfig& peer, const Prefix& prefix) {
        const auto owner = owners_.find(prefix);
        if (owner != owners_.end()) {
            if (owner->second == *peer.public_key) {
                return;
            }
            if (PeerConfig* holder = find(owner->second)) {
                std::erase(holder->allowed_ips, prefix);
            }
        }
        owners_[prefix] = *peer.public_key;
        peer.allowed_ips.push_back(prefix);
    }

    void disallow(PeerConfig& peer, const Prefix& prefix) {
        if (std::erase(peer.allowed_ips, prefix) > 0) {
            owners_.erase(prefix);
        }
    }

    std::vector<PeerConfig> result() && {
        std::vector<PeerConfig> peers;
        peers.reserve(slots_.size());
        for (auto& peer : order_) {
            if (peer) {
                peers.push_back(std::move(*peer));
            }
        }
        return peers;
    }

  private:
    std::vector<std::optional<PeerConfig>> order_;
    std::map<crypto::PublicKey, size_t> slots_;
    std::map<Prefix, crypto::PublicKey> owners_;
};

void apply_peer_section(PeerEdit& peers, const SetRequest::PeerSection& section) {
    if (section.remove) {
        peers.remove(section.public_key);
        return;
    }
    PeerConfig* peer = peers.find(section.public_key);
    if (peer == nullptr) {
        if (section.update_only) {
            return;
        }
        peer = &peers.add(section.public_key);
    }
    if (section.preshared_key) {
        peer->preshared_key =
            section.preshared_key->key().is_zero() ? SharedSecret() : *section.preshared_key;
        peer->preshared_key_file.clear();
    }
    if (section.endpoint) {
        peer->endpoint = section.endpoint;
    }
    if (section.keepalive_seconds) {
        peer->keepalive_seconds = *section.keepalive_seconds;
    }
    if (section.replace_allowed_ips) {
        peers.clear_allowed_ips(*peer);
    }
    for (const auto& allowed : section.allowed_ips) {
        if (allowed.remove) {
            peers.disallow(*peer, allowed.prefix);
        } else {
            peers.allow(*peer, allowed.prefix);
        }
    }
}

}  // namespace

SetRequest parse_set_request(const std::vector<std::string_view>& lines) {
    SetRequest request;
    for (const std::string_view line : lines) {
        const size_t equals = line.find('=');
        if (equals == std::string_view::npos) {
            throw UapiError(EPROTO, "a line without '=': '" + quote_input(line) + "'");
        }
        const std::string_view key = line.substr(0, equals);
        const std::string_view value = line.substr(equals + 1);
        if (key == "public_key") {
            request.peers.push_back({});
            request.peers.back().public_key = parse_public_key(value);
        } else if (request.peers.empty()) {
            parse_device_line(request, key, value);
        } else {
            parse_peer_line(request.peers.back(), key, value);
        }
    }
    return request;
}

TunnelConfig apply_set_request(const TunnelConfig& current, const SetRequest& request) {
    TunnelConfig next = current;
    if (request.private_key) {
        if (request.private_key->key().is_zero()) {
            throw invalid("private_key: a wireguard tunnel cannot be without a private key");
        }
        if (!(next.private_key == *request.private_key)) {
            next.private_key = *request.private_key;
            next.private_key_file.clear();
        }
    }
    if (request.listen_port) {
        next.listen_port = *request.listen_port;
    }
    const crypto::PublicKey own = crypto::public_key_of(next.private_key.key());
    PeerEdit peers(request.replace_peers ? std::vector<PeerConfig>{} : std::move(next.peers));
    for (const auto& section : request.peers) {
        if (section.public_key != own) {  // as wireguard-go: ourselves is no peer
            apply_peer_section(peers, section);
        }
    }
    next.peers = std::move(peers).result();
    return next;
}

}  // namespace tunlab::uapi
