#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

#include "util/printable.hpp"

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
    // The last line of defence for whatever a message quotes: one line, of bounded length.
    text.append(printable(message, 2 * kMessageCharacters));
    text.push_back('\n');
    // One write() per line keeps lines from different threads whole.
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace tunlab::log
