#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <tunlab/Manager_adaptor.h>

#include "service/bus_context.hpp"

namespace tunlab::bus {

// /org/tunlab1, org.tunlab1.Manager.
class ManagerObject final : public GatedAdaptorInterfaces<org::tunlab1::Manager_adaptor> {
  public:
    ManagerObject(sdbus::IConnection& connection, BusContext& context);
    ~ManagerObject();

    void emit_tunnels_changed();

  private:
    sdbus::ObjectPath CreateTunnel(const std::string& name,
                                   const std::map<std::string, sdbus::Variant>& options) override;
    void DeleteTunnel(const std::string& name) override;
    sdbus::ObjectPath GetTunnel(const std::string& name) override;
    std::string Version() override;
    std::vector<sdbus::ObjectPath> Tunnels() override;

    BusContext& context_;
};

}  // namespace tunlab::bus
