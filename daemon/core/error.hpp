#pragma once

#include <stdexcept>
#include <string>

#include "util/printable.hpp"

namespace tunlab {

// What went wrong with a request, in terms a client can act on. The D-Bus layer maps each kind
// to org.tunlab1.Error.<Kind>; the message says which argument and why.
enum class ErrorKind { InvalidArgument, NotFound, AlreadyExists, PermissionDenied, Failed };

class RequestError : public std::runtime_error {
  public:
    // Where the message quotes what the caller sent (a name, an option key), the quote is
    // made with quote_input(); the whole message is made printable and bounded here.
    // `system_errno`: the errno of a system call that refused (Failed), for clients that speak
    // in errno (WireGuard's control socket); 0 = none.
    RequestError(ErrorKind kind, const std::string& message, int system_errno = 0)
        : std::runtime_error(printable(message, kMessageCharacters)),
          kind_(kind),
          system_errno_(system_errno) {}
    ErrorKind kind() const { return kind_; }
    int system_errno() const { return system_errno_; }

  private:
    ErrorKind kind_;
    int system_errno_;
};

}  // namespace tunlab
