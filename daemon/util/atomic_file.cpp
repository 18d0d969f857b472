#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

#include "util/system_error.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

namespace {

constexpr std::string_view kTemporaryMarker = ".tmp.";

// "<path>.tmp.<12 random hex digits>": unguessable, so that nobody can plant the name first,
// and distinct per call, so that two writers never share one.
std::filesystem::path temporary_name(const std::filesystem::path& path) {
    std::array<unsigned char, 6> random{};
    if (::getrandom(random.data(), random.size(), 0) != static_cast<ssize_t>(random.size())) {
        throw system_error("getrandom");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string name = path.string();
    name += kTemporaryMarker;
    for (const unsigned char byte : random) {
        name += kHex[byte >> 4];
        name += kHex[byte & 0xf];
    }
    return name;
}

void write_all(int fd, std::string_view content, const std::filesystem::path& name) {
    while (!content.empty()) {
        const ssize_t written = ::write(fd, content.data(), content.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw system_error("write " + name.string());
        }
        content.remove_prefix(static_cast<size_t>(written));
    }
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           mode_t mode) {
    std::filesystem::path temporary;
    UniqueFd file;
    for (int attempt = 0; attempt < 8 && !file.valid(); ++attempt) {
        temporary = temporary_name(path);
        file.reset(
            ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
        if (!file.valid() && errno != EEXIST) {
            break;
        }
    }
    if (!file.valid()) {
        throw system_error("create " + temporary.string());
    }
    try {
        write_all(file.get(), content, temporary);
        if (::fsync(file.get()) < 0) {
            throw system_error("fsync " + temporary.string());
        }
        file.reset();
        if (::rename(temporary.c_str(), path.c_str()) < 0) {
            throw system_error("rename " + temporary.string() + " to " + path.string());
        }
    } catch (...) {
        ::unlink(temporary.c_str());
        throw;
    }
    fsync_directory(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
}

void create_directories_with_mode(const std::filesystem::path& directory, mode_t mode) {
    if (directory.empty() || std::filesystem::is_directory(directory)) {
        return;
    }
    if (directory.has_parent_path() && directory.parent_path() != directory) {
        create_directories_with_mode(directory.parent_path(), mode);
    }
    // mkdir() applies the umask, which can only narrow `mode`: under umask 0 the directory
    // gets `mode`, never the 0777 that create_directories() asks for.
    if (::mkdir(directory.c_str(), mode & 0777) != 0 && errno != EEXIST) {
        throw std::system_error(errno, std::generic_category(), "mkdir " + directory.string());
    }
}

void fsync_directory(const std::filesystem::path& directory) {
    UniqueFd handle(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (handle.valid()) {
        ::fsync(handle.get());
    }
}

size_t remove_leftover_temporaries(const std::filesystem::path& directory) {
    size_t removed = 0;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
        const std::string name = entry.path().filename().string();
        if (name.find(kTemporaryMarker) != std::string::npos &&
            std::filesystem::remove(entry.path(), error)) {
            ++removed;
        }
    }
    return removed;
}

}  // namespace tunlab
