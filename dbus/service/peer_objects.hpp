#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tunnel.hpp"
#include "peers/peer.hpp"
#include "service/bus_context.hpp"
#include "service/peer_object.hpp"

namespace tunlab::bus {

// The peer objects of one tunnel, registered on demand. sdbus-c++ 1.2 costs about 5 KB per
// registered object, so 10,000 peers registered up front were 50 MiB; a peer's state is its
// PeerView, which the data plane keeps anyway. A PeerObject is registered only when
//   - a call arrives for its path (BusService's match callback runs before sd-bus looks the
//     path up, see materialize()), or
//   - it has to emit EndpointChanged/PropertiesChanged (sd-bus emits those only for a
//     registered vtable): then only for as long as that takes.
// Tunnels with up to kResidentObjects peers register all of them, so that `busctl tree` shows
// every peer of a small setup; above that, at most about kResidentObjects stay registered
// (the least recently called go), so that walking all peers (tunlabctl status) does not bring
// the 5 KB per peer back for good.
class PeerObjects {
  public:
    static constexpr size_t kResidentObjects = 256;

    PeerObjects(sdbus::IConnection& connection, BusContext& context, Tunnel& tunnel);
    ~PeerObjects();
    PeerObjects(const PeerObjects&) = delete;
    PeerObjects& operator=(const PeerObjects&) = delete;

    // Called with each peer's path and whether it was added (or removed).
    using Announce = std::function<void(const std::string& path, bool added)>;
    // Takes the tunnel's newest snapshot: announces the peers that came and went (if
    // `announce` is set) and lets the objects of changed peers signal. True if the set of
    // peers changed. Never unregisters an object other than a removed peer's, so it may run
    // inside a PeerObject's own handler.
    bool sync(std::shared_ptr<const PeerViews> views, const Announce& announce);
    // Registers the object of peer `id` if the peer exists and it is not registered yet.
    // Only for BusService's match callback: it may unregister idle objects, which is safe
    // there because no object's handler is running.
    void materialize(PeerId id);

    // Every peer's path, in id order, registered or not.
    std::vector<sdbus::ObjectPath> paths() const;
    size_t registered() const { return objects_.size(); }

  private:
    struct Registered {
        std::unique_ptr<PeerObject> object;
        uint64_t last_used;  // use_clock_ when last materialized or called
    };

    std::string path_of(PeerId id) const;
    PeerObject& add(const std::shared_ptr<const PeerView>& view);
    void evict_least_recently_used();
    // Registers the objects that a small tunnel shows without being asked.
    void register_all_if_small();

    sdbus::IConnection& connection_;
    BusContext& context_;
    Tunnel& tunnel_;
    std::string peer_path_prefix_;            // "<tunnel path>/peer/"
    std::shared_ptr<const PeerViews> views_;  // in id order
    std::map<PeerId, Registered> objects_;
    uint64_t use_clock_ = 0;
};

}  // namespace tunlab::bus
