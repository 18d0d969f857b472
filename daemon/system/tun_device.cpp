#include "system/tun_device.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <cstring>
#include <stdexcept>

#include "util/system_error.hpp"

namespace tunlab {

TunDevice::TunDevice(DeviceMode mode, const std::string& name) : mode_(mode) {
    if (name.empty() || name.size() >= IFNAMSIZ) {
        throw std::invalid_argument("interface name must be 1 to 15 characters");
    }
    // A name without a template that already exists was made by someone else (e.g. a
    // persistent device from `ip tuntap add`): we may use it but must not delete it.
    created_ = name.find('%') != std::string::npos || if_nametoindex(name.c_str()) == 0;

    fd_.reset(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd_.valid()) {
        throw system_error("open /dev/net/tun");
    }
    ifreq request{};
    std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
    request.ifr_flags =
        static_cast<short>((mode == DeviceMode::Tun ? IFF_TUN : IFF_TAP) | IFF_NO_PI);
    if (::ioctl(fd_.get(), TUNSETIFF, &request) < 0) {
        throw system_error("create " + name + " (TUNSETIFF)");
    }
    name_ = request.ifr_name;
    index_ = if_nametoindex(name_.c_str());
    if (index_ == 0) {
        throw system_error("look up the index of " + name_);
    }
}

}  // namespace tunlab
