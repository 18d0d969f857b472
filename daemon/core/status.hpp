#pragma once

#include <nlohmann/json_fwd.hpp>

#include "core/tunnel_manager.hpp"

namespace tunlab {

// Every tunnel with its peers and counters, as JSON (the layout is in README.md, "Status").
nlohmann::json status_json(const TunnelManager& manager);

}  // namespace tunlab
