#pragma once

// Shared by the fuzz targets: how an invariant fails. libFuzzer treats the trap as a crash and
// saves the input; the message says which invariant broke.

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace tunlab::fuzz {

[[noreturn]] inline void fail(std::string_view what, std::string_view detail = {}) {
    std::fprintf(stderr, "\n*** fuzz invariant broken: %.*s%s%.*s\n", static_cast<int>(what.size()),
                 what.data(), detail.empty() ? "" : ": ", static_cast<int>(detail.size()),
                 detail.data());
    std::fflush(stderr);
    __builtin_trap();
}

// An exception that is not one of the documented rejections.
[[noreturn]] inline void unexpected_exception(std::string_view where) {
    std::string detail = "unknown exception";
    try {
        throw;
    } catch (const std::exception& error) {
        detail = std::string("std::exception: ") + error.what();
    } catch (...) {
    }
    fail(std::string(where) + " threw an undocumented exception", detail);
}

// What a rejection's message must be, since it reaches a person through the bus or the journal:
// something to read, on one line (a NUL would end it early, a newline would forge a log line).
inline bool is_one_line_message(std::string_view message) {
    if (message.empty()) {
        return false;
    }
    for (const char c : message) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

}  // namespace tunlab::fuzz

#define FUZZ_CHECK_MESSAGE(error)                                   \
    FUZZ_CHECK(::tunlab::fuzz::is_one_line_message((error).what()), \
               "a rejection's message is empty or has control characters")

#define FUZZ_CHECK(condition, what)                 \
    do {                                            \
        if (!(condition)) {                         \
            ::tunlab::fuzz::fail(what, #condition); \
        }                                           \
    } while (false)
