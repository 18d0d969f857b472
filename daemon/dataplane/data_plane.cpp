#include "dataplane/data_plane.hpp"

#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>

#include "dataplane/sizes.hpp"
#include "util/log.hpp"
#include "util/system_error.hpp"

namespace tunlab {

using namespace dataplane;

namespace {

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

void signal_event(int fd) {
    const uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(fd, &one, sizeof one);
}

}  // namespace

DataPlane::DataPlane(int device_fd, int socket_fd, int socket_family, DataPlaneSettings settings)
    : device_fd_(device_fd),
      socket_fd_(socket_fd),
      settings_(settings),
      receive_limit_(std::max<size_t>(settings.mtu, kLabMtu)),
      table_(settings.learning, socket_family),
      forwarding_(make_forwarding(settings.mode, table_)),
      protocol_(
          make_protocol(ProtocolSettings{settings.protocol, settings.mtu, settings.private_key},
                        table_, *forwarding_, *this, counters_)),
      framing_(protocol_->framing()),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wakeup_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)),
      events_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      device_reads_(device_fd, kDeviceReadBatch, kMaxVnetPacket, settings.batched_device_reads),
      send_queue_(socket_fd, settings.udp_segmentation, kSendArenaBytes, kMaxSendMessages),
      receive_batch_(kReceiveMessages, kMaxPacket),
      device_writer_(device_fd, settings.device_offloads.vnet_header,
                     offload::CoalescerLimits{.max_packets = kReceiveMessages * 64,
                                              .udp = settings.device_offloads.uso,
                                              .authenticated = protocol_->authenticates()}),
      floods_(kFloodsPerSecond, kFloodBurst) {
    if (!epoll_.valid() || !wakeup_.valid() || !timer_.valid() || !events_.valid()) {
        throw system_error("create data-plane event fds");
    }
    itimerspec interval{};
    interval.it_interval.tv_sec = kTickSeconds;
    interval.it_value.tv_sec = kTickSeconds;
    ::timerfd_settime(timer_.get(), 0, &interval, nullptr);
    timer_due_us_ = monotonic_microseconds() + kTickSeconds * 1'000'000;
    watch(epoll_.get(), device_fd_, kDevice);
    watch(epoll_.get(), socket_fd_, kSocket);
    watch(epoll_.get(), wakeup_.get(), kWakeup);
    watch(epoll_.get(), timer_.get(), kTimer);
    publish();
}

DataPlane::~DataPlane() {
    stopping_.store(true);
    signal_event(wakeup_.get());
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
    signal_event(wakeup_.get());
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
        arm_timer_for_protocol();
        if (table_.changed()) {
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
    signal_event(events_.get());
}

void DataPlane::send(const Endpoint& to, std::span<const uint8_t> datagram, Peer* counted_for) {
    const ssize_t sent = ::sendto(socket_fd_, datagram.data(), datagram.size(), MSG_DONTWAIT,
                                  to.sockaddr_ptr(), to.sockaddr_length());
    if (counted_for == nullptr) {
        return;
    }
    if (sent < 0) {
        counters_.drop(DropReason::SendError);
        return;
    }
    const uint64_t now = now_microseconds();
    counters_.add_tx(datagram.size(), now);
    counted_for->counters.add_tx(datagram.size(), now);
}

void DataPlane::arm_timer_for_protocol() {
    const auto deadline = protocol_->next_deadline();
    if (!deadline || *deadline >= timer_due_us_) {
        return;
    }
    // The deadline once, then the tick every second from there.
    const uint64_t now = monotonic_microseconds();
    const uint64_t wait = *deadline > now ? *deadline - now : 1;
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(wait / 1'000'000);
    when.it_value.tv_nsec = static_cast<long>(wait % 1'000'000 * 1000);
    when.it_interval.tv_sec = kTickSeconds;
    ::timerfd_settime(timer_.get(), 0, &when, nullptr);
    timer_due_us_ = now + wait;
}

}  // namespace tunlab
