#include "monitor.hpp"

#include <iostream>
#include <nlohmann/json.hpp>

#include "common/variant_json.hpp"

namespace tunlabctl {

namespace {

nlohmann::json variant_value(const std::string& name, const sdbus::Variant& value) {
    return tunlab::bus::variant_to_json(
        value, name, [](const std::string&, const std::string& type) { return "(" + type + ")"; });
}

nlohmann::json signal_arguments(sdbus::Message& message) {
    const std::string member = message.getMemberName();
    if (member == "TunnelAdded" || member == "TunnelRemoved") {
        sdbus::ObjectPath path;
        std::string name;
        message >> path >> name;
        return {{"tunnel", std::string(path)}, {"name", name}};
    }
    if (member == "PeerAdded" || member == "PeerRemoved") {
        sdbus::ObjectPath path;
        message >> path;
        return {{"peer", std::string(path)}};
    }
    if (member == "EndpointChanged") {
        std::string endpoint;
        message >> endpoint;
        return {{"endpoint", endpoint}};
    }
    if (member == "HandshakeCompleted") {
        uint64_t latest_handshake = 0;
        message >> latest_handshake;
        return {{"latest_handshake", latest_handshake}};
    }
    if (member == "PropertiesChanged") {
        std::string interface;
        std::map<std::string, sdbus::Variant> changed;
        std::vector<std::string> invalidated;
        message >> interface >> changed >> invalidated;
        nlohmann::json values = nlohmann::json::object();
        for (const auto& [name, value] : changed) {
            values[name] = variant_value(name, value);
        }
        return {{"interface", interface}, {"changed", values}, {"invalidated", invalidated}};
    }
    return nlohmann::json::object();
}

}  // namespace

int monitor(Api& api, bool json) {
    auto slot = api.connection().addMatch(
        "type='signal',sender='org.tunlab1'", [json](sdbus::Message& message) {
            const nlohmann::json arguments = signal_arguments(message);
            if (json) {
                std::cout << nlohmann::json{
                    {"signal", message.getMemberName()},
                    {"interface", message.getInterfaceName()},
                    {"path", message.getPath()},
                    {"arguments",
                     arguments}}.dump();
            } else {
                std::cout << message.getPath() << " " << message.getMemberName();
                for (const auto& [key, value] : arguments.items()) {
                    std::cout << " " << key << "="
                              << (value.is_string() ? value.get<std::string>() : value.dump());
                }
            }
            // One line per signal, visible at once even through a pipe.
            std::cout << std::endl;
        });
    api.connection().enterEventLoop();
    return 0;
}

}  // namespace tunlabctl
