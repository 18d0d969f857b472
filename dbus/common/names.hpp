#pragma once

// The fixed names of the org.tunlab1 API (docs/dbus-api.md), for both sides: the daemon's service
// and tunlabctl. Interface names come with the generated glue (INTERFACE_NAME of each adaptor and
// proxy); these are the rest.

namespace tunlab::bus {

inline constexpr const char* kBusName = "org.tunlab1";
inline constexpr const char* kManagerPath = "/org/tunlab1";
inline constexpr const char* kTunnelsPath = "/org/tunlab1/tunnel";

}  // namespace tunlab::bus
