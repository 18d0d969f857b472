#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string_view>

namespace tunlab {

// Replaces `path` with `content` so that a reader (or a crash) sees the old file or the new
// one, never a mix: write a temporary file beside it, fsync it, rename it over, fsync the
// directory. The temporary file has a name of its own, made with O_EXCL (never an existing
// file or a symlink someone planted in a directory others can write), mode `mode` less the
// umask, and is removed if anything fails. Throws std::system_error.
void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           mode_t mode = 0644);

// Creates `directory` and any missing parent with `mode` exactly (not widened by a umask of 0,
// as std::filesystem::create_directories would let it be); existing ones are left as they
// are. Throws std::system_error.
void create_directories_with_mode(const std::filesystem::path& directory, mode_t mode);

// Makes the renames and removals in `directory` durable (best effort: a directory that cannot
// be opened is left as it is).
void fsync_directory(const std::filesystem::path& directory);

// Removes the temporary files that write_file_atomically() leaves behind when the process dies
// between creating and renaming one ("<name>.tmp.<random>"); symlinks are removed, not
// followed. Returns how many.
size_t remove_leftover_temporaries(const std::filesystem::path& directory);

}  // namespace tunlab
