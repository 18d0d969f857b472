#include "wg_quick_commands.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "config/tunnel_config.hpp"
#include "config/wg_quick.hpp"
#include "crypto/encoding.hpp"
#include "crypto/secret_key.hpp"
#include "uapi_keys.hpp"

namespace tunlabctl {

namespace {

using json = nlohmann::json;

// The text of the file, read no further than one byte past what a wg-quick file may be; it
// holds keys, so it is wiped when done with.
struct FileText {
    std::string text;
    ~FileText() {
        tunlab::crypto::secure_wipe({reinterpret_cast<uint8_t*>(text.data()), text.size()});
    }
};

void read_bounded(std::istream& in, std::string& text) {
    // Reserved whole, so that it is never moved (leaving a copy of a key behind).
    text.reserve(tunlab::kWgQuickMaximumBytes + 1);
    char chunk[4096];
    while (text.size() <= tunlab::kWgQuickMaximumBytes && in) {
        in.read(chunk, static_cast<std::streamsize>(sizeof chunk));
        text.append(chunk, static_cast<size_t>(in.gcount()));
    }
    tunlab::crypto::secure_wipe({reinterpret_cast<uint8_t*>(chunk), sizeof chunk});
}

// The tunnel's JSON as the a{sv} options of CreateTunnel (the same keys, see
// docs/dbus-api.md): strings, whole numbers, string arrays and the peers' aa{sv}.
Options to_options(const json& object);

sdbus::Variant to_variant(const json& value) {
    if (value.is_string()) {
        return sdbus::Variant(value.get<std::string>());
    }
    if (value.is_number_unsigned()) {
        return sdbus::Variant(value.get<uint32_t>());
    }
    if (value.is_array() && !value.empty() && value.front().is_object()) {
        std::vector<Options> maps;
        for (const auto& element : value) {
            maps.push_back(to_options(element));
        }
        return sdbus::Variant(maps);
    }
    return sdbus::Variant(value.get<std::vector<std::string>>());
}

Options to_options(const json& object) {
    Options options;
    for (const auto& [key, value] : object.items()) {
        if (!(value.is_array() && value.empty())) {
            options[key] = to_variant(value);
        }
    }
    return options;
}

// What the bus says of a tunnel, as the JSON of a tunnel file; with the keys, if given.
json tunnel_json(const TunnelInfo& tunnel, const std::vector<PeerInfo>& peers) {
    json object = {{"interface", tunnel.interface},
                   {"protocol", tunnel.protocol},
                   {"mode", tunnel.mode},
                   {"addresses", tunnel.addresses},
                   {"mtu", tunnel.mtu},
                   {"listen_address", tunnel.listen_address},
                   {"listen_port", tunnel.listen_port},
                   {"routes", tunnel.routes},
                   {"peers", json::array()}};
    for (const auto& peer : peers) {
        json entry = {{"allowed_ips", peer.allowed_ips}, {"keepalive", peer.keepalive}};
        if (!peer.public_key.empty()) {
            entry["public_key"] = peer.public_key;
        }
        if (!peer.endpoint.empty()) {
            entry["endpoint"] = peer.endpoint;
        }
        object["peers"].push_back(std::move(entry));
    }
    return object;
}

}  // namespace

std::string import_wg_quick(Api& api, const std::string& file,
                            const std::optional<std::string>& name) {
    if (file == "-" && !name) {
        throw WgQuickCommandError("import -: a file from stdin needs --name NAME");
    }
    const std::string tunnel_name =
        name.value_or(std::filesystem::path(file).filename().replace_extension().string());
    FileText content;
    if (file == "-") {
        read_bounded(std::cin, content.text);
    } else {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            throw WgQuickCommandError(file + ": cannot be read");
        }
        read_bounded(in, content.text);
    }
    const std::string shown = file == "-" ? "stdin" : file;
    tunlab::WgQuickTunnel parsed;
    try {
        parsed = tunlab::wg_quick_to_json(tunnel_name, content.text);
    } catch (const tunlab::WgQuickError& error) {
        throw WgQuickCommandError(shown +
                                  (error.line() == 0 ? "" : ":" + std::to_string(error.line())) +
                                  ": " + error.problem());
    }
    for (const auto& note : parsed.notes) {
        std::cerr << shown << ":" << note.line << ": " << note.text << "\n";
    }
    return api.create_tunnel(tunnel_name, to_options(parsed.tunnel));
}

int export_wg_quick(Api& api, const std::string& name) {
    const TunnelInfo tunnel = api.tunnel(api.tunnel_path(name));
    if (tunnel.protocol != "wireguard") {
        throw WgQuickCommandError("tunnel " + name + " speaks " + tunnel.protocol +
                                  ": wg-quick files are for protocol wireguard");
    }
    std::vector<PeerInfo> peers;
    for (const auto& path : tunnel.peer_paths) {
        if (PeerInfo peer = api.peer(path); !peer.learned) {
            peers.push_back(std::move(peer));  // a learned peer is learned again when it sends
        }
    }
    tunlab::TunnelConfig config = tunlab::tunnel_config_from_json(
        name, tunnel_json(tunnel, peers), tunlab::ParseContext{tunlab::KeySource::Inline, {}});
    std::string why;
    auto keys = read_uapi_keys(tunnel.interface, why);
    if (keys) {
        config.private_key = tunlab::SharedSecret(std::move(keys->private_key));
        for (auto& peer : config.peers) {
            const auto found =
                peer.public_key
                    ? keys->preshared_keys.find(tunlab::crypto::key_to_base64(*peer.public_key))
                    : keys->preshared_keys.end();
            if (found != keys->preshared_keys.end()) {
                peer.preshared_key = tunlab::SharedSecret(std::move(found->second));
            }
        }
    } else {
        // Placeholders, never written (Secrets::Omit): they make the file say which keys were
        // left out.
        config.private_key = tunlab::SharedSecret(tunlab::crypto::SecretKey());
        for (size_t i = 0; i < config.peers.size(); ++i) {
            if (peers[i].has_preshared_key) {
                config.peers[i].preshared_key = tunlab::SharedSecret(tunlab::crypto::SecretKey());
            }
        }
        std::cerr << "tunlabctl: PrivateKey left out: " << why << "\n";
    }
    std::cout << tunlab::wg_quick_from_tunnel_config(
        config, keys ? tunlab::Secrets::Include : tunlab::Secrets::Omit);
    return 0;
}

}  // namespace tunlabctl
