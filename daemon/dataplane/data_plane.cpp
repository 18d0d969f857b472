#include "dataplane/data_plane.hpp"

#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>

#include "dataplane/packet.hpp"
#include "offload/segmenter.hpp"
#include "util/log.hpp"
#include "util/system_error.hpp"

namespace tunlab {

namespace {

// Reads from each side per wake-up before looking at the other fds again, so that a flood on
// one side cannot starve the other or the command queue.
constexpr size_t kDeviceReadsPerWakeup = 64;
// Packets per device read batch (one io_uring_enter): 16 × 64 KB of buffers.
constexpr size_t kDeviceReadBatch = 16;
constexpr int kSocketBatchesPerWakeup = 4;
// One read from a device with offloads may be a 64 KB TCP segment, and one message from a
// socket with UDP_GRO up to 64 KB of datagrams: buffers hold the largest either can be.
constexpr size_t kMaxPacket = 65536;
constexpr size_t kMaxVnetPacket = offload::kVirtioNetHdrSize + kMaxPacket;
// What one 64 KB segment may become on the wire (a header per datagram added), so that a
// send queue with this much room always takes the next packet.
constexpr size_t kMaxTrain = offload::kSegmentOutputSize;
constexpr size_t kSendArenaBytes = 8 * kMaxTrain;
constexpr size_t kMaxSendMessages = 128;
constexpr size_t kReceiveMessages = 32;
constexpr uint64_t kTimerIntervalSeconds = 1;
// A busy-polling thread yields the CPU every so many empty polls (each about a µs): often
// enough that a task woken on its CPU (the ping waiting for its answer) runs within tens of
// µs, rarely enough that the poller sees a packet within a poll or two of its arrival
// (measured: yielding on every poll added ~10 µs to the round trip through two tunnels).
constexpr unsigned kPollsPerYield = 32;
// A peer's endpoint follows it at most this often. In the plain protocol anyone can make a
// peer move (by sending a datagram with its inner address from elsewhere), and every move is
// a bus signal. Datagrams from a new endpoint in between are delivered; the last of those
// endpoints is where the peer moves when the interval is over (on_timer), so the endpoint
// still ends where the peer last sent from.
constexpr uint64_t kMinMoveIntervalUs = 1'000'000;
// TAP: frames that go to every configured peer (broadcast, multicast, unknown destination),
// per second and in one burst. Far above what ARP, neighbour discovery and DHCP need, and a
// bound on what a stream of frames to an unknown address can make of one tunnel.
constexpr uint64_t kFloodsPerSecond = 1000;
constexpr uint64_t kFloodBurst = 1000;
// The MTU is a local choice: a peer with the kernel's default (1500, as the lab's programs
// leave it) may send packets larger than our own MTU, and they must still get through.
constexpr size_t kLabMtu = 1500;

enum Tag : uint64_t { kDevice, kSocket, kWakeup, kTimer };

void watch(int epoll_fd, int fd, Tag tag) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = tag;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) {
        throw system_error("epoll_ctl");
    }
}

void drain(int fd) {
    uint64_t value;
    [[maybe_unused]] const auto ignored = ::read(fd, &value, sizeof value);
}

bool is_unicast(const uint8_t* mac) {
    return (mac[0] & 1u) == 0;
}

MacAddress mac_at(const uint8_t* data) {
    MacAddress mac;
    std::memcpy(mac.data(), data, mac.size());
    return mac;
}

}  // namespace

DataPlane::DataPlane(int device_fd, int socket_fd, int socket_family, DataPlaneSettings settings)
    : device_fd_(device_fd),
      socket_fd_(socket_fd),
      settings_(settings),
      receive_limit_(std::max<size_t>(settings.mtu, kLabMtu)),
      table_(settings.learning, socket_family),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wakeup_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)),
      events_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      device_reads_(device_fd, kDeviceReadBatch, kMaxVnetPacket, settings.batched_device_reads),
      send_queue_(socket_fd, settings.udp_segmentation, kSendArenaBytes, kMaxSendMessages),
      receive_batch_(kReceiveMessages, kMaxPacket),
      device_writer_(device_fd, settings.device_offloads.vnet_header, settings.device_offloads.uso,
                     kReceiveMessages * 64),
      floods_(kFloodsPerSecond, kFloodBurst) {
    if (!epoll_.valid() || !wakeup_.valid() || !timer_.valid() || !events_.valid()) {
        throw system_error("create data-plane event fds");
    }
    itimerspec interval{};
    interval.it_interval.tv_sec = kTimerIntervalSeconds;
    interval.it_value.tv_sec = kTimerIntervalSeconds;
    ::timerfd_settime(timer_.get(), 0, &interval, nullptr);
    watch(epoll_.get(), device_fd_, kDevice);
    watch(epoll_.get(), socket_fd_, kSocket);
    watch(epoll_.get(), wakeup_.get(), kWakeup);
    watch(epoll_.get(), timer_.get(), kTimer);
    publish();
}

