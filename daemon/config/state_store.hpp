#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/journal_file.hpp"
#include "config/tunnel_config.hpp"

namespace tunlab {

// What the daemon remembers about one tunnel across restarts, crashes and reboots.
struct TunnelState {
    enum class Origin { File, Bus };
    Origin origin = Origin::Bus;
    // Origin::File: the configuration file's content the current state grew from. While the
    // file still says this, the state (with the changes made over the bus) wins; once an
    // admin edits the file, the file wins.
    std::optional<TunnelConfig> base;
    // The tunnel as it should run; nullopt: deleted over the bus (while the file is unchanged).
    std::optional<TunnelConfig> current;

    bool operator==(const TunnelState&) const = default;
};

// The state of each tunnel in <state directory>/tunnels/ (mode 0700, files 0600: they hold keys):
//
// - <name>.json, the base: the whole state, replaced atomically (see write_file_atomically),
//   so that a crash leaves the old one or the new one, never half of one;
// - <name>.journal, the changes made since that base (journal_format.hpp): one record per
//   change, holding only the peers the change touched (and the other settings if they
//   changed), appended and fdatasync'ed before the change's request is answered.
//
// So a change costs one small append whatever the number of peers, where rewriting the base
// costs a JSON of every peer and two fsyncs (0.2 s at 10,000 peers). When the journal has
// grown as big as its base (at least 64 KiB), the next change writes a new base instead and the
// journal starts over, so that loading (base + replay) stays within twice the base's cost and
// the rewrites stay rare (one per few thousand changes at 10,000 peers).
class StateStore {
  public:
    explicit StateStore(std::filesystem::path state_directory);

    // Every readable state: the base with its journal replayed. A base that cannot be read is
    // reported in `errors`, renamed to <name>.json.corrupt (kept for the admin, never
    // overwritten by the next save) and skipped (its journal kept as <name>.journal.corrupt).
    // A journal whose last record was cut short by a crash (a change not yet answered) loads
    // without it, and says so in `errors`; a record that is damaged with more after it ends
    // the replay there: reported, the state up to it becomes the new base and the journal is
    // kept as <name>.journal.corrupt. Also forgets the open journals: the next change of each
    // tunnel writes a new base.
    std::map<std::string, TunnelState> load(std::vector<std::string>& errors);
    // Writes a new base (the journal starts over). Throws std::system_error if the state
    // cannot be written.
    void save(const std::string& name, const TunnelState& state);
    // The same from parts, for a caller that keeps them apart (and would copy to join them).
    void save(const std::string& name, TunnelState::Origin origin,
              const std::optional<TunnelConfig>& base, const std::optional<TunnelConfig>& current);

    // One change to a running tunnel, as the store needs it: without a copy of every peer.
    struct Change {
        // Tells one running tunnel from another of the same name (a restart): peer ids are only
        // meaningful within one.
        uint64_t session = 0;
        const TunnelConfig& settings;  // everything but the peers (its peers are ignored)
        const std::map<PeerId, PeerConfig>& peers;  // every configured peer, by id
        std::span<const PeerId> touched;  // the peers the change added, changed or removed
    };
    // Saves the tunnel as `change` leaves it, whose origin and base are `origin` and `base`:
    // appends the change to the journal, or writes a new base if there is no journal to append
    // to (the first change of a session, or after a failure) or it has grown big enough. Throws
    // std::system_error if the state cannot be written; the next change then writes a new base.
    void save_change(const std::string& name, TunnelState::Origin origin,
                     const std::optional<TunnelConfig>& base, const Change& change);

    // Throws std::filesystem::filesystem_error if the state cannot be removed.
    void erase(const std::string& name);

  private:
    // The journal of a tunnel whose base this store wrote in this session.
    struct Journal {
        uint64_t session = 0;
        uint64_t generation = 0;  // of the base, and so of the journal
        size_t base_bytes = 0;
        TunnelConfig settings;            // as last saved, without peers
        std::optional<JournalFile> file;  // created with the first record
    };

    std::filesystem::path base_path(const std::string& name) const;
    std::filesystem::path journal_path(const std::string& name) const;
    void compact(const std::string& name, TunnelState::Origin origin,
                 const std::optional<TunnelConfig>& base, const Change& change);
    // Loads the journal beside the base `name` (whose generation is `generation`) onto `state`.
    void replay(const std::string& name, std::optional<uint64_t> generation,
                const std::vector<PeerId>& peer_ids, TunnelState& state,
                std::vector<std::string>& errors);

    std::filesystem::path directory_;
    std::map<std::string, Journal> journals_;
};

}  // namespace tunlab
