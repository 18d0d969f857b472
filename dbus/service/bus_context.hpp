#pragma once

#include <functional>
#include <string>
#include <type_traits>

#include "core/tunnel_manager.hpp"
#include "service/errors.hpp"
#include "service/gated_object.hpp"

namespace tunlab::bus {

// What a bus object may use of the service, and no more: the core it shows, the policy its
// methods run under, and the one way to tell the bus what changed.
struct BusContext {
    TunnelManager& manager;
    std::string version;
    ObjectPolicy policy;
    // Shows everything that changed since the last time, as signals and PropertiesChanged
    // (BusService::sync): after a method's change, and after the data planes' own.
    std::function<void()> publish;
};

// The body of a method that changes something: its caller was checked before its arguments
// were read (GatedObject); it makes the change (which is saved, or did not happen: the core's
// commit), then the change is published. Errors leave as documented bus errors (guarded()).
template <typename Change>
auto changing(BusContext& context, Change&& change) -> decltype(change()) {
    return guarded([&] {
        if constexpr (std::is_void_v<decltype(change())>) {
            change();
            context.publish();
        } else {
            auto result = change();
            context.publish();
            return result;
        }
    });
}

}  // namespace tunlab::bus
