#include "service/options.hpp"

#include "common/variant_json.hpp"
#include "core/error.hpp"

namespace tunlab::bus {

nlohmann::json options_to_json(const Options& options) {
    const UnsupportedVariant reject = [](const std::string& path, const std::string& type) {
        throw RequestError(ErrorKind::InvalidArgument,
                           path + ": values of D-Bus type '" + type + "' are not accepted");
        return nlohmann::json();
    };
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, value] : options) {
        object[key] = variant_to_json(value, key, reject);
    }
    return object;
}

}  // namespace tunlab::bus
