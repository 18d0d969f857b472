// The tunnel files of the configuration directory: "<name>.json" and "<name>.conf" (wg-quick).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "config/tunnel_config.hpp"
#include "config/wg_quick.hpp"
#include "crypto/secret_key.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

namespace {

// Wipes the text of a file that held keys when it goes.
class SecretText {
  public:
    ~SecretText() { crypto::secure_wipe({reinterpret_cast<uint8_t*>(text_.data()), text_.size()}); }
    std::string& text() { return text_; }

  private:
    std::string text_;
};

// A wg-quick file holds the private key itself, so it is read only if it passes what a key
// file must (key_file_problem): tunnels.d is readable by everyone, the file must not be.
TunnelConfig load_wg_quick_file(const std::filesystem::path& path,
                                std::vector<std::string>& notes) {
    // O_NONBLOCK: a FIFO swapped in after the directory was listed must not hang the daemon
    // (it is refused below as not a regular file).
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    struct stat status {};
    if (!fd.valid() || ::fstat(fd.get(), &status) != 0) {
        throw ConfigError("", std::string("cannot be opened: ") + std::strerror(errno));
    }
    if (const std::string problem = key_file_problem(status); !problem.empty()) {
        throw ConfigError("", problem);
    }
    SecretText content;
    std::string& text = content.text();
    // Reserved whole, so that it is never moved (leaving a copy of a key behind); only what
    // is read is touched. One byte over the bound is enough to refuse the file.
    text.reserve(kWgQuickMaximumBytes + 1);
    std::array<char, 4096> chunk{};
    while (text.size() <= kWgQuickMaximumBytes) {
        const size_t wanted = std::min(chunk.size(), kWgQuickMaximumBytes + 1 - text.size());
        const ssize_t got = ::read(fd.get(), chunk.data(), wanted);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            const int read_error = errno;
            crypto::secure_wipe({reinterpret_cast<uint8_t*>(chunk.data()), chunk.size()});
            if (got < 0) {
                throw ConfigError("", std::string("cannot be read: ") + std::strerror(read_error));
            }
            break;
        }
        text.append(chunk.data(), static_cast<size_t>(got));
    }
    crypto::secure_wipe({reinterpret_cast<uint8_t*>(chunk.data()), chunk.size()});
    std::vector<WgQuickNote> file_notes;
    const std::string name = path.stem().string();
    try {
        TunnelConfig config = wg_quick_to_tunnel_config(name, text, &file_notes);
        for (const auto& note : file_notes) {
            notes.push_back(path.string() + ": line " + std::to_string(note.line) + ": " +
                            note.text);
        }
        return config;
    } catch (const WgQuickError& error) {
        throw ConfigError("", error.what());
    }
}

}  // namespace

ConfigDirectory load_config_directory(const std::filesystem::path& directory) {
    ConfigDirectory result;
    std::error_code error;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
        const auto extension = entry.path().extension();
        if ((extension == ".json" || extension == ".conf") && entry.is_regular_file()) {
            files.push_back(entry.path());
        }
    }
    if (error && error != std::errc::no_such_file_or_directory) {
        result.errors.push_back(directory.string() + ": " + error.message());
    }
    std::sort(files.begin(), files.end());
    // wg0.conf sorts before wg0.json: which names have a .json is known before any .conf.
    std::map<std::string, std::filesystem::path> json_files;
    for (const auto& file : files) {
        if (file.extension() == ".json") {
            json_files.emplace(file.stem().string(), file);
        }
    }
    for (const auto& file : files) {
        try {
            if (file.extension() == ".json") {
                result.tunnels.push_back(load_tunnel_config_file(file));
                continue;
            }
            if (const auto both = json_files.find(file.stem().string()); both != json_files.end()) {
                // The .json is the one kept: refusing both would take a running tunnel down
                // because a file was added beside its own.
                throw ConfigError("", "tunnel " + both->first + " is also in " +
                                          both->second.string() +
                                          ": remove one of the two files (the .json is used)");
            }
            result.tunnels.push_back(load_wg_quick_file(file, result.notes));
        } catch (const std::exception& problem) {  // a bad file must not stop the others
            result.errors.push_back(file.string() + ": " + problem.what());
        }
    }
    return result;
}

}  // namespace tunlab
