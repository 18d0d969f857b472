// libFuzzer target: wg-quick files (daemon/config/wg_quick.hpp), as `tunlabctl import` and
// tunlabd's tunnels.d/<name>.conf read them.
//
// Input: the bytes of a file. Each input is
//   1. given to wg_quick_to_json(), which may only throw WgQuickError, with a one-line message
//      (as may each note);
//   2. if it parsed, checked as a tunnel (tunnel_config_from_json, keys inline), which may only
//      throw ConfigError; a tunnel that is accepted must write with
//      wg_quick_from_tunnel_config() and read back equal, and with no "# tunlab:" comment
//      (whatever a wg-quick file says, its own form says too);
//   3. written as <dir>/wg0.conf (mode 600) and read with load_config_directory(), which must
//      agree with 2.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "config/tunnel_config.hpp"
#include "config/wg_quick.hpp"
#include "fuzz_check.hpp"
#include "fuzz_scratch.hpp"

namespace {

namespace fs = std::filesystem;
using tunlab::ConfigError;
using tunlab::TunnelConfig;
using tunlab::WgQuickError;

constexpr const char* kName = "wg0";

const fs::path& scratch() {
    return tunlab::fuzz::scratch_directory("fuzz_wg_quick");
}

std::optional<TunnelConfig> read_wg_quick(std::string_view text, const char* where) {
    try {
        std::vector<tunlab::WgQuickNote> notes;
        auto config = tunlab::wg_quick_to_tunnel_config(kName, text, &notes);
        for (const auto& note : notes) {
            FUZZ_CHECK(tunlab::fuzz::is_one_line_message(note.text), "a note is not one line");
        }
        return config;
    } catch (const WgQuickError& error) {
        FUZZ_CHECK_MESSAGE(error);
    } catch (const ConfigError& error) {
        FUZZ_CHECK_MESSAGE(error);
    } catch (...) {
        tunlab::fuzz::unexpected_exception(where);
    }
    return std::nullopt;
}

void check_json(std::string_view text) {
    try {
        const auto parsed = tunlab::wg_quick_to_json(kName, text);
        FUZZ_CHECK(parsed.tunnel.is_object(), "wg_quick_to_json gave no object");
    } catch (const WgQuickError& error) {
        FUZZ_CHECK_MESSAGE(error);
    } catch (...) {
        tunlab::fuzz::unexpected_exception("wg_quick_to_json");
    }
}

void check_round_trip(const TunnelConfig& config) {
    std::string text;
    try {
        text = tunlab::wg_quick_from_tunnel_config(config);
    } catch (...) {
        tunlab::fuzz::unexpected_exception("wg_quick_from_tunnel_config of an accepted file");
    }
    FUZZ_CHECK(text.find("# tunlab:") == std::string::npos,
               "a tunnel read from wg-quick has settings wg-quick cannot say");
    const auto again = read_wg_quick(text, "wg_quick_to_tunnel_config(wg_quick_from_...)");
    FUZZ_CHECK(again.has_value(), "a written wg-quick file does not read back");
    FUZZ_CHECK(*again == config, "a tunnel changes through wg-quick text");
}

void check_directory(const uint8_t* data, size_t size, const std::optional<TunnelConfig>& config) {
    const fs::path file = scratch() / "wg0.conf";
    {
        std::ofstream output(file, std::ios::binary | std::ios::trunc);
        output.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    ::chmod(file.c_str(), 0600);
    tunlab::ConfigDirectory directory;
    try {
        directory = tunlab::load_config_directory(scratch());
    } catch (...) {
        tunlab::fuzz::unexpected_exception("load_config_directory");
    }
    FUZZ_CHECK(directory.tunnels.size() + directory.errors.size() == 1,
               "load_config_directory: one file must give one tunnel or one error");
    FUZZ_CHECK(directory.tunnels.empty() == !config.has_value() &&
                   (!config || directory.tunnels.front() == *config),
               "load_config_directory and wg_quick_to_tunnel_config disagree");
    fs::remove(file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 64 * 1024) {
        return -1;
    }
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_json(text);
    const auto config = read_wg_quick(text, "wg_quick_to_tunnel_config");
    if (config) {
        check_round_trip(*config);
    }
    check_directory(data, size, config);
    return 0;
}
