#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

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

// One JSON file per tunnel in <state directory>/tunnels/, each replaced atomically (see
// write_file_atomically), so a crash leaves the old state or the new one, never half of one.
class StateStore {
  public:
    explicit StateStore(std::filesystem::path state_directory);

    // Every readable state file. A file that cannot be read is reported in `errors`, renamed
    // to <name>.json.corrupt (kept for the admin, never overwritten by the next save) and
    // skipped.
    std::map<std::string, TunnelState> load(std::vector<std::string>& errors) const;
    // Throws std::system_error if the state cannot be written.
    void save(const std::string& name, const TunnelState& state) const;
    // The same from parts, for a caller that keeps them apart (and would copy to join them).
    void save(const std::string& name, TunnelState::Origin origin,
              const std::optional<TunnelConfig>& base,
              const std::optional<TunnelConfig>& current) const;
    // Throws std::filesystem::filesystem_error if the state cannot be removed.
    void erase(const std::string& name) const;

  private:
    std::filesystem::path directory_;
};

}  // namespace tunlab
