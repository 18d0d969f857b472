#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "offload/coalescer.hpp"
#include "peers/peer.hpp"

namespace tunlab {

// Writes the packets of one receive batch from the network into the TUN/TAP device and
// reports each write's outcome, so that counters move only for what the device took.
//
// Packets are queued with add() (their bytes must stay valid until flush()). On a device
// with a virtio_net_hdr, consecutive TCP segments (and, where the kernel has USO, UDP
// datagrams) of one flow from one peer go in as one coalesced write (offload::Coalescer): the
// kernel then forwards or delivers up to 64 KB at once instead of one packet. Should the kernel
// refuse such a write (EINVAL: a kernel regression did this to wireguard-go), coalescing stops for
// good and that write's packets count as device errors; TCP sends them again.
class DeviceWriter {
  public:
    // `coalescing.udp`: the kernel takes UDP segmentation offload writes (TunOffloads::uso);
    // `coalescing.max_packets`: packets queued between flushes.
    DeviceWriter(int fd, bool vnet_header, offload::CoalescerLimits coalescing);

    bool full() const { return coalescing_ ? coalescer_.full() : pending_.size() >= max_pending_; }
    // `counted_bytes`: what the counters count for the packet if it is written (0: its size).
    void add(std::span<const uint8_t> packet, Peer& peer, size_t counted_bytes = 0);
    bool coalescing() const { return coalescing_; }

    // report(Peer&, size_t packets, size_t bytes, bool written), once per write.
    template <typename Report>
    void flush(Report&& report) {
        if (coalescing_) {
            coalescer_.flush([&](const offload::CoalescedWrite& write) {
                report(*static_cast<Peer*>(write.tag), write.packets, write.counted_bytes,
                       write_coalesced(write));
            });
            return;
        }
        for (const Pending& item : pending_) {
            report(*item.peer, 1, item.counted_bytes, write_one(item.packet));
        }
        pending_.clear();
    }

  private:
    struct Pending {
        std::span<const uint8_t> packet;
        Peer* peer;
        size_t counted_bytes;
    };

    bool write_one(std::span<const uint8_t> packet);
    bool write_coalesced(const offload::CoalescedWrite& write);

    int fd_;
    bool vnet_header_;
    bool coalescing_;
    size_t max_pending_;
    std::vector<Pending> pending_;
    offload::Coalescer coalescer_;
};

}  // namespace tunlab
