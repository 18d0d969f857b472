#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

struct io_uring;

namespace tunlab {

// Packets read from a non-blocking TUN/TAP descriptor, several per system call where the
// kernel allows it. A TUN device has no recvmmsg(): each packet is one read(), and on a VM
// each system call costs microseconds, more than the read itself. With io_uring, one
// io_uring_enter() issues a batch of reads; the ring may do nothing but read (a registered
// restriction). Without io_uring (kernel.io_uring_disabled, a seccomp filter, Linux < 5.10)
// every batch is one read() and one packet.
//
// Packets that come one at a time (a ping, an ACK, a keystroke) are read with read() even where
// io_uring exists: on this project's test VMs an io_uring_enter() costs several µs more than a
// read(), twice per round trip (bench/run --cases latency, in the README). The ring takes over
// once two reads in a row found a packet, and hands back when the device runs dry.
class DeviceReadBatch {
  public:
    // Up to `slots` packets of up to `slot_bytes` each per read(); through io_uring if
    // `use_io_uring` and the kernel lets us.
    DeviceReadBatch(int fd, size_t slots, size_t slot_bytes, bool use_io_uring = true);
    ~DeviceReadBatch();
    DeviceReadBatch(const DeviceReadBatch&) = delete;
    DeviceReadBatch& operator=(const DeviceReadBatch&) = delete;

    struct Result {
        size_t packets = 0;    // in packet(0) … packet(packets - 1), in arrival order
        bool drained = false;  // the device had no more: wait for it to become readable
    };
    // Reads what is queued without waiting: one packet, or with io_uring in a stream a batch.
    // A read error other than EAGAIN is logged and ends the batch (drained).
    Result read();
    std::span<const uint8_t> packet(size_t index) const { return packets_[index]; }

    // Whether reads go through io_uring.
    bool batched() const { return ring_ != nullptr; }

  private:
    int set_up_ring();  // 0, or the errno that stopped it
    void close_ring();
    Result read_with_ring();
    Result read_one();
    uint8_t* slot(size_t index) { return buffer_.data() + index * slot_bytes_; }

    int fd_;
    size_t slots_;
    size_t slot_bytes_;
    std::vector<uint8_t> buffer_;
    std::vector<std::span<const uint8_t>> packets_;
    std::vector<int> results_;
    std::unique_ptr<io_uring> ring_;
    // Packets read since the device was last found empty: from 2 on, reads go through the ring.
    size_t streak_ = 0;
    // Reads the ring issues next: doubles while every read finds a packet, so that a stream
    // gets full batches and a short burst does not pay for many reads that find nothing.
    size_t batch_ = 2;
};

}  // namespace tunlab
