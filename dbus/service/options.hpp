#pragma once

#include <sdbus-c++/Types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace tunlab::bus {

using Options = std::map<std::string, sdbus::Variant>;

// The a{sv} option maps of the API use the same keys and meanings as the JSON tunnel files, so
// they are converted to JSON and checked by the same code. Accepted variant types: strings,
// booleans, integers, arrays of strings, and (nested) a{sv} / aa{sv}. Anything else throws
// RequestError(InvalidArgument) naming the option.
nlohmann::json options_to_json(const Options& options);

}  // namespace tunlab::bus
