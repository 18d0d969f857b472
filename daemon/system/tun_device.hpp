#pragma once

#include <string>

#include "util/unique_fd.hpp"

namespace tunlab {

enum class DeviceMode { Tun, Tap };

// A TUN (IP packets) or TAP (Ethernet frames) device without packet-information header, as
// the lab opens it. The kernel deletes a non-persistent device when its last fd closes, so a
// device we created disappears with this object; an existing persistent device we attached
// to stays (`created()` tells which).
class TunDevice {
  public:
    // `name` may be a template such as "tun%d". Throws std::system_error.
    TunDevice(DeviceMode mode, const std::string& name);

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    unsigned index() const { return index_; }
    DeviceMode mode() const { return mode_; }
    bool created() const { return created_; }

  private:
    UniqueFd fd_;
    std::string name_;
    unsigned index_ = 0;
    DeviceMode mode_;
    bool created_ = true;
};

}  // namespace tunlab
