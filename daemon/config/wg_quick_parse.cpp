// wg-quick text → a tunnel's JSON (see wg_quick.hpp). The grammar is wg(8)'s ("CONFIGURATION
// FILE FORMAT") plus the keys wg-quick(8) adds to [Interface]: sections and keys are
// case-insensitive, '#' starts a comment anywhere, lists are comma-separated, and repeated
// Address / AllowedIPs lines add up.
#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "config/wg_quick.hpp"
#include "crypto/encoding.hpp"
#include "crypto/secret_key.hpp"

namespace tunlab {

WgQuickError::WgQuickError(size_t line, const std::string& problem)
    : std::runtime_error(line == 0 ? problem : "line " + std::to_string(line) + ": " + problem),
      line_(line),
      problem_(problem) {}

namespace {

using json = nlohmann::json;

enum class Section { None, Interface, Peer, Unknown };

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\f\v");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r\f\v");
    return text.substr(first, last - first + 1);
}

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return result;
}

// The items of a comma-separated list, trimmed; empty items (a trailing comma) are skipped,
// as wg does.
std::vector<std::string_view> split_list(std::string_view value) {
    std::vector<std::string_view> items;
    size_t start = 0;
    while (start <= value.size()) {
        const size_t comma = std::min(value.find(',', start), value.size());
        if (const auto item = trim(value.substr(start, comma - start)); !item.empty()) {
            items.push_back(item);
        }
        start = comma + 1;
    }
    return items;
}

// How a note or an error names a key (or section) that is not wg-quick's. Only what looks
// like a name is repeated: a line that is a pasted key ("yAnz…Bmk=") reads as key "yAnz…Bmk"
// with an empty value, and that must not reach a log.
std::string key_name(std::string_view key) {
    constexpr size_t kLongestName = 24;  // "PersistentKeepalive" and the like; a key is 43
    const bool name_like =
        !key.empty() && key.size() <= kLongestName &&
        std::all_of(key.begin(), key.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ' ';
        });
    return name_like ? "'" + std::string(key) + "'" : "a key that is no name";
}

std::string ordinal(size_t index) {
    return "item " + std::to_string(index + 1);
}

std::optional<uint32_t> whole_number(std::string_view text, uint32_t maximum) {
    if (text.empty() || text.size() > 10 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    const uint64_t value = std::stoull(std::string(text));
    return value <= maximum ? std::optional<uint32_t>(static_cast<uint32_t>(value)) : std::nullopt;
}

// Whether `text` has the form of an endpoint ("host:port", "[IPv6]:port"). The host is not
// resolved here (that is for whoever runs the tunnel: the daemon, once, at load).
bool looks_like_endpoint(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return false;
    }
    const auto port = whole_number(text.substr(colon + 1), 65535);
    const auto host = text.substr(0, colon);
    if (!port || *port == 0) {
        return false;
    }
    if (host.front() == '[') {
        return host.size() > 2 && host.back() == ']';
    }
    // An IPv6 address needs its brackets, or the port could not be told from it.
    return host.find(':') == std::string_view::npos &&
           std::none_of(host.begin(), host.end(),
                        [](char c) { return static_cast<unsigned char>(c) <= ' '; });
}

bool valid_key(std::string_view text) {
    crypto::SecretKey scratch;  // locked memory: the text may be a secret
    return crypto::key_from_base64(text, scratch.bytes());
}

constexpr const char* kKeyForm =
    "not a key: 32 bytes in base64 (44 characters, as `wg genkey`, `wg pubkey` and `wg genpsk` "
    "print)";

// What wg-quick does with a key tunlab does not do, in a note.
std::optional<std::string> unsupported_interface_key(const std::string& key) {
    if (key == "dns") {
        return "DNS is not supported by tunlab (it sets no resolver); ignored";
    }
    if (key == "preup" || key == "postup" || key == "predown" || key == "postdown") {
        static const std::map<std::string, std::string> names = {{"preup", "PreUp"},
                                                                 {"postup", "PostUp"},
                                                                 {"predown", "PreDown"},
                                                                 {"postdown", "PostDown"}};
        return names.at(key) + " is not supported by tunlab (it runs no commands); ignored";
    }
    if (key == "saveconfig") {
        return "SaveConfig is not supported by tunlab; ignored (tunlabd saves every change made "
               "over D-Bus itself)";
    }
    if (key == "fwmark") {
        return "FwMark is not supported by tunlab (its socket has no firewall mark); ignored";
    }
    return std::nullopt;
}

class Parser {
  public:
    explicit Parser(std::string_view name) {
        tunnel_["protocol"] = "wireguard";
        tunnel_["interface"] = std::string(name);
    }

