#include "service/manager_object.hpp"

#include "config/tunnel_config.hpp"
#include "core/error.hpp"
#include "service/bus_service.hpp"
#include "service/errors.hpp"
#include "service/object_paths.hpp"
#include "service/options.hpp"

namespace tunlab::bus {

ManagerObject::ManagerObject(sdbus::IConnection& connection, BusService& service)
    : GatedAdaptorInterfaces(connection, kManagerPath, service.object_policy(), {"GetTunnel"}),
      service_(service) {
    registerAdaptor();
}

ManagerObject::~ManagerObject() {
    unregisterAdaptor();
}

void ManagerObject::emit_tunnels_changed() {
    getObject().emitPropertiesChangedSignal(INTERFACE_NAME, {"Tunnels"});
}

sdbus::ObjectPath ManagerObject::CreateTunnel(
    const std::string& name, const std::map<std::string, sdbus::Variant>& options) {
    return guarded([&] {
        const TunnelConfig config = tunnel_config_from_json(name, options_to_json(options));
        service_.manager().create(config);
        service_.tunnels_changed();
        return sdbus::ObjectPath(tunnel_path(name));
    });
}

void ManagerObject::DeleteTunnel(const std::string& name) {
    guarded([&] {
        service_.manager().remove(name);
        service_.tunnels_changed();
    });
}

sdbus::ObjectPath ManagerObject::GetTunnel(const std::string& name) {
    return guarded([&] {
        if (service_.manager().find(name) == nullptr) {
            throw RequestError(ErrorKind::NotFound,
                               "name: there is no tunnel named " + quote_input(name));
        }
        return sdbus::ObjectPath(tunnel_path(name));
    });
}

std::string ManagerObject::Version() {
    return service_.version();
}

std::vector<sdbus::ObjectPath> ManagerObject::Tunnels() {
    return guarded([&] {
        std::vector<sdbus::ObjectPath> paths;
        for (const auto& [name, tunnel] : service_.manager().tunnels()) {
            paths.emplace_back(tunnel_path(name));
        }
        return paths;
    });
}

}  // namespace tunlab::bus
