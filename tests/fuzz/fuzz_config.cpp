// libFuzzer target: everything that reads tunnel configuration and saved state from disk
// (daemon/config/tunnel_config.hpp, daemon/config/state_store.hpp).
//
// Input: the bytes of a file. Each input is
//   1. parsed as JSON and given to tunnel_config_from_json(); a configuration that is accepted
//      must serialize with tunnel_config_to_json() and read back equal (also through text);
//   2. written as <config dir>/tun0.json and read with load_tunnel_config_file() and
//      load_config_directory(), which must agree with 1.;
//   3. written as <state dir>/tunnels/tun0.json and read with StateStore::load(); a state that
//      loads must save and load back equal, and one that does not must be reported and set
//      aside as tun0.json.corrupt.
// ConfigError is the only exception the configuration readers may throw; StateStore::load must
// not throw at all.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/state_store.hpp"
#include "config/tunnel_config.hpp"
#include "fuzz_check.hpp"
#include "fuzz_scratch.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tunlab::ConfigError;
using tunlab::TunnelConfig;

constexpr const char* kName = "tun0";

// The target's private directory (fuzz_scratch.hpp), laid out once.
struct Scratch {
    fs::path root;
    fs::path config;       // <root>/config/tun0.json
    fs::path state;        // <root>/state/tunnels/tun0.json
    fs::path state_again;  // <root>/state-again: where a loaded state is saved back

    Scratch() {
        root = tunlab::fuzz::scratch_directory("fuzz_config");
        config = root / "config";
        state = root / "state";
        state_again = root / "state-again";
        fs::create_directories(config);
        fs::create_directories(state / "tunnels");
    }

    static Scratch& instance() {
        static Scratch scratch;
        return scratch;
    }
};

void write_file(const fs::path& path, const uint8_t* data, size_t size) {
    std::ofstream output(path, std::ios::binary | std::ios::trunc);
    output.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!output) {
        tunlab::fuzz::fail("cannot write the scratch file");
    }
}

// tunnel_config_from_json, which may only throw ConfigError.
std::optional<TunnelConfig> read_config(const json& object, const char* where) {
    try {
        return tunlab::tunnel_config_from_json(kName, object);
    } catch (const ConfigError& error) {
        FUZZ_CHECK_MESSAGE(error);
        return std::nullopt;
    } catch (...) {
        tunlab::fuzz::unexpected_exception(where);
    }
}

void check_config_round_trip(const TunnelConfig& config) {
    FUZZ_CHECK(config.name == kName, "configuration lost its name");
    const json object = tunlab::tunnel_config_to_json(config);
    const auto again = read_config(object, "tunnel_config_from_json(tunnel_config_to_json(x))");
    FUZZ_CHECK(again.has_value(),
               "a configuration that was accepted serializes to one that is not");
    FUZZ_CHECK(*again == config, "configuration changes through tunnel_config_to_json");

    // The same through text, as the state store writes it.
    std::string text;
    try {
        text = object.dump(2);
    } catch (...) {
        tunlab::fuzz::unexpected_exception("json::dump of a serialized configuration");
    }
    const json reparsed = json::parse(text, nullptr, false);
    FUZZ_CHECK(!reparsed.is_discarded(), "serialized configuration is not valid JSON");
    const auto from_text = read_config(reparsed, "tunnel_config_from_json(dump)");
    FUZZ_CHECK(from_text && *from_text == config, "configuration changes through JSON text");

    const uint32_t mtu = config.effective_mtu();
    FUZZ_CHECK(mtu >= 576 && mtu <= 65535, "effective MTU out of range");
    FUZZ_CHECK(!config.interface_or_template().empty(), "no interface name");
}

std::optional<TunnelConfig> check_json_config(const uint8_t* data, size_t size) {
    const json object = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) {
        return std::nullopt;
    }
    auto config = read_config(object, "tunnel_config_from_json");
    if (config) {
        check_config_round_trip(*config);
    }
    return config;
}

void check_config_file(const uint8_t* data, size_t size,
                       const std::optional<TunnelConfig>& from_memory) {
    const Scratch& scratch = Scratch::instance();
    const fs::path file = scratch.config / "tun0.json";
    write_file(file, data, size);

    std::optional<TunnelConfig> loaded;
    try {
        loaded = tunlab::load_tunnel_config_file(file);
    } catch (const ConfigError&) {
    } catch (...) {
        tunlab::fuzz::unexpected_exception("load_tunnel_config_file");
    }
    FUZZ_CHECK(
        loaded.has_value() == from_memory.has_value() && (!loaded || *loaded == *from_memory),
        "load_tunnel_config_file and tunnel_config_from_json(json::parse) disagree");

    tunlab::ConfigDirectory directory;
    try {
        directory = tunlab::load_config_directory(scratch.config);
    } catch (...) {
        tunlab::fuzz::unexpected_exception("load_config_directory");
    }
    FUZZ_CHECK(directory.tunnels.size() + directory.errors.size() == 1,
               "load_config_directory: one file must give one tunnel or one error");
    FUZZ_CHECK(directory.tunnels.empty() == !loaded.has_value() &&
                   (!loaded || directory.tunnels.front() == *loaded),
               "load_config_directory and load_tunnel_config_file disagree");
    fs::remove(file);
}

void check_state_file(const uint8_t* data, size_t size) {
    const Scratch& scratch = Scratch::instance();
    const fs::path file = scratch.state / "tunnels" / "tun0.json";
    const fs::path corrupt = scratch.state / "tunnels" / "tun0.json.corrupt";
    write_file(file, data, size);

    std::vector<std::string> errors;
    std::map<std::string, tunlab::TunnelState> states;
    try {
        states = tunlab::StateStore(scratch.state).load(errors);
    } catch (...) {
        tunlab::fuzz::unexpected_exception("StateStore::load");
    }
    FUZZ_CHECK(states.size() + errors.size() == 1,
               "StateStore::load: one file must give one state or one error");
    if (states.empty()) {
        FUZZ_CHECK(!fs::exists(file) && fs::exists(corrupt),
                   "an unreadable state file must be set aside as .corrupt");
        fs::remove(corrupt);
        return;
    }
    const auto& [name, state] = *states.begin();
    FUZZ_CHECK(name == kName, "state loaded under another name");
    FUZZ_CHECK(state.origin == tunlab::TunnelState::Origin::Bus || state.base.has_value(),
               "a state from a file without its base");
    if (state.base) {
        check_config_round_trip(*state.base);
    }
    if (state.current) {
        check_config_round_trip(*state.current);
    }

    // Save it and load it back: the same state.
    tunlab::StateStore again(scratch.state_again);
    try {
        again.save(kName, state);
    } catch (...) {
        tunlab::fuzz::unexpected_exception("StateStore::save of a loaded state");
    }
    std::vector<std::string> errors_again;
    const auto reloaded = again.load(errors_again);
    FUZZ_CHECK(errors_again.empty(), "a saved state does not load");
    FUZZ_CHECK(reloaded.size() == 1 && reloaded.begin()->second == state,
               "state changes through save/load");
    again.erase(kName);
    fs::remove(file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 64 * 1024) {
        return -1;
    }
    const auto config = check_json_config(data, size);
    check_config_file(data, size, config);
    check_state_file(data, size);
    return 0;
}
