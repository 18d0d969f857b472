#include "config/state_store.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "config/journal_format.hpp"
#include "util/atomic_file.hpp"

namespace tunlab {

namespace {

constexpr int kFormatVersion = 1;
// Below this a journal is never compacted: rewriting a small base is cheap, but not free.
constexpr size_t kMinJournalBytes = 64 * 1024;

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

// Random, not counted: a journal must never match a base it was not written for, even one of a
// tunnel deleted and created again under the same name.
uint64_t new_generation() {
    std::random_device random;
    return (static_cast<uint64_t>(random()) << 32) | random();
}

// What a base file says besides the state: the journal that may follow it.
struct BaseFile {
    TunnelState state;
    std::optional<uint64_t> generation;
    std::vector<PeerId> peer_ids;  // of state.current's peers, if written from a running tunnel
};

BaseFile parse_base(const std::string& name, const nlohmann::json& json) {
    if (!json.is_object() || json.value("version", nlohmann::json()) != kFormatVersion) {
        throw std::runtime_error("not a tunlab state file of version " +
                                 std::to_string(kFormatVersion));
    }
    BaseFile file;
    TunnelState& state = file.state;
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
    // Both absent in a file written before the journal existed: then no journal applies.
    if (json.contains("generation")) {
        file.generation = json.at("generation").get<uint64_t>();
    }
    if (json.contains("peer_ids")) {
        file.peer_ids = json.at("peer_ids").get<std::vector<PeerId>>();
    }
    return file;
}

std::string base_text(TunnelState::Origin origin, const std::optional<TunnelConfig>& base,
                      nlohmann::json current, uint64_t generation,
                      const std::vector<PeerId>* peer_ids) {
    nlohmann::json json = {
        {"version", kFormatVersion},
        {"origin", origin == TunnelState::Origin::File ? "file" : "bus"},
        {"base", optional_config_to_json(base)},
        {"config", std::move(current)},
        {"generation", generation},
    };
    if (peer_ids != nullptr) {
        json["peer_ids"] = *peer_ids;
    }
    return json.dump(2) + "\n";
}

// The settings of a tunnel, as the store compares and saves them: without the peers.
TunnelConfig without_peers(const TunnelConfig& config) {
    TunnelConfig settings;
    settings = config;  // the peers of a running tunnel's settings are empty already
    settings.peers.clear();
    return settings;
}

// ── journal records: one JSON object per change ─────────────────────────────────────────────
//   {"settings": {...}}              the settings without peers, if they changed
//   {"put": [{"id": N, "peer": {...}}, ...]}   peers added or changed
//   {"remove": [N, ...]}             peers removed

std::string change_record(const StateStore::Change& change, bool settings_changed) {
    std::vector<PeerId> touched(change.touched.begin(), change.touched.end());
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    nlohmann::json record = nlohmann::json::object();
    if (settings_changed) {
        record["settings"] = tunnel_config_to_json(without_peers(change.settings));
    }
    for (const PeerId id : touched) {
        const auto peer = change.peers.find(id);
        if (peer == change.peers.end()) {
            record["remove"].push_back(id);
        } else {
            record["put"].push_back({{"id", id}, {"peer", peer_config_to_json(peer->second)}});
        }
    }
    return record.empty() ? std::string() : record.dump();
}

// A running tunnel's configuration as the journal changes it.
struct Replayed {
    TunnelConfig settings;
    std::map<PeerId, PeerConfig> peers;

    void apply(const std::string& name, std::string_view payload) {
        const auto record = nlohmann::json::parse(payload);
        if (!record.is_object()) {
            throw std::runtime_error("not a change");
        }
        if (record.contains("settings")) {
            settings = tunnel_config_from_json(name, record.at("settings"));
        }
        if (record.contains("remove")) {
            for (const auto& id : record.at("remove")) {
                peers.erase(id.get<PeerId>());
            }
        }
        if (record.contains("put")) {
            for (const auto& put : record.at("put")) {
                peers.insert_or_assign(
                    put.at("id").get<PeerId>(),
                    peer_config_from_json(put.at("peer"), "peer", settings.listen_address,
                                          settings.protocol));
            }
        }
    }

