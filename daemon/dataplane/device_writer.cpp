#include "dataplane/device_writer.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "util/log.hpp"

namespace tunlab {

namespace {

// A virtio_net_hdr of zeros: the packet is whole and checksummed, no offload asked of the
// kernel.
constexpr std::array<uint8_t, offload::kVirtioNetHdrSize> kPlainHeader{};

}  // namespace

DeviceWriter::DeviceWriter(int fd, bool vnet_header, offload::CoalescerLimits coalescing)
    : fd_(fd),
      vnet_header_(vnet_header),
      coalescing_(vnet_header),
      max_pending_(coalescing.max_packets),
      coalescer_(coalescing) {
    pending_.reserve(max_pending_);
}

void DeviceWriter::add(std::span<const uint8_t> packet, Peer& peer, size_t counted_bytes) {
    if (counted_bytes == 0) {
        counted_bytes = packet.size();
    }
    if (coalescing_) {
        // The caller flushes when full(), so the coalescer always has room.
        [[maybe_unused]] const bool taken = coalescer_.add(packet, &peer, counted_bytes);
        return;
    }
    pending_.push_back({packet, &peer, counted_bytes});
}

bool DeviceWriter::write_one(std::span<const uint8_t> packet) {
    if (!vnet_header_) {
        return ::write(fd_, packet.data(), packet.size()) >= 0;
    }
    const iovec parts[] = {
        {const_cast<uint8_t*>(kPlainHeader.data()), kPlainHeader.size()},
        {const_cast<uint8_t*>(packet.data()), packet.size()},
    };
    return ::writev(fd_, parts, 2) >= 0;
}

bool DeviceWriter::write_coalesced(const offload::CoalescedWrite& write) {
    if (::write(fd_, write.bytes.data(), write.bytes.size()) >= 0) {
        return true;
    }
    if (errno == EINVAL && write.packets > 1) {
        log::warning("the TUN device refused a coalesced write (", std::strerror(errno),
                     "); writing packet by packet from now on");
        coalescing_ = false;
    }
    return false;
}

}  // namespace tunlab
