#pragma once

#include <sstream>
#include <string_view>

namespace tunlab::log {

// Writes one line to stderr with an sd-daemon "<N>" priority prefix, which journald turns
// into the record's priority. Safe from any thread: each line is written with one write().
enum class Level { Error = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };

void write(Level level, std::string_view message);
void set_debug(bool enabled);
bool debug_enabled();

template <typename... Parts>
void line(Level level, const Parts&... parts) {
    std::ostringstream text;
    (text << ... << parts);
    write(level, text.str());
}

template <typename... Parts>
void error(const Parts&... parts) {
    line(Level::Error, parts...);
}
template <typename... Parts>
void warning(const Parts&... parts) {
    line(Level::Warning, parts...);
}
template <typename... Parts>
void notice(const Parts&... parts) {
    line(Level::Notice, parts...);
}
template <typename... Parts>
void info(const Parts&... parts) {
    line(Level::Info, parts...);
}
template <typename... Parts>
void debug(const Parts&... parts) {
    if (debug_enabled()) {
        line(Level::Debug, parts...);
    }
}

}  // namespace tunlab::log