    TunnelConfig config() const {
        TunnelConfig config = settings;
        config.peers.reserve(peers.size());
        for (const auto& [id, peer] : peers) {
            config.peers.push_back(peer);
        }
        return config;
    }
};

void write_base(const std::filesystem::path& directory, const std::filesystem::path& path,
                const std::string& text) {
    // Only the daemon may put a state here: one that names a key of someone else's choosing
    // would be loaded as ours.
    create_directories_with_mode(directory, 0700);
    // Only the daemon reads its state (which holds keys): at most 0600, whatever the umask.
    write_file_atomically(path, text, 0600);
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream input(path, std::ios::binary);
    std::ostringstream content;
    content << input.rdbuf();
    return std::move(content).str();
}

}  // namespace

StateStore::StateStore(std::filesystem::path state_directory)
    : directory_(std::move(state_directory) / "tunnels") {}

std::filesystem::path StateStore::base_path(const std::string& name) const {
    return directory_ / (name + ".json");
}

std::filesystem::path StateStore::journal_path(const std::string& name) const {
    return directory_ / (name + ".journal");
}

std::map<std::string, TunnelState> StateStore::load(std::vector<std::string>& errors) {
    // What is on disk is the truth from here on: the next change of every tunnel starts a base.
    journals_.clear();
    std::map<std::string, TunnelState> states;
    // A save cut short by a crash leaves its temporary file; the state itself is whole.
    remove_leftover_temporaries(directory_);
    std::error_code error;
    std::vector<std::string> bases;
    std::vector<std::string> journals;
    for (const auto& entry : std::filesystem::directory_iterator(directory_, error)) {
        const auto& path = entry.path();
        if (!entry.is_regular_file()) {
            continue;
        }
        if (path.extension() == ".json") {
            bases.push_back(path.stem().string());
        } else if (path.extension() == ".journal") {
            journals.push_back(path.stem().string());
        }
    }
    for (const auto& name : bases) {
        const auto path = base_path(name);
        std::string problem;
        try {
            std::ifstream input(path);
            BaseFile file = parse_base(name, nlohmann::json::parse(input));
            replay(name, file.generation, file.peer_ids, file.state, errors);
            states.emplace(name, std::move(file.state));
            continue;
        } catch (const std::exception& unreadable) {
            // Ours (ConfigError) never quote a key; the JSON library's would.
            problem = json_error_without_content(unreadable);
        }
        const auto kept = path.string() + ".corrupt";
        std::filesystem::rename(path, kept, error);
        // Its changes are of no use without it, but they are the admin's to look at.
        std::filesystem::rename(journal_path(name), journal_path(name).string() + ".corrupt",
                                error);
        errors.push_back(path.string() + ": unreadable state, ignored and kept as " + kept + ": " +
                         problem);
    }
    for (const auto& name : journals) {
        // Left by a crash while the tunnel was being deleted (the base goes first).
        if (!std::filesystem::exists(base_path(name), error)) {
            std::filesystem::remove(journal_path(name), error);
        }
    }
    return states;
}

void StateStore::replay(const std::string& name, std::optional<uint64_t> generation,
                        const std::vector<PeerId>& peer_ids, TunnelState& state,
                        std::vector<std::string>& errors) {
    const auto path = journal_path(name);
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
        return;
    }
    const std::string file = read_file(path);
    const auto contents = journal::read(file, generation.value_or(0));
    if (!generation || contents.end == journal::Contents::End::WrongBase) {
        // A crash between writing a new base and removing the journal it replaced: the base
        // holds every change of it.
        std::filesystem::remove(path, error);
        return;
    }
    auto end = contents.end;
    size_t replayed = 0;
    std::string problem;
    Replayed tunnel;
    if (state.current && peer_ids.size() == state.current->peers.size()) {
        tunnel.settings = without_peers(*state.current);
        for (size_t i = 0; i < peer_ids.size(); ++i) {
            tunnel.peers.emplace(peer_ids[i], state.current->peers[i]);
        }
        for (const auto& record : contents.records) {
            try {
                tunnel.apply(name, record);
            } catch (const std::exception& unreadable) {
                // Whole but not understood (a record's check cannot tell every kind of damage,
                // nor a newer daemon's record): like a damaged one.
                end = journal::Contents::End::Corrupt;
                problem = ": " + json_error_without_content(unreadable);
                break;
            }
            ++replayed;
        }
    } else if (!contents.records.empty()) {
        end = journal::Contents::End::Corrupt;  // nothing to apply them to
    }
    if (replayed > 0) {
        state.current = tunnel.config();
    }
    if (end == journal::Contents::End::TornTail) {
        errors.push_back(path.string() + ": the last change (byte " +
                         std::to_string(contents.whole_bytes) + " on) was cut short by a crash " +
                         "before it was answered; tunnel " + name + " starts without it");
    } else if (end == journal::Contents::End::Corrupt) {
        // The state up to the damage becomes the base, so that the next start does not depend
        // on the damaged file, which is kept for the admin.
        const auto kept = path.string() + ".corrupt";
        errors.push_back(path.string() + ": change " + std::to_string(replayed + 1) +
                         " is damaged" + problem + "; tunnel " + name + " starts with the " +
                         std::to_string(replayed) + " change(s) before it, and the journal is " +
                         "kept as " + kept);
        try {
            write_base(directory_, base_path(name),
                       base_text(state.origin, state.base, optional_config_to_json(state.current),
                                 new_generation(), nullptr));
        } catch (const std::exception& failure) {
            errors.push_back("tunnel " + name + ": cannot save its state: " + failure.what());
            return;
        }
        std::filesystem::rename(path, kept, error);
    }
}