DataPlane::~DataPlane() {
    stopping_.store(true);
    const uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(wakeup_.get(), &one, sizeof one);
    if (thread_.joinable()) {
        thread_.join();
    }
}

void DataPlane::start() {
    // Commands posted before start() (the configured peers) run here, on the caller's thread,
    // while no other exists: their peers are published before the tunnel is announced.
    run_commands();
    running_.store(true);
    thread_ = std::thread([this] {
        run();
        running_.store(false);
    });
}

bool DataPlane::execute(Command command) {
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    post([this, command = std::move(command), done](PeerTable& table) {
        command(table);
        publish();  // before the waiter looks at peers()
        done->set_value();
    });
    // Commands run between batches of at most a few hundred packets, so a healthy data plane
    // answers within microseconds; a second means it is gone.
    return finished.wait_for(std::chrono::seconds(1)) == std::future_status::ready;
}

bool DataPlane::reset_counters() {
    return execute([this](PeerTable& table) {
        counters_.reset();
        table.for_each([](Peer& peer) { peer.counters.reset(); });
    });
}

void DataPlane::consume_events() {
    drain(events_.get());
}

void DataPlane::post(Command command) {
    {
        std::lock_guard lock(commands_mutex_);
        commands_.push_back(std::move(command));
    }
    const uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(wakeup_.get(), &one, sizeof one);
}

void DataPlane::run() {
    epoll_event events[4];
    uint64_t busy_until_us = 0;
    unsigned polls = 0;
    while (!stopping_.load(std::memory_order_relaxed)) {
        const bool polling = settings_.busy_poll_us > 0 && now_microseconds() < busy_until_us;
        if (polling && ++polls % kPollsPerYield == 0) {
            sched_yield();  // a poller must not keep the packets it waits for off the CPU
        }
        const int ready = ::epoll_wait(epoll_.get(), events, 4, polling ? 0 : -1);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            log::error("data plane: epoll_wait: ", std::strerror(errno));
            return;
        }
        bool traffic = false;
        for (int i = 0; i < ready; ++i) {
            switch (events[i].data.u64) {
                case kDevice:
                    traffic |= read_device();
                    break;
                case kSocket:
                    traffic |= read_socket();
                    break;
                case kWakeup:
                    drain(wakeup_.get());
                    run_commands();
                    break;
                case kTimer:
                    drain(timer_.get());
                    on_timer();
                    break;
            }
        }
        if (traffic) {
            busy_until_us = now_us_ + settings_.busy_poll_us;
        }
        if (table_changed_) {
            publish();
        }
    }
}

void DataPlane::run_commands() {
    std::vector<Command> pending;
    {
        std::lock_guard lock(commands_mutex_);
        pending.swap(commands_);
    }
    if (pending.empty()) {
        return;
    }
    for (auto& command : pending) {
        command(table_);
    }
    publish();
}

void DataPlane::publish() {
    auto views = table_.make_views();
    {
        std::lock_guard lock(views_mutex_);
        views_.swap(views);
    }
    // The old snapshot (now in `views`) is freed here, outside the lock.
    table_changed_ = false;
    const uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(events_.get(), &one, sizeof one);
}

void DataPlane::on_timer() {
    const uint64_t now = now_microseconds();
    if (roams_not_logged_ > 0) {
        log::info(roams_not_logged_, " more peer moves in the last second (not logged one by one)");
        roams_not_logged_ = 0;
    }
    roam_lines_left_ = 1;
    if (table_.expire_idle(now) > 0) {
        table_changed_ = true;
    }
    table_.for_each([&](Peer& peer) {
        if (peer.pending_move && now - peer.last_move_us >= kMinMoveIntervalUs) {
            move(peer, *peer.pending_move, now);
        }
        const uint64_t interval = uint64_t{peer.config.keepalive_seconds} * 1'000'000;
        if (interval == 0 || !peer.config.endpoint) {
            return;
        }
        const uint64_t last = std::max(peer.counters.last_send_us.read(), peer.last_keepalive_us);
        // The timer ticks once a second, a little after the previous keepalive went out: allow
        // half a tick of slack, or every keepalive would come one tick late.
        if (now + kTimerIntervalSeconds * 500'000 >= last + interval) {
            // An empty datagram: keeps NAT state and tells a learning server where we are,
            // without putting anything into the peer's device.
            ::sendto(socket_fd_, nullptr, 0, MSG_DONTWAIT, peer.config.endpoint->sockaddr_ptr(),
                     peer.config.endpoint->sockaddr_length());
            peer.last_keepalive_us = now;
        }
    });
}

