#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/tunnel_settings.hpp"

struct stat;

namespace tunlab {

// A problem with one field, e.g. field "peers[1].allowed_ips[0]", problem "not a CIDR prefix".
// Control characters in either (quoted from the input) are shown as \xNN.
class ConfigError : public std::runtime_error {
  public:
    ConfigError(const std::string& field, const std::string& problem);
    const std::string& field() const { return field_; }

  private:
    std::string field_;
};

bool is_valid_tunnel_name(std::string_view name);

// Where keys (private and preshared) come from, by who wrote the JSON:
enum class KeySource {
    Files,   // a tunnel file, which others may read: keys only in files of their own
             // ("private_key_file", relative to the tunnel file's directory), read at once
    Inline,  // a request over the bus: keys only inline ("private_key"); a missing private
             // key is for the caller to generate
    Saved,   // the saved state (0600, the daemon's): keys inline, the files' names kept
};
struct ParseContext {
    KeySource keys = KeySource::Saved;
    std::filesystem::path directory;  // KeySource::Files: where relative key files are
};

// Whether JSON written from settings holds the secret keys: only the saved state does.
enum class Secrets { Include, Omit };

// Throws ConfigError.
TunnelConfig tunnel_config_from_json(std::string_view name, const nlohmann::json& json,
                                     const ParseContext& context = {});
nlohmann::json tunnel_config_to_json(const TunnelConfig& config,
                                     Secrets secrets = Secrets::Include);

// One entry of "peers"; `path` prefixes field names in errors ("peers[2]", or "" for the bus).
PeerConfig peer_config_from_json(const nlohmann::json& json, const std::string& path,
                                 const IpAddress& listen_address, ProtocolKind protocol,
                                 const ParseContext& context = {});
nlohmann::json peer_config_to_json(const PeerConfig& peer, Secrets secrets = Secrets::Include);

// A peer's public key (base64, 32 bytes); `field` names it in the error.
crypto::PublicKey parse_public_key(const std::string& text, const std::string& field);

// Checks one endpoint for a tunnel listening on `listen_address` (an IPv6 endpoint needs an
// IPv6 socket); `field` names it in the error.
Endpoint parse_endpoint(const std::string& text, const std::string& field,
                        const IpAddress& listen_address);
// Checks one interface address / route / allowed-IP text; `field` names it in the error.
InterfaceAddress parse_interface_address(const std::string& text, const std::string& field);
Prefix parse_prefix(const std::string& text, const std::string& field);

// What is wrong with JSON text that did not parse, without any of the text: the parser's own
// message quotes what it last read, and in a state file (or a careless tunnel file) that may be
// a key.
std::string json_error_without_content(const std::exception& error);

// Reads "<dir>/<name>.json"; throws ConfigError (field "" for a file that is not JSON).
TunnelConfig load_tunnel_config_file(const std::filesystem::path& path);

// What is wrong with a file that holds a secret (a key file, a wg-quick tunnel file), given
// its fstat(): empty if it is a regular file of tunlabd's own user that nobody else may read
// or write; else the problem and its fix, e.g. "may be read or written by others (mode
// 0644): make it mode 600 (chmod 600)".
std::string key_file_problem(const struct stat& status);

struct ConfigDirectory {
    std::vector<TunnelConfig> tunnels;
    std::vector<std::string> errors;  // one line each: "<file>: <field>: <problem>"
    // Lines of wg-quick files that tunlab does not do, one each, to be logged:
    // "<file>: line <n>: DNS is not supported by tunlab (...); ignored".
    std::vector<std::string> notes;
};

// Every "*.json" (tunnel_config_from_json) and "*.conf" (wg-quick's format, see wg_quick.hpp:
// it holds keys, so it must pass key_file_problem) in `directory`, sorted by name. A missing
// directory is empty, not an error. A name in both forms is an error; its .json is used.
ConfigDirectory load_config_directory(const std::filesystem::path& directory);

}  // namespace tunlab
