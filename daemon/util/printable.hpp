#pragma once

#include <string>
#include <string_view>

namespace tunlab {

// `text` fit to quote in an error message or a log line, when it came from a file or the bus:
// control characters become \xNN. A NUL would otherwise end the message early (what() is a C
// string, and so is an sd-bus error message) and a newline would forge a second log line.
// Everything else, UTF-8 included, is kept as it is.
std::string printable(std::string_view text);

}  // namespace tunlab
