#include "config/tunnel_config.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "crypto/encoding.hpp"
#include "util/printable.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

namespace {

using json = nlohmann::json;

std::string describe(const json& value) {
    switch (value.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::string:
            return "a string";
        case json::value_t::array:
            return "an array";
        case json::value_t::object:
            return "an object";
        default:
            return "a number";
    }
}

// Walks a JSON object, checking types and recording which keys were used so that a typo in a
// key name is reported instead of silently ignored.
class ObjectReader {
  public:
    ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
        if (!object_.is_object()) {
            throw ConfigError(path_.empty() ? "(top level)" : path_,
                              "expected an object, found " + describe(object_));
        }
    }

    std::string field(const std::string& key) const {
        // Quoted first: an unknown key may be megabytes long.
        return path_.empty() ? quote_input(key) : path_ + "." + quote_input(key);
    }

    const json* find(const std::string& key) {
        used_.insert(key);
        const auto found = object_.find(key);
        return found == object_.end() ? nullptr : &*found;
    }

    std::optional<std::string> string(const std::string& key) {
        const json* value = find(key);
        if (value == nullptr) {
            return std::nullopt;
        }
        if (!value->is_string()) {
            throw ConfigError(field(key), "expected a string, found " + describe(*value));
        }
        return value->get<std::string>();
    }

    std::optional<bool> boolean(const std::string& key) {
        const json* value = find(key);
        if (value == nullptr) {
            return std::nullopt;
        }
        if (!value->is_boolean()) {
            throw ConfigError(field(key), "expected true or false, found " + describe(*value));
        }
        return value->get<bool>();
    }

    std::optional<uint32_t> number(const std::string& key, uint32_t minimum, uint32_t maximum) {
        const json* value = find(key);
        if (value == nullptr) {
            return std::nullopt;
        }
        // Signed or unsigned: JSON built in code (the bus options) and busctl's integer types
        // carry a sign even for positive values.
        if (!value->is_number_integer() || value->get<int64_t>() < 0 ||
            value->get<uint64_t>() < minimum || value->get<uint64_t>() > maximum) {
            throw ConfigError(field(key), "expected a whole number from " +
                                              std::to_string(minimum) + " to " +
                                              std::to_string(maximum));
        }
        return static_cast<uint32_t>(value->get<uint64_t>());
    }

    // Calls `each(element, element_field)` for every element of an array of strings.
    template <typename Each>
    void strings(const std::string& key, Each&& each) {
        const json* value = find(key);
        if (value == nullptr) {
            return;
        }
        if (!value->is_array()) {
            throw ConfigError(field(key), "expected an array, found " + describe(*value));
        }
        for (size_t i = 0; i < value->size(); ++i) {
            const std::string element_field = field(key) + "[" + std::to_string(i) + "]";
            if (!(*value)[i].is_string()) {
                throw ConfigError(element_field,
                                  "expected a string, found " + describe((*value)[i]));
            }
            each((*value)[i].get<std::string>(), element_field);
        }
    }

    void reject_unknown_keys() const {
        for (const auto& [key, value] : object_.items()) {
            if (!used_.contains(key)) {
                throw ConfigError(field(key), "unknown setting");
            }
        }
    }

  private:
    const json& object_;
    std::string path_;
    std::set<std::string> used_;
};

bool is_valid_interface_name(const std::string& name) {
    // What the kernel accepts (dev_valid_name), plus at most one %d template.
    if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") {
        return false;
    }
    if (std::count(name.begin(), name.end(), '%') > 1 ||
        (name.find('%') != std::string::npos && name.find("%d") == std::string::npos)) {
        return false;
    }
    return std::none_of(name.begin(), name.end(), [](char c) {
        return c == '/' || c == ':' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
    });
}

}  // namespace

// Field names and problems quote the file or the bus (an unknown key, a bad value): printable()
// keeps a NUL or a newline in them from cutting or forging the message.
ConfigError::ConfigError(const std::string& field, const std::string& problem)
    : std::runtime_error(printable(field.empty() ? problem : quote_input(field) + ": " + problem,
                                   kMessageCharacters)),
      field_(quote_input(field)) {}

