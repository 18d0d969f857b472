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

}  // namespace tunlab::fuzz

#define FUZZ_CHECK(condition, what)                 \
    do {                                            \
        if (!(condition)) {                         \
            ::tunlab::fuzz::fail(what, #condition); \
        }                                           \
    } while (false)
