#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tunlab {

// How much of one piece of outside text (a bus argument, a key or value from a file) an error
// message or log line quotes, and how long a whole message may be. A caller may send a name of
// 30 MB: quoted whole (four times as long once escaped) the reply outgrew the bus's message
// limit and the bus dropped the daemon.
inline constexpr size_t kQuotedCharacters = 64;
inline constexpr size_t kMessageCharacters = 1024;

// `text` fit to quote in an error message or a log line, when it came from a file or the bus:
// control characters become \xNN (a NUL would end the message early, as what() and sd-bus
// error messages are C strings, and a newline would forge a second log line), and after
// `max_characters` characters (UTF-8 sequences count as one, an escape as one) the rest is
// left out and marked with "…". Reads no further into `text` than it shows.
std::string printable(std::string_view text, size_t max_characters);

// One piece of outside text inside a message: printable(text, kQuotedCharacters).
std::string quote_input(std::string_view text);

}  // namespace tunlab
