// Device → wire: packets read from the device in batches, cut into the datagrams they become
// (TUN segmentation offload), sent to their peer by the Forwarding's choice, sealed by the
// protocol, and sent in trains (sendmmsg, UDP GSO).

#include <cstring>

#include "dataplane/data_plane.hpp"
#include "dataplane/sizes.hpp"

namespace tunlab {

using namespace dataplane;

namespace {

size_t datagrams_in(size_t length, size_t segment_size) {
    return (length + segment_size - 1) / segment_size;
}

}  // namespace

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

void DataPlane::forward_from_device(std::span<const uint8_t> packet) {
    size_t segment_size = 0;
    const size_t length = copy_for_the_wire(packet, &segment_size);
    if (length == 0) {
        return;
    }
    const Destination destination = forwarding_->destination({send_queue_.tail(), length});
    if (destination.peer != nullptr) {
        queue_send(*destination.peer, length, segment_size);
    } else if (destination.flood) {
        flood(packet, length, segment_size);
    } else {
        counters_.drop(DropReason::NoPeer, datagrams_in(length, segment_size));
    }
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

// Broadcast, multicast or not yet seen (TAP): every configured peer gets it, as a switch
// would do. Not learned peers: their endpoint is only where a datagram said it came from,
// which anyone can forge, and one forged datagram per made-up peer would turn each broadcast
// into hundreds of datagrams at someone else's address. Paced per tunnel (floods_).
void DataPlane::flood(std::span<const uint8_t> packet, size_t length, size_t segment_size) {
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
}

void DataPlane::queue_send(Peer& peer, size_t length, size_t segment_size) {
    if (!peer.config.endpoint) {
        counters_.drop(DropReason::NoEndpoint, datagrams_in(length, segment_size));
        return;
    }
    DropReason drop{};
    if (!protocol_->seal(peer, {send_queue_.tail(), length}, segment_size, &drop)) {
        counters_.drop(drop, datagrams_in(length, segment_size));
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

}  // namespace tunlab
