#include "service/options.hpp"

#include <vector>

#include "core/error.hpp"

namespace tunlab::bus {

namespace {

constexpr int kMaximumDepth = 4;

nlohmann::json variant_to_json(const sdbus::Variant& value, const std::string& key, int depth) {
    if (depth > kMaximumDepth) {
        throw RequestError(ErrorKind::InvalidArgument, key + ": nested too deeply");
    }
    const std::string type = value.peekValueType();
    if (type == "s") {
        return value.get<std::string>();
    }
    if (type == "b") {
        return value.get<bool>();
    }
    if (type == "y") {
        return value.get<uint8_t>();
    }
    if (type == "q") {
        return value.get<uint16_t>();
    }
    if (type == "u") {
        return value.get<uint32_t>();
    }
    if (type == "t") {
        return value.get<uint64_t>();
    }
    // Signed integers are accepted so that `busctl ... i 9090` works; a negative value then
    // fails the range check of the setting itself.
    if (type == "n") {
        return value.get<int16_t>();
    }
    if (type == "i") {
        return value.get<int32_t>();
    }
    if (type == "x") {
        return value.get<int64_t>();
    }
    if (type == "as") {
        return value.get<std::vector<std::string>>();
    }
    if (type == "v") {
        return variant_to_json(value.get<sdbus::Variant>(), key, depth + 1);
    }
    if (type == "av") {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& element : value.get<std::vector<sdbus::Variant>>()) {
            array.push_back(variant_to_json(element, key, depth + 1));
        }
        return array;
    }
    if (type == "a{sv}") {
        nlohmann::json object = nlohmann::json::object();
        for (const auto& [name, element] : value.get<Options>()) {
            object[name] = variant_to_json(element, key + "." + name, depth + 1);
        }
        return object;
    }
    if (type == "aa{sv}") {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& map : value.get<std::vector<Options>>()) {
            nlohmann::json object = nlohmann::json::object();
            for (const auto& [name, element] : map) {
                object[name] = variant_to_json(element, key + "." + name, depth + 1);
            }
            array.push_back(std::move(object));
        }
        return array;
    }
    throw RequestError(ErrorKind::InvalidArgument,
                       key + ": values of D-Bus type '" + type + "' are not accepted");
}

}  // namespace

nlohmann::json options_to_json(const Options& options) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, value] : options) {
        object[key] = variant_to_json(value, key, 0);
    }
    return object;
}

}  // namespace tunlab::bus
