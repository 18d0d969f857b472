#include "app/directories.hpp"

#include <cstdlib>
#include <string>

namespace tunlab {

namespace {

std::filesystem::path from_environment(const char* variable, const char* fallback,
                                       const char* below = nullptr) {
    const char* value = std::getenv(variable);
    if (value == nullptr || *value == '\0') {
        return fallback;
    }
    std::string first(value);
    first = first.substr(0, first.find(':'));
    return below ? std::filesystem::path(first) / below : std::filesystem::path(first);
}

}  // namespace

Directories default_directories() {
    return Directories{
        from_environment("CONFIGURATION_DIRECTORY", "/etc/tunlab/tunnels.d", "tunnels.d"),
        from_environment("STATE_DIRECTORY", "/var/lib/tunlab"),
        from_environment("RUNTIME_DIRECTORY", "/run/tunlab"),
    };
}

}  // namespace tunlab
