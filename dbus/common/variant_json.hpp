#pragma once

#include <sdbus-c++/Types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tunlab::bus {

// The value of a variant as JSON, for the types the API uses: strings, booleans, integers,
// string and object-path arrays, and (nested) variants and a{sv} maps. For any other type
// `unsupported(path, signature)` decides: the daemon throws, tunlabctl prints the signature.
// `path` names the value ("options.peers.endpoint") for that message.
using UnsupportedVariant =
    std::function<nlohmann::json(const std::string& path, const std::string& signature)>;

inline nlohmann::json variant_to_json(const sdbus::Variant& value, const std::string& path,
                                      const UnsupportedVariant& unsupported, int depth = 0) {
    // Bounds recursion on input from the bus; the API has nothing nested deeper.
    constexpr int kMaximumDepth = 4;
    const std::string type = value.peekValueType();
    using Map = std::map<std::string, sdbus::Variant>;
    auto map_to_json = [&](const Map& map) {
        nlohmann::json object = nlohmann::json::object();
        for (const auto& [name, element] : map) {
            object[name] = variant_to_json(element, path + "." + name, unsupported, depth + 1);
        }
        return object;
    };
    if (depth > kMaximumDepth) {
        return unsupported(path, "(nested more than " + std::to_string(kMaximumDepth) + " deep)");
    }
    if (type == "s")
        return value.get<std::string>();
    if (type == "b")
        return value.get<bool>();
    if (type == "y")
        return value.get<uint8_t>();
    if (type == "q")
        return value.get<uint16_t>();
    if (type == "u")
        return value.get<uint32_t>();
    if (type == "t")
        return value.get<uint64_t>();
    if (type == "n")
        return value.get<int16_t>();
    if (type == "i")
        return value.get<int32_t>();
    if (type == "x")
        return value.get<int64_t>();
    if (type == "as")
        return value.get<std::vector<std::string>>();
    if (type == "ao") {
        const auto paths = value.get<std::vector<sdbus::ObjectPath>>();
        return std::vector<std::string>(paths.begin(), paths.end());
    }
    if (type == "v") {
        return variant_to_json(value.get<sdbus::Variant>(), path, unsupported, depth + 1);
    }
    if (type == "av") {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& element : value.get<std::vector<sdbus::Variant>>()) {
            array.push_back(variant_to_json(element, path, unsupported, depth + 1));
        }
        return array;
    }
    if (type == "a{sv}")
        return map_to_json(value.get<Map>());
    if (type == "aa{sv}") {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& map : value.get<std::vector<Map>>()) {
            array.push_back(map_to_json(map));
        }
        return array;
    }
    return unsupported(path, type);
}

}  // namespace tunlab::bus
