#pragma once

#include <filesystem>
#include <string_view>

namespace tunlab {

// Replaces `path` with `content` so that a reader (or a crash) sees the old file or the new
// one, never a mix: write a temporary file beside it, fsync it, rename it over, fsync the
// directory. Throws std::system_error.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace tunlab