    void line(size_t number, std::string_view text) {
        if (text.size() > kWgQuickMaximumLine) {
            throw WgQuickError(
                number, "is longer than " + std::to_string(kWgQuickMaximumLine) + " characters");
        }
        text = trim(text.substr(0, text.find('#')));
        if (text.empty()) {
            return;
        }
        if (text.front() == '[') {
            section_line(number, text);
            return;
        }
        const auto equals = text.find('=');
        if (equals == std::string_view::npos) {
            throw WgQuickError(number, "expected a section ([Interface], [Peer]) or Key = value");
        }
        const std::string_view key = trim(text.substr(0, equals));
        const std::string_view value = trim(text.substr(equals + 1));
        if (key.empty()) {
            throw WgQuickError(number, "expected Key = value: the key is missing");
        }
        switch (section_) {
            case Section::None:
                throw WgQuickError(number, key_name(key) +
                                               " is outside any section: the file must start "
                                               "with [Interface] (or [Peer])");
            case Section::Interface:
                interface_key(number, key, value);
                break;
            case Section::Peer:
                peer_key(number, key, value);
                break;
            case Section::Unknown:
                break;  // the section's note covers its keys
        }
    }

    WgQuickTunnel finish() {
        finish_peer();
        if (!interface_line_) {
            throw WgQuickError(0, "has no [Interface] section");
        }
        std::vector<PeerConfig> peers;  // just what routing needs
        for (const auto& peer : peers_) {
            PeerConfig config;
            config.allowed_ips = peer.allowed_ips;
            peers.push_back(std::move(config));
        }
        json routes = json::array();
        if (add_routes_) {
            for (const auto& route : wg_quick_routes(peers, addresses_)) {
                routes.push_back(route.to_string());
            }
        }
        tunnel_["routes"] = std::move(routes);
        json addresses = json::array();
        for (const auto& address : addresses_) {
            addresses.push_back(address.to_string());
        }
        tunnel_["addresses"] = std::move(addresses);
        if (mtu_) {
            const bool ipv6 = std::any_of(addresses_.begin(), addresses_.end(), [](const auto& a) {
                return a.address.family == Family::V6;
            });
            const uint32_t minimum = ipv6 ? kMinimumIpv6Mtu : kMinimumMtu;
            if (mtu_->second < minimum) {
                throw WgQuickError(mtu_->first, "MTU: must be from " + std::to_string(minimum) +
                                                    " to " + std::to_string(kMaximumMtu) +
                                                    (ipv6 ? " with an IPv6 Address" : ""));
            }
            tunnel_["mtu"] = mtu_->second;
        }
        json peers_json = json::array();
        for (auto& peer : peers_) {
            peers_json.push_back(std::move(peer.settings));
        }
        tunnel_["peers"] = std::move(peers_json);
        return {std::move(tunnel_), std::move(notes_)};
    }

  private:
    struct Peer {
        size_t line = 0;
        json settings = json::object();
        std::vector<Prefix> allowed_ips;
    };

    void note(size_t line, std::string text) { notes_.push_back({line, std::move(text)}); }

    void section_line(size_t number, std::string_view text) {
        if (text.back() != ']') {
            throw WgQuickError(number, "a section name must end with ']'");
        }
        finish_peer();
        const std::string name = lower(trim(text.substr(1, text.size() - 2)));
        if (name == "interface") {
            section_ = Section::Interface;
            interface_line_ = interface_line_.value_or(number);
        } else if (name == "peer") {
            section_ = Section::Peer;
            peer_ = Peer{number, json::object(), {}};
            peer_seen_.clear();
        } else {
            section_ = Section::Unknown;
            note(number, "section " + key_name(trim(text.substr(1, text.size() - 2))) +
                             " is not [Interface] or [Peer]; it and its settings are ignored");
        }
    }

    // A key that may be given once per section: its second line is an error rather than
    // a silent choice between the two.
    void once(size_t number, std::string_view key, const std::string& lowered) {
        auto& seen = section_ == Section::Peer ? peer_seen_ : interface_seen_;
        if (auto [slot, fresh] = seen.emplace(lowered, number); !fresh) {
            throw WgQuickError(number, std::string(key) + " is given twice (also on line " +
                                           std::to_string(slot->second) + ")");
        }
    }

    // A secret key (PrivateKey, PresharedKey): once per section, in the one base64 form.
    std::string secret_key(size_t number, std::string_view key, const std::string& lowered,
                           std::string_view value) {
        once(number, key, lowered);
        if (!valid_key(value)) {
            throw WgQuickError(number, std::string(key) + ": " + kKeyForm);
        }
        return std::string(value);
    }

