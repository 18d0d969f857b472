#include "dataplane/data_plane.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>

#include "dataplane/packet.hpp"
#include "util/log.hpp"
#include "util/system_error.hpp"

namespace tunlab {

namespace {

// Packets handled per readiness event before looking at the other fds again, so that a
// flood on one side cannot starve the other or the command queue.
constexpr int kBatch = 64;
// Large enough for any UDP payload, so a datagram is never cut short unnoticed.
constexpr size_t kBufferSize = 65536;
constexpr uint64_t kTimerIntervalSeconds = 1;
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
      buffer_(kBufferSize) {
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
    // Commands run between batches of at most kBatch packets, so a healthy data plane answers
    // within microseconds; a second means it is gone.
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
    // Commands posted before start() (the configured peers) apply before the first packet.
    run_commands();
    epoll_event events[4];
    while (!stopping_.load(std::memory_order_relaxed)) {
        const int ready = ::epoll_wait(epoll_.get(), events, 4, -1);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            log::error("data plane: epoll_wait: ", std::strerror(errno));
            return;
        }
        for (int i = 0; i < ready; ++i) {
            switch (events[i].data.u64) {
                case kDevice:
                    read_device();
                    break;
                case kSocket:
                    read_socket();
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

void DataPlane::read_device() {
    for (int i = 0; i < kBatch; ++i) {
        const ssize_t length = ::read(device_fd_, buffer_.data(), buffer_.size());
        if (length < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                log::warning("data plane: read from device: ", std::strerror(errno));
            }
            return;
        }
        forward_from_device({buffer_.data(), static_cast<size_t>(length)});
    }
}

void DataPlane::read_socket() {
    for (int i = 0; i < kBatch; ++i) {
        sockaddr_storage from{};
        socklen_t from_length = sizeof from;
        const ssize_t length =
            ::recvfrom(socket_fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT | MSG_TRUNC,
                       reinterpret_cast<sockaddr*>(&from), &from_length);
        if (length < 0) {
            return;  // EAGAIN: drained; anything else (e.g. an ICMP error) is per-datagram
        }
        const auto sender =
            Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&from), from_length);
        if (!sender) {
            continue;
        }
        if (static_cast<size_t>(length) > buffer_.size()) {
            counters_.drop(DropReason::TooBig);
            continue;
        }
        deliver_from_network({buffer_.data(), static_cast<size_t>(length)}, *sender);
    }
}

void DataPlane::forward_from_device(std::span<const uint8_t> packet) {
    if (settings_.mode == DeviceMode::Tap) {
        if (packet.size() < kEthernetHeaderLength) {
            return;
        }
        if (is_unicast(packet.data())) {
            if (Peer* peer = table_.by_mac(mac_at(packet.data()))) {
                send_to(*peer, packet);
                return;
            }
        }
        // Broadcast, multicast or not yet seen: every peer gets it, as a switch would do.
        bool sent = false;
        table_.for_each([&](Peer& peer) {
            if (peer.config.endpoint) {
                send_to(peer, packet);
                sent = true;
            }
        });
        if (!sent) {
            counters_.drop(DropReason::NoEndpoint);
        }
        return;
    }
    const auto addresses = read_ip_addresses(packet);
    Peer* peer = addresses ? table_.route(addresses->destination) : nullptr;
    if (peer == nullptr) {
        counters_.drop(DropReason::NoPeer);
        return;
    }
    send_to(*peer, packet);
}

void DataPlane::send_to(Peer& peer, std::span<const uint8_t> packet) {
    if (!peer.config.endpoint) {
        counters_.drop(DropReason::NoEndpoint);
        return;
    }
    const Endpoint& endpoint = *peer.config.endpoint;
    if (::sendto(socket_fd_, packet.data(), packet.size(), 0, endpoint.sockaddr_ptr(),
                 endpoint.sockaddr_length()) < 0) {
        counters_.drop(DropReason::SendError);
        return;
    }
    const uint64_t now = now_microseconds();
    counters_.add_tx(packet.size(), now);
    peer.counters.add_tx(packet.size(), now);
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
        // Anyone can make a peer move by sending one datagram, so one line per second at most.
        if (roam_lines_left_ > 0) {
            --roam_lines_left_;
            log::info("peer ", moved->id, " moved from ",
                      moved->config.endpoint ? moved->config.endpoint->to_string() : "nowhere",
                      " to ", from.to_string());
        } else {
            ++roams_not_logged_;
        }
        table_.move_endpoint(*moved, from);
        table_changed_ = true;
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

void DataPlane::deliver_from_network(std::span<const uint8_t> datagram, const Endpoint& from) {
    Peer* known = table_.by_endpoint(from);
    if (datagram.empty()) {
        if (known != nullptr) {
            counters_.rx_keepalives.add(1);
            known->counters.last_receive_us.set(now_microseconds());
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
    if (settings_.mode == DeviceMode::Tap && is_unicast(datagram.data() + 6)) {
        table_.remember_mac(mac_at(datagram.data() + 6), *peer);
    }
    if (::write(device_fd_, datagram.data(), datagram.size()) < 0) {
        counters_.drop(DropReason::DeviceError);
        return;
    }
    const uint64_t now = now_microseconds();
    counters_.add_rx(datagram.size(), now);
    peer->counters.add_rx(datagram.size(), now);
}

}  // namespace tunlab
