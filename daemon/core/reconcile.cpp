#include "core/reconcile.hpp"

#include <set>

namespace tunlab {

Reconciliation reconcile(const std::vector<TunnelConfig>& files,
                         const std::map<std::string, TunnelState>& saved) {
    Reconciliation result;
    std::set<std::string> named_by_file;
    for (const auto& file : files) {
        named_by_file.insert(file.name);
        const auto state = saved.find(file.name);
        const TunnelState fresh{TunnelState::Origin::File, file, file};
        if (state == saved.end()) {
            result.saves.emplace_back(file.name, fresh);
            result.wanted.emplace(file.name, file);
        } else if (state->second.origin == TunnelState::Origin::Bus) {
            result.notes.push_back({true, "tunnel " + file.name +
                                              ": a tunnel of that name was created over the "
                                              "bus; its configuration file is ignored"});
            if (state->second.current) {
                result.wanted.emplace(file.name, *state->second.current);
            }
        } else if (state->second.base != file) {
            result.notes.push_back({false, "tunnel " + file.name +
                                               ": configuration file changed; the tunnel follows "
                                               "it (changes made over the bus, if any, are "
                                               "dropped)"});
            result.saves.emplace_back(file.name, fresh);
            result.wanted.emplace(file.name, file);
        } else if (state->second.current) {
            result.wanted.emplace(file.name, *state->second.current);
        }  // else: deleted over the bus, and the file has not changed since
    }
    for (const auto& [name, state] : saved) {
        if (state.origin == TunnelState::Origin::File && !named_by_file.contains(name)) {
            result.erases.push_back(name);  // its file is gone
        } else if (state.origin == TunnelState::Origin::Bus && state.current) {
            result.wanted.emplace(name, *state.current);
        }
    }
    return result;
}

}  // namespace tunlab
