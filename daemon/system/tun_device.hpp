#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/tunnel_settings.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

// What the kernel agreed to hand us through a TUN device opened with IFF_VNET_HDR. Every
// packet read or written then starts with a virtio_net_hdr; `tso` lets the kernel give us
// TCP segments of up to 64 KB (with the checksum left to us), `uso` the same for UDP.
struct TunOffloads {
    bool vnet_header = false;
    bool tso = false;
    bool uso = false;
};

// What an existing device was like before we changed it, so that we can put it back.
struct LinkSettings {
    uint32_t mtu = 0;
    bool up = false;
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
    // For a device that existed before us (created() false): its MTU and link state as we
    // found them. nullopt for a device we created, which vanishes with us.
    const std::optional<LinkSettings>& found_settings() const { return found_settings_; }
    const TunOffloads& offloads() const { return offloads_; }

  private:
    void negotiate_offloads();
    LinkSettings read_link_settings() const;

    UniqueFd fd_;
    std::string name_;
    unsigned index_ = 0;
    DeviceMode mode_;
    bool created_ = true;
    std::optional<LinkSettings> found_settings_;
    TunOffloads offloads_;
};

}  // namespace tunlab
