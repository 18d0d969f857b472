#pragma once

#include <string>

#include "util/unique_fd.hpp"

namespace tunlab {

enum class DeviceMode { Tun, Tap };

// What the kernel agreed to hand us through a TUN device opened with IFF_VNET_HDR. Every
// packet read or written then starts with a virtio_net_hdr; `tso` lets the kernel give us
// TCP segments of up to 64 KB (with the checksum left to us), `uso` the same for UDP.
struct TunOffloads {
    bool vnet_header = false;
    bool tso = false;
    bool uso = false;
};

// A TUN (IP packets) or TAP (Ethernet frames) device without packet-information header, as
// the lab opens it. The kernel deletes a non-persistent device when its last fd closes, so a
// device we created disappears with this object; an existing persistent device we attached
// to stays (`created()` tells which).
class TunDevice {
  public:
    // `name` may be a template such as "tun%d". With `offload` (TUN mode only) the device
    // is opened with a virtio_net_hdr and the kernel is asked for the segmentation offloads
    // it supports; none is required. Throws std::system_error.
    TunDevice(DeviceMode mode, const std::string& name, bool offload = false);

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    unsigned index() const { return index_; }
    DeviceMode mode() const { return mode_; }
    bool created() const { return created_; }
    const TunOffloads& offloads() const { return offloads_; }

  private:
    void negotiate_offloads();

    UniqueFd fd_;
    std::string name_;
    unsigned index_ = 0;
    DeviceMode mode_;
    bool created_ = true;
    TunOffloads offloads_;
};

}  // namespace tunlab