    void interface_key(size_t number, std::string_view key, std::string_view value) {
        const std::string name = lower(key);
        if (name == "privatekey") {
            tunnel_["private_key"] = secret_key(number, "PrivateKey", name, value);
        } else if (name == "listenport") {
            once(number, "ListenPort", name);
            const auto port = whole_number(value, 65535);
            if (!port) {
                throw WgQuickError(number, "ListenPort: expected a port number from 0 to 65535");
            }
            tunnel_["listen_port"] = *port;
        } else if (name == "address") {
            const auto items = split_list(value);
            for (size_t i = 0; i < items.size(); ++i) {
                const auto address = InterfaceAddress::parse(items[i]);
                if (!address) {
                    throw WgQuickError(number, "Address: " + ordinal(i) +
                                                   " is not an address such as 10.7.0.2/24 "
                                                   "or fd00:7::2/64");
                }
                addresses_.push_back(*address);
            }
        } else if (name == "mtu") {
            once(number, "MTU", name);
            const auto mtu = whole_number(value, kMaximumMtu);
            if (!mtu || *mtu < kMinimumMtu) {
                throw WgQuickError(number, "MTU: must be from " + std::to_string(kMinimumMtu) +
                                               " to " + std::to_string(kMaximumMtu));
            }
            mtu_ = {number, *mtu};
        } else if (name == "table") {
            once(number, "Table", name);
            const std::string table = lower(value);
            if (table == "off") {
                add_routes_ = false;  // as wg-quick: no routes at all
            } else if (table != "auto") {
                note(number,
                     "Table is not supported by tunlab: routes go into the main table, as with "
                     "Table = auto");
            }
        } else if (auto unsupported = unsupported_interface_key(name)) {
            note(number, *unsupported);
        } else if (is_peer_key(name)) {
            throw WgQuickError(number, key_name(key) + " belongs in a [Peer] section");
        } else {
            note(number, key_name(key) + " is not a wg-quick setting; ignored");
        }
    }

    static bool is_peer_key(const std::string& name) {
        return name == "publickey" || name == "presharedkey" || name == "endpoint" ||
               name == "allowedips" || name == "persistentkeepalive";
    }

    void peer_key(size_t number, std::string_view key, std::string_view value) {
        const std::string name = lower(key);
        json& peer = peer_->settings;
        if (name == "publickey") {
            once(number, "PublicKey", name);
            const auto public_key = crypto::key_from_base64(value);
            if (!public_key) {
                throw WgQuickError(number, std::string("PublicKey: ") + kKeyForm);
            }
            if (auto [slot, fresh] = public_keys_.emplace(*public_key, peer_->line); !fresh) {
                throw WgQuickError(number, "PublicKey: is already the key of the peer on line " +
                                               std::to_string(slot->second));
            }
            peer["public_key"] = std::string(value);
        } else if (name == "presharedkey") {
            peer["preshared_key"] = secret_key(number, "PresharedKey", name, value);
        } else if (name == "endpoint") {
            once(number, "Endpoint", name);
            if (!looks_like_endpoint(value)) {
                throw WgQuickError(number,
                                   "Endpoint: expected host:port or [IPv6]:port, such as "
                                   "vpn.example.org:51820");
            }
            peer["endpoint"] = std::string(value);
        } else if (name == "allowedips") {
            const auto items = split_list(value);
            for (size_t i = 0; i < items.size(); ++i) {
                const auto prefix = Prefix::parse(items[i]);
                if (!prefix) {
                    throw WgQuickError(number, "AllowedIPs: " + ordinal(i) +
                                                   " is not a prefix such as 10.7.0.0/24");
                }
                add_allowed_ip(number, i, *prefix);
            }
        } else if (name == "persistentkeepalive") {
            once(number, "PersistentKeepalive", name);
            const auto seconds =
                lower(value) == "off" ? std::optional<uint32_t>(0) : whole_number(value, 65535);
            if (!seconds) {
                throw WgQuickError(number,
                                   "PersistentKeepalive: expected seconds from 0 to 65535, or "
                                   "off");
            }
            peer["keepalive"] = *seconds;
        } else if (name == "privatekey" || name == "listenport" || name == "address" ||
                   name == "mtu" || name == "table" || unsupported_interface_key(name)) {
            throw WgQuickError(number, key_name(key) + " belongs in the [Interface] section");
        } else {
            note(number, key_name(key) + " is not a wg-quick setting; ignored");
        }
    }

