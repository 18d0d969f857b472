#include "service/errors.hpp"

namespace tunlab::bus {

std::string error_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::InvalidArgument:
            return "org.tunlab1.Error.InvalidArgument";
        case ErrorKind::NotFound:
            return "org.tunlab1.Error.NotFound";
        case ErrorKind::AlreadyExists:
            return "org.tunlab1.Error.AlreadyExists";
        case ErrorKind::PermissionDenied:
            return "org.tunlab1.Error.PermissionDenied";
        case ErrorKind::Failed:
            break;
    }
    return "org.tunlab1.Error.Failed";
}

sdbus::Error bus_error(ErrorKind kind, const std::string& message) {
    return sdbus::Error(error_name(kind), message);
}

}  // namespace tunlab::bus