// Returns whether anything was read.
bool DataPlane::read_device() {
    now_us_ = now_microseconds();
    size_t packets = 0;
    while (packets < kDeviceReadsPerWakeup) {
        const auto batch = device_reads_.read();
        for (size_t i = 0; i < batch.packets; ++i) {
            if (send_queue_.full() || send_queue_.room() < kMaxTrain) {
                flush_sends();
            }
            forward_from_device(device_reads_.packet(i));
        }
        packets += batch.packets;
        // After a lone packet (a ping, an ACK) the device is most likely empty: epoll, level-
        // triggered, says so for less than another read, and brings us back if it is not.
        if (batch.drained || batch.packets == 1) {
            break;
        }
    }
    flush_sends();
    return packets > 0;
}

bool DataPlane::read_socket() {
    now_us_ = now_microseconds();
    bool any = false;
    for (int batch = 0; batch < kSocketBatchesPerWakeup; ++batch) {
        const size_t count = receive_batch_.receive(socket_fd_);
        for (size_t i = 0; i < count; ++i) {
            const auto message = receive_batch_.message(i);
            if (message.truncated) {
                counters_.drop(DropReason::TooBig);
                continue;
            }
            const auto sender = Endpoint::from_sockaddr(message.from, message.from_length);
            if (!sender) {
                continue;
            }
            // All datagrams of one message come from one sender: looked up once.
            Peer* known = table_.by_endpoint(*sender);
            if (known != nullptr && known->pending_move) {
                known->pending_move.reset();  // back where it was: it stays
            }
            UdpReceiveBatch::for_each_datagram(message, [&](std::span<const uint8_t> datagram) {
                deliver_from_network(datagram, *sender, known);
            });
        }
        // The datagrams live in the batch's buffers: written out before the next receive.
        flush_device_writes();
        any |= count > 0;
        if (count < kReceiveMessages) {
            break;
        }
    }
    return any;
}

void DataPlane::forward_from_device(std::span<const uint8_t> packet) {
    size_t segment_size = 0;
    const size_t length = copy_for_the_wire(packet, &segment_size);
    if (length == 0) {
        return;
    }
    const std::span<const uint8_t> wire{send_queue_.tail(), length};
    if (settings_.mode == DeviceMode::Tap) {
        if (wire.size() < kEthernetHeaderLength) {
            return;
        }
        if (is_unicast(wire.data())) {
            if (Peer* peer = table_.by_mac(mac_at(wire.data()))) {
                queue_send(*peer, length, segment_size);
                return;
            }
        }
        // Broadcast, multicast or not yet seen: every configured peer gets it, as a switch
        // would do. Not learned peers: their endpoint is only where a datagram said it came
        // from, which anyone can forge, and one forged datagram per made-up peer would turn
        // each broadcast into hundreds of datagrams at someone else's address.
        if (!floods_.take(now_us_)) {
            counters_.drop(DropReason::FloodLimit);
            return;
        }
        // The first copy is at the queue's tail already; the others come from the read buffer.
        bool sent = false;
        table_.for_each([&](Peer& peer) {
            if (peer.learned || !peer.config.endpoint) {
                return;
            }
            if (sent) {
                if (send_queue_.full() || send_queue_.room() < packet.size()) {
                    flush_sends();
                }
                std::memcpy(send_queue_.tail(), packet.data(), packet.size());
            }
            queue_send(peer, length, segment_size);
            sent = true;
        });
        if (!sent) {
            counters_.drop(DropReason::NoEndpoint);
        }
        return;
    }
    const auto addresses = read_ip_addresses(wire);
    Peer* peer = addresses ? table_.route(addresses->destination) : nullptr;
    if (peer == nullptr) {
        counters_.drop(DropReason::NoPeer, (length + segment_size - 1) / segment_size);
        return;
    }
    queue_send(*peer, length, segment_size);
}

// Copies a packet read from the device to the send queue's tail as the datagrams it
// becomes on the wire: `*segment_size` bytes each, the last maybe shorter. 0: dropped.
size_t DataPlane::copy_for_the_wire(std::span<const uint8_t> packet, size_t* segment_size) {
    if (!settings_.device_offloads.vnet_header) {
        std::memcpy(send_queue_.tail(), packet.data(), packet.size());
        *segment_size = packet.size();
        return packet.size();
    }
    const auto result =
        offload::segment_packet(packet, receive_limit_, {send_queue_.tail(), send_queue_.room()});
    if (std::holds_alternative<offload::SegmentError>(result)) {
        counters_.drop(DropReason::BadOffload);
        return 0;
    }
    const auto& segments = std::get<offload::Segments>(result);
    *segment_size = segments.segment_size;
    return segments.total_bytes;
}