    void add_allowed_ip(size_t number, size_t index, const Prefix& prefix) {
        auto& mine = peer_->allowed_ips;
        if (std::find(mine.begin(), mine.end(), prefix) != mine.end()) {
            return;  // the same prefix twice in one peer is one prefix, as in wg
        }
        if (auto [slot, fresh] = allowed_owner_.emplace(prefix, peer_->line); !fresh) {
            throw WgQuickError(number, "AllowedIPs: " + ordinal(index) +
                                           " is already allowed for the peer on line " +
                                           std::to_string(slot->second) +
                                           " (two peers may not share one)");
        }
        if (prefix.length == 0) {
            note(number, "AllowedIPs: no route is added for " + prefix.to_string() +
                             ": wg-quick routes a /0 with policy routing (a table of its own "
                             "and a firewall mark), which tunlab does not do; the allowed IP "
                             "is kept");
        }
        mine.push_back(prefix);
    }

    void finish_peer() {
        if (!peer_) {
            return;
        }
        if (!peer_->settings.contains("public_key")) {
            throw WgQuickError(peer_->line,
                               "[Peer] has no PublicKey: a WireGuard peer is its public key");
        }
        json allowed = json::array();
        for (const auto& prefix : peer_->allowed_ips) {
            allowed.push_back(prefix.to_string());
        }
        peer_->settings["allowed_ips"] = std::move(allowed);
        peers_.push_back(std::move(*peer_));
        peer_.reset();
    }

    json tunnel_ = json::object();
    std::vector<WgQuickNote> notes_;
    Section section_ = Section::None;
    // Single keys → their line: the interface's (over every [Interface] section), this peer's.
    std::map<std::string, size_t> interface_seen_;
    std::map<std::string, size_t> peer_seen_;
    std::optional<size_t> interface_line_;
    std::vector<InterfaceAddress> addresses_;
    std::optional<std::pair<size_t, uint32_t>> mtu_;  // its line, its value
    bool add_routes_ = true;
    std::optional<Peer> peer_;  // the [Peer] being read
    std::vector<Peer> peers_;
    std::map<crypto::PublicKey, size_t> public_keys_;  // → the line of its [Peer]
    std::map<Prefix, size_t> allowed_owner_;           // → the line of its [Peer]
};

bool covered_by(const Prefix& prefix, const InterfaceAddress& address) {
    return prefix.address.family == address.address.family && address.length <= prefix.length &&
           prefix.address.masked(address.length) == address.address.masked(address.length);
}

}  // namespace

std::vector<Prefix> wg_quick_routes(const std::vector<PeerConfig>& peers,
                                    const std::vector<InterfaceAddress>& addresses) {
    // wg-quick adds `ip route add PREFIX dev IF` for each allowed IP unless a route on the
    // link already matches it, as the one an Address brings does; a /0 it routes with policy
    // routing instead.
    std::vector<Prefix> routes;
    for (const auto& peer : peers) {
        for (const auto& prefix : peer.allowed_ips) {
            const bool on_link = std::any_of(addresses.begin(), addresses.end(),
                                             [&](const auto& a) { return covered_by(prefix, a); });
            if (prefix.length != 0 && !on_link &&
                std::find(routes.begin(), routes.end(), prefix) == routes.end()) {
                routes.push_back(prefix);
            }
        }
    }
    return routes;
}

WgQuickTunnel wg_quick_to_json(std::string_view name, std::string_view text) {
    if (text.size() > kWgQuickMaximumBytes) {
        throw WgQuickError(0, "is larger than " +
                                  std::to_string(kWgQuickMaximumBytes / 1024 / 1024) +
                                  " MiB: not a wg-quick file");
    }
    Parser parser(name);
    size_t number = 0;
    size_t start = 0;
    while (start < text.size()) {
        const size_t end = std::min(text.find('\n', start), text.size());
        parser.line(++number, text.substr(start, end - start));
        start = end + 1;
    }
    return parser.finish();
}

TunnelConfig wg_quick_to_tunnel_config(std::string_view name, std::string_view text,
                                       std::vector<WgQuickNote>* notes) {
    WgQuickTunnel parsed = wg_quick_to_json(name, text);
    if (!parsed.tunnel.contains("private_key")) {
        throw WgQuickError(0, "[Interface] has no PrivateKey: a tunnel needs its private key");
    }
    if (notes != nullptr) {
        *notes = std::move(parsed.notes);
    }
    // Keys inline, as in the saved state: the caller has checked who may read the text.
    return tunnel_config_from_json(name, parsed.tunnel, ParseContext{KeySource::Saved, {}});
}

}  // namespace tunlab
