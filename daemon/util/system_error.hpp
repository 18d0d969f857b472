#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace tunlab {

// A failed system call, with what we were doing: "TUNSETIFF tun0: Operation not permitted".
inline std::system_error system_error(const std::string& what, int error_number = errno) {
    return std::system_error(error_number, std::generic_category(), what);
}

}  // namespace tunlab
