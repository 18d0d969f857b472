#include "config/journal_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "config/journal_format.hpp"
#include "util/atomic_file.hpp"
#include "util/system_error.hpp"

namespace tunlab {

JournalFile::JournalFile(UniqueFd fd, std::filesystem::path path, size_t size)
    : fd_(std::move(fd)), path_(std::move(path)), size_(size) {}

JournalFile JournalFile::create(const std::filesystem::path& path, uint64_t generation) {
    // Atomically, so that a crash leaves either no journal or one with a whole header.
    const std::string header = journal::encode_header(generation);
    write_file_atomically(path, header, 0600);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
        throw system_error("open " + path.string());
    }
    return JournalFile(std::move(fd), path, header.size());
}

void JournalFile::append(std::string_view record) {
    std::string_view rest = record;
    int failure = 0;
    while (!rest.empty()) {
        const ssize_t written = ::write(fd_.get(), rest.data(), rest.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            failure = errno;
            break;
        }
        rest.remove_prefix(static_cast<size_t>(written));
    }
    // The record counts once it is on the disk: the caller answers its request after this.
    if (failure == 0 && ::fdatasync(fd_.get()) != 0) {
        failure = errno;
    }
    if (failure != 0) {
        // Best effort: if this fails too, the caller starts a new journal anyway.
        [[maybe_unused]] const int ignored = ::ftruncate(fd_.get(), static_cast<off_t>(size_));
        throw system_error("append to " + path_.string(), failure);
    }
    size_ += record.size();
}

}  // namespace tunlab
