#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api.hpp"

namespace tunlabctl {

nlohmann::json to_json(const PeerInfo& peer);
nlohmann::json to_json(const TunnelInfo& tunnel, const std::vector<PeerInfo>& peers);

// Human-readable forms.
std::string describe_tunnel(const TunnelInfo& tunnel, const std::vector<PeerInfo>& peers);
std::string describe_counters(const Counters& counters);
std::string human_bytes(double bytes);
std::string time_ago(uint64_t microseconds_since_epoch);
// "1 minute, 3 seconds ago", as `wg show` says it; "never" for 0.
std::string handshake_ago(uint64_t microseconds_since_epoch);

}  // namespace tunlabctl