bool is_valid_tunnel_name(std::string_view name) {
    return !name.empty() && name.size() < IFNAMSIZ &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
           });
}

Prefix parse_prefix(const std::string& text, const std::string& field) {
    auto prefix = Prefix::parse(text);
    if (!prefix) {
        throw ConfigError(
            field, "'" + quote_input(text) + "' is not a CIDR prefix such as 192.168.60.0/24");
    }
    return *prefix;
}

InterfaceAddress parse_interface_address(const std::string& text, const std::string& field) {
    auto address = InterfaceAddress::parse(text);
    if (!address) {
        throw ConfigError(field, "'" + quote_input(text) +
                                     "' is not an address with prefix length, such as "
                                     "192.168.53.99/24");
    }
    return *address;
}

Endpoint parse_endpoint(const std::string& text, const std::string& field,
                        const IpAddress& listen_address) {
    std::string why;
    auto endpoint = Endpoint::parse(text, &why);
    if (!endpoint) {
        throw ConfigError(field, "'" + quote_input(text) + "': " + why);
    }
    if (endpoint->is_ipv6() && listen_address.family == Family::V4) {
        throw ConfigError(field, "an IPv6 endpoint needs an IPv6 listen_address (such as ::)");
    }
    return *endpoint;
}

crypto::PublicKey parse_public_key(const std::string& text, const std::string& field) {
    const auto key = crypto::key_from_base64(text);
    if (!key) {
        throw ConfigError(field, "'" + quote_input(text) +
                                     "' is not a key: 32 bytes in base64 (44 characters, as "
                                     "`tunlabctl genkey | tunlabctl pubkey` or `wg pubkey` print)");
    }
    return *key;
}

