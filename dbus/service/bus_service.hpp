#pragma once

#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tunnel_manager.hpp"
#include "service/authorization.hpp"
#include "service/bus_context.hpp"
#include "service/manager_object.hpp"
#include "service/tunnel_object.hpp"

namespace tunlab::bus {

// The org.tunlab1 API on the system bus, served from the daemon's control loop: the loop
// polls poll_entry() until poll_timeout_ms(), then calls process(). The bus objects mirror the
// TunnelManager; every change reaches the bus one way, through sync(): the objects' own
// methods call it (BusContext::publish), and so does the loop after the data planes changed
// their peers.
class BusService {
  public:
    // Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS) and owns org.tunlab1; throws
    // sdbus::Error if that is not possible (e.g. the name is taken or the policy forbids it).
    BusService(TunnelManager& manager, std::string version, Authorizer authorizer);
    ~BusService();

    pollfd poll_entry() const;
    int poll_timeout_ms() const;
    // Handles what is pending on the connection, up to a bound per call. True if more may be
    // pending: then poll without sleeping and call again.
    bool process();

    // Shows what changed since the last sync. Returns how many signals that took.
    size_t sync();

  private:
    // The match callback that registers a peer's object before sd-bus dispatches a call to
    // its path (see PeerObjects). Never throws: it runs inside libsystemd's C code.
    void materialize_target(sdbus::Message& message) noexcept;

    Authorizer authorizer_;
    size_t signals_sent_ = 0;
    BusContext context_;
    std::unique_ptr<sdbus::IConnection> connection_;
    sdbus::Slot materialize_match_;  // after connection_: released before it
    std::unique_ptr<ManagerObject> manager_object_;
    std::map<std::string, std::unique_ptr<TunnelObject>> tunnels_;
};

}  // namespace tunlab::bus
