#pragma once

// `tunlabctl import FILE` and `tunlabctl export NAME`: wg-quick(8) files in and out
// (the format itself is daemon/config/wg_quick.hpp's, shared with tunlabd's tunnels.d).

#include <optional>
#include <stdexcept>
#include <string>

#include "api.hpp"

namespace tunlabctl {

// A file that cannot be imported, or a tunnel that cannot be exported (exit code 2).
struct WgQuickCommandError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Parses FILE ("-": stdin, then `name` is required), prints each note on stderr
// ("FILE:LINE: ..."), and creates the tunnel with one CreateTunnel call carrying everything
// (keys inline), so that it is made whole or not at all. Returns the new tunnel's path.
std::string import_wg_quick(Api& api, const std::string& file,
                            const std::optional<std::string>& name);

// The wg-quick file of tunnel `name` on stdout, from its D-Bus properties; the keys from its
// WireGuard control socket when that can be read (root), else left out with a word on stderr.
int export_wg_quick(Api& api, const std::string& name);

}  // namespace tunlabctl
