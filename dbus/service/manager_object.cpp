#include "service/manager_object.hpp"

#include "core/error.hpp"
#include "service/object_paths.hpp"
#include "service/requests.hpp"
#include "util/printable.hpp"

namespace tunlab::bus {

ManagerObject::ManagerObject(sdbus::IConnection& connection, BusContext& context)
    : GatedAdaptorInterfaces(connection, kManagerPath, context.policy, {"GetTunnel"}),
      context_(context) {
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
    return changing(context_, [&] {
        context_.manager.create(create_tunnel_request(name, options));
        return sdbus::ObjectPath(tunnel_path(name));
    });
}

void ManagerObject::DeleteTunnel(const std::string& name) {
    changing(context_, [&] { context_.manager.remove(name); });
}

sdbus::ObjectPath ManagerObject::GetTunnel(const std::string& name) {
    return guarded([&] {
        if (context_.manager.find(name) == nullptr) {
            throw RequestError(ErrorKind::NotFound,
                               "name: there is no tunnel named " + quote_input(name));
        }
        return sdbus::ObjectPath(tunnel_path(name));
    });
}

std::string ManagerObject::Version() {
    return context_.version;
}

std::vector<sdbus::ObjectPath> ManagerObject::Tunnels() {
    return guarded([&] {
        std::vector<sdbus::ObjectPath> paths;
        for (const auto& [name, tunnel] : context_.manager.tunnels()) {
            paths.emplace_back(tunnel_path(name));
        }
        return paths;
    });
}

}  // namespace tunlab::bus
