#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "dataplane/device_writer.hpp"
#include "model/tunnel_settings.hpp"
#include "peers/counters.hpp"
#include "peers/forwarding.hpp"
#include "peers/peer_table.hpp"
#include "protocols/protocol.hpp"
#include "system/device_read_batch.hpp"
#include "system/tun_device.hpp"
#include "system/udp_receive_batch.hpp"
#include "system/udp_send_queue.hpp"
#include "util/token_bucket.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {

struct DataPlaneSettings {
    DeviceMode mode = DeviceMode::Tun;
    ProtocolKind protocol = ProtocolKind::Plain;
    size_t mtu = 1472;  // the tunnel sets its own (TunnelConfig::effective_mtu)
    LearningPolicy learning;
    TunOffloads device_offloads;        // TunDevice::offloads()
    bool udp_segmentation = false;      // UdpSocket::segmentation_offload()
    bool batched_device_reads = false;  // io_uring reads where the kernel allows them
    uint64_t busy_poll_us = 0;          // TunnelConfig::busy_poll_us
    SharedSecret private_key;           // protocol wireguard: ours
};

// Moves packets between one tunnel's device and its UDP socket on a thread of its own. It owns
// the peer table: the control plane changes peers only by posting commands, which run between
// batches of packets, and reads them through the immutable views the data plane publishes.
// Nothing here ever waits for the control plane.
//
// What the data plane does is split by job, as wireguard-go splits it: this file's .cpp has the
// thread, its event loop and the command queue; send.cpp moves packets from the device to the
// wire, receive.cpp from the wire to the device, timers.cpp runs the tick. TUN and TAP differ
// only in the Forwarding, and the wire protocol is a Protocol: neither is a branch here.
class DataPlane : private Wire {
  public:
    using Command = std::function<void(PeerTable&)>;

    DataPlane(int device_fd, int socket_fd, int socket_family, DataPlaneSettings settings);
    ~DataPlane() override;
    DataPlane(const DataPlane&) = delete;
    DataPlane& operator=(const DataPlane&) = delete;

    void start();
    void post(Command command);
    // Posts `command` and waits until it has run and its effect is published in peers().
    // False if the data plane did not run it within a second (its thread is gone or stuck).
    bool execute(Command command);
    bool reset_counters();
    PeerId allocate_peer_id() { return table_.allocate_id(); }

    // Readable whenever the published peer views changed; consume_events() clears it.
    int events_fd() const { return events_.get(); }
    void consume_events();
    bool running() const { return running_.load(std::memory_order_relaxed); }

    std::shared_ptr<const PeerViews> peers() const {
        std::lock_guard lock(views_mutex_);
        return views_;
    }
    const TunnelCounters& counters() const { return counters_; }

  private:
    // The thread and its loop (data_plane.cpp).
    void run();
    void run_commands();
    void publish();
    void send(const Endpoint& to, std::span<const uint8_t> datagram,
              Peer* counted_for) override;  // Wire
    // Arms the timer for the protocol's next deadline, if it is sooner than the next tick.
    void arm_timer_for_protocol();

    // Device → wire (send.cpp).
    bool read_device();
    void read_clocks() {
        now_us_ = now_microseconds();
        monotonic_us_ = monotonic_microseconds();
    }
    void forward_from_device(std::span<const uint8_t> packet);
    // The packet as the datagrams it becomes, at the send queue's tail; false: dropped.
    bool copy_for_the_wire(std::span<const uint8_t> packet, Train* train);
    void flood(std::span<const uint8_t> packet, const Train& train);
    void queue_send(Peer& peer, const Train& train);
    void flush_sends();

    // Wire → device (receive.cpp).
    bool read_socket();
    void deliver_from_network(std::span<uint8_t> datagram, const Endpoint& from, Peer*& known);
    void flush_device_writes();

    // The tick (timers.cpp).
    void on_timer();

    const int device_fd_;
    const int socket_fd_;
    const DataPlaneSettings settings_;
    const size_t receive_limit_;  // largest inner packet accepted from the network
    PeerTable table_;
    TunnelCounters counters_;
    std::unique_ptr<Forwarding> forwarding_;
    std::unique_ptr<Protocol> protocol_;
    const Framing framing_;  // the protocol's

    UniqueFd epoll_;
    UniqueFd wakeup_;            // eventfd: commands queued or stop requested
    UniqueFd timer_;             // timerfd: the tick, and the protocol's deadlines
    uint64_t timer_due_us_ = 0;  // monotonic: when the timer fires next
    UniqueFd events_;            // eventfd: tells the control plane that the peer views changed
    DeviceReadBatch device_reads_;
    UdpSendQueue send_queue_;
    UdpReceiveBatch receive_batch_;
    DeviceWriter device_writer_;
    TokenBucket floods_;  // TAP: broadcast and unknown-destination frames sent
    // Read once per batch (read_clocks()): the clock is not worth a call per packet.
    uint64_t now_us_ = 0;        // wall
    uint64_t monotonic_us_ = 0;  // for the protocol's timers

    std::mutex commands_mutex_;
    std::vector<Command> commands_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> running_{false};
    // Held only to copy or replace the pointer, never while building a snapshot.
    mutable std::mutex views_mutex_;
    std::shared_ptr<const PeerViews> views_;
    std::thread thread_;
};

}  // namespace tunlab
