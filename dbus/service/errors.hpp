#pragma once

#include <sdbus-c++/Error.h>

#include <string>

#include "config/tunnel_config.hpp"
#include "core/error.hpp"

namespace tunlab::bus {

// org.tunlab1.Error.<Kind>: the names are part of the API (docs/dbus-api.md).
std::string error_name(ErrorKind kind);
sdbus::Error bus_error(ErrorKind kind, const std::string& message);

// Runs a method or property handler. Whatever it throws leaves as an sdbus::Error with a
// documented name: sdbus-c++ 1.2 lets any other exception unwind through libsystemd's C code,
// which takes the daemon down.
template <typename Handler>
auto guarded(Handler&& handler) -> decltype(handler()) {
    try {
        return handler();
    } catch (const sdbus::Error&) {
        throw;
    } catch (const RequestError& error) {
        throw bus_error(error.kind(), error.what());
    } catch (const ConfigError& error) {
        throw bus_error(ErrorKind::InvalidArgument, error.what());
    } catch (const std::exception& error) {
        throw bus_error(ErrorKind::Failed, error.what());
    } catch (...) {
        throw bus_error(ErrorKind::Failed, "unexpected error");
    }
}

}  // namespace tunlab::bus
