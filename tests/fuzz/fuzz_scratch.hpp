#pragma once

// Shared by the fuzz targets that read files: one private directory per process, made on first
// use and removed at exit. Memory-backed if possible (the state store fsyncs every file it
// saves): TUNLAB_FUZZ_SCRATCH (run.sh sets it), else /dev/shm, else TMPDIR, else /tmp.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace tunlab::fuzz {

inline std::filesystem::path make_scratch_directory(const char* target) {
    std::string base = "/tmp";
    const char* const candidates[] = {std::getenv("TUNLAB_FUZZ_SCRATCH"), "/dev/shm",
                                      std::getenv("TMPDIR")};
    for (const char* candidate : candidates) {
        if (candidate != nullptr && access(candidate, W_OK | X_OK) == 0) {
            base = candidate;
            break;
        }
    }
    std::string pattern = base + "/tunlab-" + target + ".XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
    }
    return pattern;
}

inline const std::filesystem::path& scratch_directory(const char* target) {
    static const std::filesystem::path directory = make_scratch_directory(target);
    // Registered once `directory` is made, so that it runs before `directory` is destroyed
    // (exit handlers and destructors run in the reverse order of their registration).
    [[maybe_unused]] static const bool removed_at_exit = [] {
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(directory, ignored);
        });
        return true;
    }();
    return directory;
}

}  // namespace tunlab::fuzz
