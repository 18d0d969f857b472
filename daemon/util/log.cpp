#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

namespace tunlab::log {

namespace {
std::atomic<bool> g_debug{false};
}

void set_debug(bool enabled) {
    g_debug.store(enabled, std::memory_order_relaxed);
}

bool debug_enabled() {
    return g_debug.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message) {
    std::string text = "<" + std::to_string(static_cast<int>(level)) + ">";
    text.append(message);
    text.push_back('\n');
    // One write() per line keeps lines from different threads whole.
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace tunlab::log
