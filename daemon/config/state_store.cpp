#include "config/state_store.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "util/atomic_file.hpp"

namespace tunlab {

namespace {

constexpr int kFormatVersion = 1;

nlohmann::json optional_config_to_json(const std::optional<TunnelConfig>& config) {
    return config ? tunnel_config_to_json(*config) : nlohmann::json(nullptr);
}

std::optional<TunnelConfig> optional_config_from_json(const std::string& name,
                                                      const nlohmann::json& json) {
    if (json.is_null()) {
        return std::nullopt;
    }
    return tunnel_config_from_json(name, json);
}

TunnelState parse_state(const std::string& name, const nlohmann::json& json) {
    if (!json.is_object() || json.value("version", nlohmann::json()) != kFormatVersion) {
        throw std::runtime_error("not a tunlab state file of version " +
                                 std::to_string(kFormatVersion));
    }
    TunnelState state;
    const std::string origin = json.at("origin").get<std::string>();
    if (origin != "file" && origin != "bus") {
        throw std::runtime_error("origin must be \"file\" or \"bus\"");
    }
    state.origin = origin == "file" ? TunnelState::Origin::File : TunnelState::Origin::Bus;
    state.base = optional_config_from_json(name, json.at("base"));
    state.current = optional_config_from_json(name, json.at("config"));
    if (state.origin == TunnelState::Origin::File && !state.base) {
        throw std::runtime_error("a state that came from a file needs its base");
    }
    return state;
}

}  // namespace

StateStore::StateStore(std::filesystem::path state_directory)
    : directory_(std::move(state_directory) / "tunnels") {}

std::map<std::string, TunnelState> StateStore::load(std::vector<std::string>& errors) const {
    std::map<std::string, TunnelState> states;
    // A save cut short by a crash leaves its temporary file; the state itself is whole.
    remove_leftover_temporaries(directory_);
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(directory_, error)) {
        const auto& path = entry.path();
        if (path.extension() != ".json" || !entry.is_regular_file()) {
            continue;
        }
        const std::string name = path.stem().string();
        std::string problem;
        try {
            std::ifstream input(path);
            states.emplace(name, parse_state(name, nlohmann::json::parse(input)));
            continue;
        } catch (const std::exception& unreadable) {
            // Ours (ConfigError) never quote a key; the JSON library's would.
            problem = json_error_without_content(unreadable);
        }
        const auto kept = path.string() + ".corrupt";
        std::filesystem::rename(path, kept, error);
        errors.push_back(path.string() + ": unreadable state, ignored and kept as " + kept + ": " +
                         problem);
    }
    return states;
}

void StateStore::save(const std::string& name, const TunnelState& state) const {
    save(name, state.origin, state.base, state.current);
}

void StateStore::save(const std::string& name, TunnelState::Origin origin,
                      const std::optional<TunnelConfig>& base,
                      const std::optional<TunnelConfig>& current) const {
    // Only the daemon may put a state here: one that names a key of someone else's choosing
    // would be loaded as ours.
    create_directories_with_mode(directory_, 0700);
    const nlohmann::json json = {
        {"version", kFormatVersion},
        {"origin", origin == TunnelState::Origin::File ? "file" : "bus"},
        {"base", optional_config_to_json(base)},
        {"config", optional_config_to_json(current)},
    };
    // Only the daemon reads its state (which will hold keys): at most 0600, whatever the umask.
    write_file_atomically(directory_ / (name + ".json"), json.dump(2) + "\n", 0600);
}

void StateStore::erase(const std::string& name) const {
    // remove() is not an error for a file that is not there; anything else is.
    std::filesystem::remove(directory_ / (name + ".json"));
    fsync_directory(directory_);
}

}  // namespace tunlab
