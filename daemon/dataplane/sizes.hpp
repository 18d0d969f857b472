#pragma once

// The data plane's batch and buffer sizes, shared by its files (not part of its interface).

#include <cstddef>
#include <cstdint>

#include "offload/segmenter.hpp"
#include "offload/virtio_net_hdr.hpp"

namespace tunlab::dataplane {

// Reads from each side per wake-up before looking at the other fds again, so that a flood on
// one side cannot starve the other or the command queue.
inline constexpr size_t kDeviceReadsPerWakeup = 64;
// Packets per device read batch (one io_uring_enter): 16 × 64 KB of buffers.
inline constexpr size_t kDeviceReadBatch = 16;
inline constexpr int kSocketBatchesPerWakeup = 4;
// One read from a device with offloads may be a 64 KB TCP segment, and one message from a
// socket with UDP_GRO up to 64 KB of datagrams: buffers hold the largest either can be.
inline constexpr size_t kMaxPacket = 65536;
inline constexpr size_t kMaxVnetPacket = offload::kVirtioNetHdrSize + kMaxPacket;
// What one 64 KB segment may become on the wire (a header per datagram added), so that a
// send queue with this much room always takes the next packet.
inline constexpr size_t kMaxTrain = offload::kSegmentOutputSize;
inline constexpr size_t kSendArenaBytes = 8 * kMaxTrain;
inline constexpr size_t kMaxSendMessages = 128;
inline constexpr size_t kReceiveMessages = 32;
// The timer tick: learned-peer expiry and the protocol's own (keepalives, pending moves).
inline constexpr uint64_t kTickSeconds = 1;
// A busy-polling thread yields the CPU every so many empty polls (each about a µs): often
// enough that a task woken on its CPU (the ping waiting for its answer) runs within tens of
// µs, rarely enough that the poller sees a packet within a poll or two of its arrival
// (measured: yielding on every poll added ~10 µs to the round trip through two tunnels).
inline constexpr unsigned kPollsPerYield = 32;
// TAP: frames that go to every configured peer (broadcast, multicast, unknown destination),
// per second and in one burst. Far above what ARP, neighbour discovery and DHCP need, and a
// bound on what a stream of frames to an unknown address can make of one tunnel.
inline constexpr uint64_t kFloodsPerSecond = 1000;
inline constexpr uint64_t kFloodBurst = 1000;
// The MTU is a local choice: a peer with the kernel's default (1500, as the lab's programs
// leave it) may send packets larger than our own MTU, and they must still get through.
inline constexpr size_t kLabMtu = 1500;

}  // namespace tunlab::dataplane
