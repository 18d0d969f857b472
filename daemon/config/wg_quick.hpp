#pragma once

// wg-quick(8) configuration files ("wg0.conf": [Interface] and [Peer] sections of "Key = value"
// lines, as wg(8) and wg-quick read them), to and from the JSON a tunnel file holds. Pure
// text work: nothing is resolved, read or run.
//
// What tunlab does not do (DNS, PostUp, Table, ...) is never dropped in silence: each such line
// becomes a note that names the key and its line. Neither notes nor errors ever quote a value:
// PrivateKey and PresharedKey are secrets, and a value in the wrong key may be one too.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/tunnel_config.hpp"
#include "model/tunnel_settings.hpp"

namespace tunlab {

// Bounds on the input: a few thousand peers fit in 4 MiB, and a line holds a key and a list
// of prefixes (repeated AllowedIPs lines add up, so a long list can be split).
inline constexpr size_t kWgQuickMaximumBytes = 4 * 1024 * 1024;
inline constexpr size_t kWgQuickMaximumLine = 8 * 1024;

// Something tunlab does not do, e.g. line 4, "DNS is not supported by tunlab (it sets no
// resolver); ignored".
struct WgQuickNote {
    size_t line = 0;
    std::string text;
};

// A file that cannot be a tunnel: the line (0: the file as a whole) and what is wrong there.
class WgQuickError : public std::runtime_error {
  public:
    WgQuickError(size_t line, const std::string& problem);
    size_t line() const { return line_; }
    const std::string& problem() const { return problem_; }

  private:
    size_t line_;
    std::string problem_;
};

struct WgQuickTunnel {
    // A tunnel file's JSON ("protocol": "wireguard", "interface": the tunnel's name, ...) with
    // the keys inline ("private_key", "peers[].preshared_key"), as the bus and the saved state
    // take them. No "private_key" when the file has no PrivateKey.
    nlohmann::json tunnel;
    std::vector<WgQuickNote> notes;
};

// `name` is the tunnel's (wg-quick names the interface after its file). Routes are those
// wg-quick adds: each peer's allowed IPs, but /0 (wg-quick routes those with policy routing;
// a note says so) and those already on the link through an Address. Throws WgQuickError.
WgQuickTunnel wg_quick_to_json(std::string_view name, std::string_view text);

// The same, checked as a tunnel (tunnel_config_from_json, keys inline). Throws WgQuickError,
// or ConfigError for what only the tunnel as a whole can say.
TunnelConfig wg_quick_to_tunnel_config(std::string_view name, std::string_view text,
                                       std::vector<WgQuickNote>* notes = nullptr);

// The wg-quick file of a wireguard tunnel (throws ConfigError for any other). Settings that
// wg-quick cannot say (a route that is no allowed IP, busy_poll_us, a listen_address other
// than ::, ...) are written as "# " comment lines, so that a reader sees them. Secrets::Omit
// leaves out PrivateKey and PresharedKey lines.
std::string wg_quick_from_tunnel_config(const TunnelConfig& config,
                                        Secrets secrets = Secrets::Include);

// The routes wg-quick would add for `config`'s peers (see wg_quick_to_json).
std::vector<Prefix> wg_quick_routes(const std::vector<PeerConfig>& peers,
                                    const std::vector<InterfaceAddress>& addresses);

}  // namespace tunlab