// A key file must be what `wg genkey > file` with umask 077 makes: a regular file that only
// its owner can read or write, and that owner the daemon's own user (or the file could be
// swapped by someone else). Like ssh with its private keys, anything looser is refused rather
// than read: a key others could read is no longer a secret.
std::string key_file_problem(const struct stat& status) {
    if (!S_ISREG(status.st_mode)) {
        return "is not a regular file";
    }
    if ((status.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
        return std::string("may be read or written by others (mode ") + mode +
               "): make it mode 600 (chmod 600)";
    }
    if (status.st_uid != ::geteuid()) {
        return "belongs to uid " + std::to_string(status.st_uid) + ", not to tunlabd's user (uid " +
               std::to_string(::geteuid()) + "): chown it";
    }
    return {};
}

namespace {

SharedSecret secret_from_base64(std::string_view text, const std::string& field) {
    crypto::SecretKey key;
    // Never quoted: the text is (meant to be) a secret.
    if (!crypto::key_from_base64(text, key.bytes())) {
        throw ConfigError(field,
                          "not a key: 32 bytes in base64 (44 characters, as `tunlabctl "
                          "genkey` or `wg genkey` print)");
    }
    return SharedSecret(std::move(key));
}

SharedSecret read_key_file(const std::filesystem::path& path, const std::string& field) {
    // The path is from a tunnel file (root's), and its end is what names the file: quoted at
    // much more length than a bus argument, still within a message's bound.
    const std::string quoted = "'" + printable(path.string(), kMessageCharacters / 2) + "'";
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    struct stat status {};
    if (!fd.valid() || ::fstat(fd.get(), &status) != 0) {
        throw ConfigError(field, quoted + " cannot be opened: " + std::strerror(errno));
    }
    if (const std::string problem = key_file_problem(status); !problem.empty()) {
        throw ConfigError(field, quoted + " " + problem);
    }
    // A key file is one line of 44 characters; a little more is whitespace, much more is not
    // a key file (and is not read whole).
    std::array<char, 130> buffer{};
    const ssize_t size = ::read(fd.get(), buffer.data(), buffer.size());
    std::string_view text(buffer.data(), size > 0 ? static_cast<size_t>(size) : 0);
    text = text.substr(0, text.find('\n'));
    const auto first = text.find_first_not_of(" \t\r");
    const auto last = text.find_last_not_of(" \t\r");
    const std::string_view key =
        first == std::string::npos ? std::string_view() : text.substr(first, last - first + 1);
    crypto::SecretKey secret;
    const bool decoded =
        size >= 0 && text.size() <= 128 && crypto::key_from_base64(key, secret.bytes());
    crypto::secure_wipe({reinterpret_cast<uint8_t*>(buffer.data()), buffer.size()});
    if (!decoded) {
        // Never quoted: the content is (meant to be) a secret.
        throw ConfigError(field, quoted +
                                     " does not hold a key: one line of 44 characters, 32 "
                                     "bytes in base64 (as `tunlabctl genkey` or `wg genkey` "
                                     "print)");
    }
    return SharedSecret(std::move(secret));
}

// A key given inline ("private_key", "preshared_key"), or as a file ("<key>_file"): which
// forms `context` takes, and the secret with the file it came from.
std::pair<SharedSecret, std::string> read_secret(ObjectReader& reader, const std::string& key,
                                                 const ParseContext& context) {
    const auto inline_text = reader.string(key);
    const auto file = reader.string(key + "_file");
    SharedSecret secret;
    if (inline_text) {
        if (context.keys == KeySource::Files) {
            throw ConfigError(reader.field(key),
                              "keys do not belong in this file, which others may read: put it "
                              "in a file of its own (mode 600, owned by tunlabd's user) and "
                              "name that file in " +
                                  key + "_file");
        }
        secret = secret_from_base64(*inline_text, reader.field(key));
    }
    if (file) {
        if (context.keys == KeySource::Inline) {
            throw ConfigError(reader.field(key + "_file"),
                              "tunlabd does not read key files named by a request: send the "
                              "key itself (" +
                                  key + ")");
        }
        if (file->empty()) {
            throw ConfigError(reader.field(key + "_file"), "must name a file");
        }
        if (context.keys == KeySource::Files) {
            const std::filesystem::path path(*file);
            secret = read_key_file(path.is_absolute() ? path : context.directory / path,
                                   reader.field(key + "_file"));
        }
    }
    return {std::move(secret), file.value_or("")};
}

}  // namespace

PeerConfig peer_config_from_json(const json& object, const std::string& path,
                                 const IpAddress& listen_address, ProtocolKind protocol,
                                 const ParseContext& context) {
    ObjectReader reader(object, path);
    PeerConfig peer;
    if (auto endpoint = reader.string("endpoint")) {
        peer.endpoint = parse_endpoint(*endpoint, reader.field("endpoint"), listen_address);
    }
    reader.strings("allowed_ips", [&](const std::string& text, const std::string& field) {
        peer.allowed_ips.push_back(parse_prefix(text, field));
    });
    peer.keepalive_seconds =
        static_cast<uint16_t>(reader.number("keepalive", 0, 65535).value_or(0));
    if (auto key = reader.string("public_key")) {
        peer.public_key = parse_public_key(*key, reader.field("public_key"));
    }
    std::tie(peer.preshared_key, peer.preshared_key_file) =
        read_secret(reader, "preshared_key", context);
    reader.reject_unknown_keys();
    if (protocol == ProtocolKind::WireGuard && !peer.public_key) {
        throw ConfigError(reader.field("public_key"),
                          "a wireguard peer is its public key: it must be given");
    }
    if (protocol != ProtocolKind::WireGuard &&
        (peer.public_key || !peer.preshared_key.empty() || !peer.preshared_key_file.empty())) {
        const char* field = peer.public_key                    ? "public_key"
                            : !peer.preshared_key_file.empty() ? "preshared_key_file"
                                                               : "preshared_key";
        throw ConfigError(reader.field(field),
                          "keys are for protocol wireguard; this tunnel's is plain");
    }
    return peer;
}

json peer_config_to_json(const PeerConfig& peer, Secrets secrets) {
    json entry;
    if (peer.endpoint) {
        entry["endpoint"] = peer.endpoint->to_string();
    }
    entry["allowed_ips"] = json::array();
    for (const auto& prefix : peer.allowed_ips) {
        entry["allowed_ips"].push_back(prefix.to_string());
    }
    entry["keepalive"] = peer.keepalive_seconds;
    if (peer.public_key) {
        entry["public_key"] = crypto::key_to_base64(*peer.public_key);
    }
    if (!peer.preshared_key_file.empty()) {
        entry["preshared_key_file"] = peer.preshared_key_file;
    }
    if (secrets == Secrets::Include && !peer.preshared_key.empty()) {
        entry["preshared_key"] = crypto::key_to_base64(peer.preshared_key.key().bytes());
    }
    return entry;
}

TunnelConfig tunnel_config_from_json(std::string_view name, const json& object,
                                     const ParseContext& context) {
    if (!is_valid_tunnel_name(name)) {
        throw ConfigError(
            "name", "'" + quote_input(name) + "' must be 1 to 15 letters, digits, '_' or '-'");
    }
    ObjectReader reader(object, "");
    TunnelConfig config;
    config.name = name;
    if (auto interface = reader.string("interface")) {
        if (!is_valid_interface_name(*interface)) {
            throw ConfigError("interface", "'" + quote_input(*interface) +
                                               "' is not a valid interface name (1 to 15 "
                                               "characters, no '/', ':' or spaces)");
        }
        config.interface = *interface;
    }
    if (auto mode = reader.string("mode")) {
        const auto named = device_mode_named(*mode);
        if (!named) {
            throw ConfigError("mode",
                              "'" + quote_input(*mode) + "' is neither \"tun\" nor \"tap\"");
        }
        config.mode = *named;
    }
    if (auto protocol = reader.string("protocol")) {
        const auto named = protocol_named(*protocol);
        if (!named) {
            throw ConfigError("protocol", "'" + quote_input(*protocol) +
                                              "' is neither \"plain\" nor \"wireguard\"");
        }
        config.protocol = *named;
    }
    const bool wireguard = config.protocol == ProtocolKind::WireGuard;
    if (wireguard && config.mode == DeviceMode::Tap) {
        throw ConfigError("mode",
                          "WireGuard carries IP packets only: protocol wireguard needs "
                          "mode tun");
    }
    reader.strings("addresses", [&](const std::string& text, const std::string& field) {
        config.addresses.push_back(parse_interface_address(text, field));
    });
    if (auto listen = reader.string("listen_address")) {
        auto address = IpAddress::parse(*listen);
        if (!address) {
            throw ConfigError("listen_address",
                              "'" + quote_input(*listen) + "' is not an IP address");
        }
        config.listen_address = *address;
    }
    config.listen_port = static_cast<uint16_t>(reader.number("listen_port", 0, 65535).value_or(0));
    // WireGuard has no learned peers: a peer is its public key.
    config.learn_peers = reader.boolean("learn_peers").value_or(!wireguard);
    if (wireguard && config.learn_peers) {
        throw ConfigError("learn_peers",
                          "a wireguard tunnel does not learn peers: a peer is its "
                          "public key");
    }
    config.max_learned_peers =
        reader.number("max_learned_peers", 0, 1'000'000).value_or(config.max_learned_peers);
    config.learned_peer_timeout_seconds = reader.number("learned_peer_timeout", 1, 86'400 * 7)
                                              .value_or(config.learned_peer_timeout_seconds);
    config.busy_poll_us = reader.number("busy_poll_us", 0, 1'000'000).value_or(0);
    reader.strings("routes", [&](const std::string& text, const std::string& field) {
        config.routes.push_back(parse_prefix(text, field));
    });
    if (const json* peers = reader.find("peers")) {
        if (!peers->is_array()) {
            throw ConfigError("peers", "expected an array, found " + describe(*peers));
        }
        std::map<Prefix, size_t> owner;
        std::map<crypto::PublicKey, size_t> keys;
        for (size_t i = 0; i < peers->size(); ++i) {
            const std::string path = "peers[" + std::to_string(i) + "]";
            config.peers.push_back(peer_config_from_json((*peers)[i], path, config.listen_address,
                                                         config.protocol, context));
            if (const auto& key = config.peers.back().public_key) {
                if (auto [slot, fresh] = keys.emplace(*key, i); !fresh) {
                    throw ConfigError(
                        path + ".public_key",
                        "is already peers[" + std::to_string(slot->second) + "]'s public key");
                }
            }
            const auto& allowed = config.peers.back().allowed_ips;
            for (size_t j = 0; j < allowed.size(); ++j) {
                if (auto [slot, fresh] = owner.emplace(allowed[j], i); !fresh) {
                    throw ConfigError(path + ".allowed_ips[" + std::to_string(j) + "]",
                                      allowed[j].to_string() + " is already allowed for peers[" +
                                          std::to_string(slot->second) + "]");
                }
            }
        }
    }
    const bool has_ipv6_address =
        std::any_of(config.addresses.begin(), config.addresses.end(),
                    [](const InterfaceAddress& a) { return a.address.family == Family::V6; });
    config.mtu =
        reader.number("mtu", has_ipv6_address ? kMinimumIpv6Mtu : kMinimumMtu, kMaximumMtu);
    std::tie(config.private_key, config.private_key_file) =
        read_secret(reader, "private_key", context);
    reader.reject_unknown_keys();
    if (wireguard && config.private_key.empty() && context.keys != KeySource::Inline) {
        throw ConfigError(context.keys == KeySource::Files ? "private_key_file" : "private_key",
                          "a wireguard tunnel needs its private key");
    }
    if (!wireguard && (!config.private_key.empty() || !config.private_key_file.empty())) {
        throw ConfigError(config.private_key_file.empty() ? "private_key" : "private_key_file",
                          "keys are for protocol wireguard; this tunnel's is plain");
    }
    return config;
}

json tunnel_config_to_json(const TunnelConfig& config, Secrets secrets) {
    json object;
    if (!config.interface.empty()) {
        object["interface"] = config.interface;
    }
    object["mode"] = to_string(config.mode);
    object["protocol"] = to_string(config.protocol);
    object["addresses"] = json::array();
    for (const auto& address : config.addresses) {
        object["addresses"].push_back(address.to_string());
    }
    if (config.mtu) {
        object["mtu"] = *config.mtu;
    }
    object["listen_address"] = config.listen_address.to_string();
    object["listen_port"] = config.listen_port;
    object["learn_peers"] = config.learn_peers;
    object["max_learned_peers"] = config.max_learned_peers;
    object["learned_peer_timeout"] = config.learned_peer_timeout_seconds;
    object["busy_poll_us"] = config.busy_poll_us;
    object["routes"] = json::array();
    for (const auto& route : config.routes) {
        object["routes"].push_back(route.to_string());
    }
    object["peers"] = json::array();
    for (const auto& peer : config.peers) {
        object["peers"].push_back(peer_config_to_json(peer, secrets));
    }
    if (!config.private_key_file.empty()) {
        object["private_key_file"] = config.private_key_file;
    }
    if (secrets == Secrets::Include && !config.private_key.empty()) {
        object["private_key"] = crypto::key_to_base64(config.private_key.key().bytes());
    }
    return object;
}

std::string json_error_without_content(const std::exception& error) {
    if (const auto* syntax = dynamic_cast<const json::parse_error*>(&error)) {
        return "syntax error at byte " + std::to_string(syntax->byte);
    }
    if (const auto* other = dynamic_cast<const json::exception*>(&error)) {
        return "unexpected JSON (error " + std::to_string(other->id) + ")";
    }
    return error.what();
}

TunnelConfig load_tunnel_config_file(const std::filesystem::path& path) {
    std::ifstream input(path);
    if (!input) {
        throw ConfigError("", "cannot be read");
    }
    json object;
    try {
        object = json::parse(input);
    } catch (const json::exception& error) {
        throw ConfigError("", "is not valid JSON: " + json_error_without_content(error));
    }
    const auto directory = path.has_parent_path() ? path.parent_path() : ".";
    return tunnel_config_from_json(path.stem().string(), object,
                                   ParseContext{KeySource::Files, directory});
}

}  // namespace tunlab
