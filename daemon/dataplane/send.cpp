// Device → wire: packets read from the device in batches, cut into the datagrams they become
// (TUN segmentation offload), sent to their peer by the Forwarding's choice, sealed by the
// protocol, and sent in trains (sendmmsg, UDP GSO).

#include <cstring>

#include "dataplane/data_plane.hpp"
#include "dataplane/sizes.hpp"

namespace tunlab {

using namespace dataplane;

// Returns whether anything was read.
bool DataPlane::read_device() {
    read_clocks();
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
        if (batch.drained) {
            break;
        }
    }
    flush_sends();
    return packets > 0;
}

void DataPlane::forward_from_device(std::span<const uint8_t> packet) {
    Train train;
    if (!copy_for_the_wire(packet, &train)) {
        return;
    }
    const Destination destination = forwarding_->destination(train.bytes.subspan(
        framing_.header, train.count == 1 ? train.last_packet_size : train.packet_size));
    if (destination.peer != nullptr) {
        queue_send(*destination.peer, train);
    } else if (destination.flood) {
        flood(packet, train);
    } else {
        counters_.drop(DropReason::NoPeer, train.count);
    }
}

// Copies a packet read from the device to the send queue's tail as the datagrams it becomes on
// the wire, laid out by the protocol's framing. False: dropped (counted).
bool DataPlane::copy_for_the_wire(std::span<const uint8_t> packet, Train* train) {
    if (!settings_.device_offloads.vnet_header) {
        const size_t datagram = framing_.datagram_size(packet.size());
        std::memcpy(send_queue_.tail() + framing_.header, packet.data(), packet.size());
        *train = Train{{send_queue_.tail(), datagram}, 1, datagram, packet.size(), packet.size()};
        return true;
    }
    const auto result = offload::segment_packet(packet, receive_limit_,
                                                {send_queue_.tail(), send_queue_.room()}, framing_);
    if (std::holds_alternative<offload::SegmentError>(result)) {
        counters_.drop(DropReason::BadOffload);
        return false;
    }
    const auto& segments = std::get<offload::Segments>(result);
    *train = Train{{send_queue_.tail(), segments.total_bytes},
                   segments.segment_count,
                   segments.datagram_size,
                   segments.segment_size,
                   segments.last_segment_size};
    return true;
}

// Broadcast, multicast or not yet seen (TAP): every configured peer gets it, as a switch
// would do. Not learned peers: their endpoint is only where a datagram said it came from,
// which anyone can forge, and one forged datagram per made-up peer would turn each broadcast
// into hundreds of datagrams at someone else's address. Paced per tunnel (floods_).
void DataPlane::flood(std::span<const uint8_t> packet, const Train& train) {
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
        Train copy = train;
        if (sent) {
            if (send_queue_.full() || send_queue_.room() < train.bytes.size()) {
                flush_sends();
            }
            if (!copy_for_the_wire(packet, &copy)) {
                return;
            }
        }
        queue_send(peer, copy);
        sent = true;
    });
    if (!sent) {
        counters_.drop(DropReason::NoEndpoint);
    }
}

void DataPlane::queue_send(Peer& peer, const Train& train) {
    if (!peer.config.endpoint) {
        counters_.drop(DropReason::NoEndpoint, train.count);
        return;
    }
    DropReason drop{};
    switch (protocol_->seal(peer, train, BatchTime{now_us_, monotonic_us_}, &drop)) {
        case Sealed::Send:
            send_queue_.push(*peer.config.endpoint, train.bytes.size(), train.datagram_size, &peer);
            return;
        case Sealed::Held:
            return;
        case Sealed::Drop:
            counters_.drop(drop, train.count);
            return;
    }
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

}  // namespace tunlab