void StateStore::save(const std::string& name, const TunnelState& state) {
    save(name, state.origin, state.base, state.current);
}

void StateStore::save(const std::string& name, TunnelState::Origin origin,
                      const std::optional<TunnelConfig>& base,
                      const std::optional<TunnelConfig>& current) {
    journals_.erase(name);
    write_base(
        directory_, base_path(name),
        base_text(origin, base, optional_config_to_json(current), new_generation(), nullptr));
    // The old journal no longer matches the base; removing it only saves a later load the look.
    std::error_code error;
    std::filesystem::remove(journal_path(name), error);
}

void StateStore::save_change(const std::string& name, TunnelState::Origin origin,
                             const std::optional<TunnelConfig>& base, const Change& change) {
    const auto found = journals_.find(name);
    if (found == journals_.end() || found->second.session != change.session) {
        compact(name, origin, base, change);
        return;
    }
    Journal& journal = found->second;
    const bool settings_changed = !(without_peers(change.settings) == journal.settings);
    const std::string payload = change_record(change, settings_changed);
    if (payload.empty()) {
        return;  // nothing that is saved changed
    }
    const std::string record = journal::encode_record(journal.generation, payload);
    const size_t size = journal.file ? journal.file->size() : journal::kHeaderSize;
    if (size + record.size() > std::max(kMinJournalBytes, journal.base_bytes)) {
        compact(name, origin, base, change);
        return;
    }
    try {
        if (!journal.file) {
            journal.file = JournalFile::create(journal_path(name), journal.generation);
        }
        journal.file->append(record);
    } catch (...) {
        journals_.erase(found);  // the next change writes a whole new base
        throw;
    }
    if (settings_changed) {
        journal.settings = without_peers(change.settings);
    }
}

// A new base from the running tunnel: its peers keep their ids, which the journal's records
// will name.
void StateStore::compact(const std::string& name, TunnelState::Origin origin,
                         const std::optional<TunnelConfig>& base, const Change& change) {
    journals_.erase(name);
    nlohmann::json current = tunnel_config_to_json(without_peers(change.settings));
    auto& peers = current["peers"];
    std::vector<PeerId> ids;
    ids.reserve(change.peers.size());
    for (const auto& [id, peer] : change.peers) {
        peers.push_back(peer_config_to_json(peer));
        ids.push_back(id);
    }
    const uint64_t generation = new_generation();
    const std::string text = base_text(origin, base, std::move(current), generation, &ids);
    write_base(directory_, base_path(name), text);
    // From here the old journal is stale (its generation is the old base's): a crash before it
    // goes leaves it to be ignored by the next load.
    std::error_code error;
    std::filesystem::remove(journal_path(name), error);
    journals_.emplace(name, Journal{change.session, generation, text.size(),
                                    without_peers(change.settings), std::nullopt});
}

void StateStore::erase(const std::string& name) {
    journals_.erase(name);
    // The base first: a journal without one is removed by the next load, while a base without
    // its journal would bring back an older state.
    // remove() is not an error for a file that is not there; anything else is.
    std::filesystem::remove(base_path(name));
    std::filesystem::remove(journal_path(name));
    fsync_directory(directory_);
}

}  // namespace tunlab