void DataPlane::queue_send(Peer& peer, size_t length, size_t segment_size) {
    if (!peer.config.endpoint) {
        counters_.drop(DropReason::NoEndpoint, (length + segment_size - 1) / segment_size);
        return;
    }
    send_queue_.push(*peer.config.endpoint, length, segment_size, &peer);
}

void DataPlane::flush_sends() {
    // The queue holds Peer pointers: it is always flushed before commands (which may remove
    // peers) run.
    send_queue_.flush([this](const UdpSendQueue::Message& message) {
        auto& peer = *static_cast<Peer*>(message.owner);
        if (message.sent_datagrams > 0) {
            counters_.add_tx(message.sent_bytes, now_us_, message.sent_datagrams);
            peer.counters.add_tx(message.sent_bytes, now_us_, message.sent_datagrams);
        }
        if (message.sent_datagrams < message.datagrams()) {
            counters_.drop(DropReason::SendError, message.datagrams() - message.sent_datagrams);
        }
    });
}

void DataPlane::flush_device_writes() {
    device_writer_.flush([this](Peer& peer, size_t packets, size_t bytes, bool written) {
        if (!written) {
            counters_.drop(DropReason::DeviceError, packets);
            return;
        }
        counters_.add_rx(bytes, now_us_, packets);
        peer.counters.add_rx(bytes, now_us_, packets);
    });
}

Peer* DataPlane::identify_sender(Peer* known, const Endpoint& from,
                                 const std::optional<IpAddress>& source,
                                 std::span<const uint8_t> datagram) {
    if (known != nullptr) {
        return known;
    }
    // An unknown endpoint: a peer we know by its inner address has moved (roaming), or a new
    // client has appeared.
    Peer* moved = nullptr;
    if (settings_.mode == DeviceMode::Tun) {
        moved = table_.route(*source);
    } else {
        moved = table_.by_mac(mac_at(datagram.data() + 6));
    }
    if (moved != nullptr) {
        if (moved->last_move_us != 0 && now_us_ - moved->last_move_us < kMinMoveIntervalUs) {
            moved->pending_move = from;
        } else {
            move(*moved, from, now_us_);
        }
        return moved;
    }
    Peer* learned = nullptr;
    switch (table_.learn(from, source, &learned)) {
        case PeerTable::LearnResult::Learned:
            table_changed_ = true;
            return learned;
        case PeerTable::LearnResult::Disabled:
            counters_.drop(DropReason::UnknownPeer);
            return nullptr;
        case PeerTable::LearnResult::Full:
            counters_.drop(DropReason::PeerLimit);
            return nullptr;
    }
    return nullptr;
}

void DataPlane::move(Peer& peer, const Endpoint& to, uint64_t now_us) {
    // Anyone can make a peer move by sending one datagram, so one line per second at most.
    if (roam_lines_left_ > 0) {
        --roam_lines_left_;
        log::info("peer ", peer.id, " moved from ",
                  peer.config.endpoint ? peer.config.endpoint->to_string() : "nowhere", " to ",
                  to.to_string());
    } else {
        ++roams_not_logged_;
    }
    table_.move_endpoint(peer, to);
    peer.last_move_us = now_us;
    peer.pending_move.reset();
    table_changed_ = true;
}

// `known` is the peer at `from`, if any; a peer learned or moved here becomes it.
void DataPlane::deliver_from_network(std::span<const uint8_t> datagram, const Endpoint& from,
                                     Peer*& known) {
    if (datagram.empty()) {
        if (known != nullptr) {
            counters_.rx_keepalives.add(1);
            known->counters.last_receive_us.set(now_us_);
        } else {
            counters_.drop(DropReason::Empty);
        }
        return;
    }
    std::optional<IpAddress> source;
    if (settings_.mode == DeviceMode::Tun) {
        const auto checked = validate_ip_packet(datagram, receive_limit_);
        if (const auto* reason = std::get_if<DropReason>(&checked)) {
            counters_.drop(*reason);
            return;
        }
        source = std::get<IpHeaderInfo>(checked).source;
        if (known != nullptr && !PeerTable::allows_source(*known, *source)) {
            if (!table_.learn_address(*known, *source)) {
                counters_.drop(DropReason::BadSource);
                return;
            }
            table_changed_ = true;
        }
    } else if (const auto reason = validate_ethernet_frame(datagram, receive_limit_)) {
        counters_.drop(*reason);
        return;
    }
    Peer* peer = identify_sender(known, from, source, datagram);
    if (peer == nullptr) {
        return;
    }
    known = peer;
    if (settings_.mode == DeviceMode::Tap && is_unicast(datagram.data() + 6)) {
        table_.remember_mac(mac_at(datagram.data() + 6), *peer, now_us_);
    }
    if (device_writer_.full()) {
        flush_device_writes();
    }
    device_writer_.add(datagram, *peer);
}

}  // namespace tunlab
