#include "app/directories.hpp"

#include <cstdlib>
#include <string>

namespace tunlab {

namespace {

// Entry `index` of the colon-separated list in `variable`, or `fallback` if there is none.
std::filesystem::path from_environment(const char* variable, const char* fallback,
                                       const char* below = nullptr, size_t index = 0) {
    const char* value = std::getenv(variable);
    std::string entry = value ? value : "";
    for (size_t skipped = 0; skipped < index && !entry.empty(); ++skipped) {
        const size_t colon = entry.find(':');
        entry = colon == std::string::npos ? "" : entry.substr(colon + 1);
    }
    entry = entry.substr(0, entry.find(':'));
    if (entry.empty()) {
        return fallback;
    }
    return below ? std::filesystem::path(entry) / below : std::filesystem::path(entry);
}

}  // namespace

Directories default_directories() {
    return Directories{
        from_environment("CONFIGURATION_DIRECTORY", "/etc/tunlab/tunnels.d", "tunnels.d"),
        from_environment("STATE_DIRECTORY", "/var/lib/tunlab"),
        from_environment("RUNTIME_DIRECTORY", "/run/tunlab"),
        from_environment("RUNTIME_DIRECTORY", "/run/wireguard", nullptr, 1),
    };
}

}  // namespace tunlab
