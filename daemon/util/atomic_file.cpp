#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "util/system_error.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
    const std::filesystem::path temporary = path.string() + ".tmp";
    UniqueFd file(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file.valid()) {
        throw system_error("create " + temporary.string());
    }
    while (!content.empty()) {
        const ssize_t written = ::write(file.get(), content.data(), content.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw system_error("write " + temporary.string());
        }
        content.remove_prefix(static_cast<size_t>(written));
    }
    if (::fsync(file.get()) < 0) {
        throw system_error("fsync " + temporary.string());
    }
    file.reset();
    if (::rename(temporary.c_str(), path.c_str()) < 0) {
        throw system_error("rename " + temporary.string() + " to " + path.string());
    }
    const auto parent =
        path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    UniqueFd directory(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (directory.valid()) {
        ::fsync(directory.get());
    }
}

}  // namespace tunlab
