#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/state_store.hpp"
#include "model/tunnel_settings.hpp"

namespace tunlab {

// What should run, given the tunnel files and the saved state, and what to write back to the
// state for it: decided without touching anything, so that the rules can be read and tested on
// their own (README, "Which wins, a file or the saved state"):
// - a tunnel created by request comes back as it was last saved (a file of the same name is
//   ignored, with a warning);
// - a tunnel from a file comes back with the changes made to it by request, for as long as
//   its file says what it said when those changes began; once an admin edits the file, the
//   file wins and the changes made by request are dropped (a notice says so);
// - a tunnel from a file that was deleted by request stays deleted while the file is
//   unchanged;
// - a file that is removed takes its tunnel and its state with it.
struct Reconciliation {
    struct Note {
        bool warning = false;  // else a notice
        std::string text;
    };
    std::map<std::string, TunnelConfig> wanted;              // name → how it should run
    std::vector<std::pair<std::string, TunnelState>> saves;  // states to write
    std::vector<std::string> erases;                         // states to remove
    std::vector<Note> notes;
};

Reconciliation reconcile(const std::vector<TunnelConfig>& files,
                         const std::map<std::string, TunnelState>& saved);

}  // namespace tunlab
