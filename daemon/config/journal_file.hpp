#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "util/unique_fd.hpp"

namespace tunlab {

// A state journal open for appending (the format is in journal_format.hpp).
class JournalFile {
  public:
    // Replaces `path` atomically with an empty journal of `generation` (mode 0600: it will hold
    // keys), durable when this returns. Throws std::system_error.
    static JournalFile create(const std::filesystem::path& path, uint64_t generation);

    // Appends one framed record (journal::encode_record) with one write() and makes it durable
    // (fdatasync) before returning. If anything fails, the file is cut back to where it was, so
    // that the next record does not follow a broken one, and std::system_error is thrown.
    void append(std::string_view record);

    size_t size() const { return size_; }

  private:
    JournalFile(UniqueFd fd, std::filesystem::path path, size_t size);

    UniqueFd fd_;
    std::filesystem::path path_;  // for error messages
    size_t size_ = 0;
};

}  // namespace tunlab
