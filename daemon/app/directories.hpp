#pragma once

#include <filesystem>

namespace tunlab {

struct Directories {
    std::filesystem::path config;   // tunnel files, <name>.json
    std::filesystem::path state;    // what the daemon keeps across restarts
    std::filesystem::path runtime;  // status.json
    // WireGuard's cross-platform control sockets, <interface>.sock: where `wg` looks for them.
    std::filesystem::path uapi;
};

// systemd passes the unit's ConfigurationDirectory=, StateDirectory= and RuntimeDirectory= as
// $CONFIGURATION_DIRECTORY etc.; without them, the Debian paths. The first entry of a
// colon-separated list is ours.
Directories default_directories();

}  // namespace tunlab
