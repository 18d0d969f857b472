#include "system/tun_device.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>

#include "util/system_error.hpp"

// Debian 12's kernel headers predate UDP segmentation offload on TUN (Linux 6.2).
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace tunlab {

TunDevice::TunDevice(DeviceMode mode, const std::string& name, bool offload) : mode_(mode) {
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
    const bool vnet_header = offload && mode == DeviceMode::Tun;
    ifreq request{};
    std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
    request.ifr_flags = static_cast<short>((mode == DeviceMode::Tun ? IFF_TUN : IFF_TAP) |
                                           IFF_NO_PI | (vnet_header ? IFF_VNET_HDR : 0));
    if (::ioctl(fd_.get(), TUNSETIFF, &request) < 0) {
        throw system_error("create " + name + " (TUNSETIFF)");
    }
    name_ = request.ifr_name;
    index_ = if_nametoindex(name_.c_str());
    if (index_ == 0) {
        throw system_error("look up the index of " + name_);
    }
    if (!created_) {
        found_settings_ = read_link_settings();
    }
    if (vnet_header) {
        offloads_.vnet_header = true;
        negotiate_offloads();
    }
}

LinkSettings TunDevice::read_link_settings() const {
    // The interface ioctls work on any socket; AF_UNIX is there whatever the network setup.
    const UniqueFd socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq request{};
    std::strncpy(request.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    if (!socket.valid() || ::ioctl(socket.get(), SIOCGIFMTU, &request) < 0) {
        throw system_error("read the MTU of " + name_);
    }
    LinkSettings settings;
    settings.mtu = static_cast<uint32_t>(request.ifr_mtu);
    if (::ioctl(socket.get(), SIOCGIFFLAGS, &request) < 0) {
        throw system_error("read the flags of " + name_);
    }
    settings.up = (request.ifr_flags & IFF_UP) != 0;
    return settings;
}

void TunDevice::negotiate_offloads() {
    // Ask for the most first; a kernel refuses flags it does not know with EINVAL. Without
    // TUN_F_CSUM nothing else may be set, and the header stays (always GSO_NONE).
    constexpr unsigned kTso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    constexpr unsigned kUso = TUN_F_USO4 | TUN_F_USO6;
    if (::ioctl(fd_.get(), TUNSETOFFLOAD, kTso | kUso) == 0) {
        offloads_.tso = offloads_.uso = true;
    } else if (::ioctl(fd_.get(), TUNSETOFFLOAD, kTso) == 0) {
        offloads_.tso = true;
    }
}

}  // namespace tunlab
