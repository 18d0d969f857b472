#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

#include "core/error.hpp"

namespace tunlab::uapi {

// A request on WireGuard's control socket that failed: the client is told -errno (`wg` prints
// strerror of it), the log gets the message. The message never holds a key.
class UapiError : public std::runtime_error {
  public:
    UapiError(int error_number, const std::string& message)
        : std::runtime_error(message), errno_(error_number) {}
    int error_number() const { return errno_; }

  private:
    int errno_;
};

// The errno a client of the control socket gets for a refused change.
inline int errno_of(const RequestError& error) {
    switch (error.kind()) {
        case ErrorKind::InvalidArgument:
            return EINVAL;
        case ErrorKind::NotFound:
            return ENOENT;
        case ErrorKind::AlreadyExists:
            return EEXIST;
        case ErrorKind::PermissionDenied:
            return EPERM;
        case ErrorKind::Failed:
            break;
    }
    return error.system_errno() != 0 ? error.system_errno() : EIO;
}

}  // namespace tunlab::uapi
