// Wire → device: datagrams received in batches (recvmmsg, UDP GRO), opened by the protocol,
// checked by the Forwarding, attributed to their peer, and written into the device (coalesced
// where the device takes it).

#include "dataplane/data_plane.hpp"
#include "dataplane/sizes.hpp"

namespace tunlab {

using namespace dataplane;

bool DataPlane::read_socket() {
    read_clocks();
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
            UdpReceiveBatch::for_each_datagram(message, [&](std::span<uint8_t> datagram) {
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

// `known` is the peer at `from`, if any; a peer identified here becomes it.
void DataPlane::deliver_from_network(std::span<uint8_t> datagram, const Endpoint& from,
                                     Peer*& known) {
    const Opened opened = protocol_->open(datagram, from, known, BatchTime{now_us_, monotonic_us_});
    if (opened.drop) {
        counters_.drop(*opened.drop);
        return;
    }
    if (opened.keepalive || opened.control) {
        // A sign of life, not a packet: the protocol says what its bytes count for (WireGuard
        // counts every message, as `wg` does; the plain protocol's keepalives count nothing).
        if (opened.keepalive) {
            counters_.rx_keepalives.add(1);
        }
        if (Peer* peer = opened.peer) {
            peer->counters.last_receive_us.set(now_us_);
            peer->counters.rx_bytes.add(opened.counted_bytes);
            counters_.rx_bytes.add(opened.counted_bytes);
        }
        return;
    }
    const auto inspected = forwarding_->inspect(opened.inner, receive_limit_);
    if (const auto* reason = std::get_if<DropReason>(&inspected)) {
        counters_.drop(*reason);
        return;
    }
    const InnerSource& source = std::get<InnerSource>(inspected);
    Peer* peer = opened.peer;
    if (peer == nullptr) {
        DropReason drop{};
        peer = protocol_->identify(from, source, now_us_, &drop);
        if (peer == nullptr) {
            counters_.drop(drop);
            return;
        }
        known = peer;
    }
    if (!forwarding_->accept(*peer, source, now_us_)) {
        counters_.drop(DropReason::BadSource);
        return;
    }
    if (device_writer_.full()) {
        flush_device_writes();
    }
    device_writer_.add(opened.inner, *peer, opened.counted_bytes);
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

}  // namespace tunlab
