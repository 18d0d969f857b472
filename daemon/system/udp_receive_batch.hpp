#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tunlab {

// Buffers for one recvmmsg(): up to `messages` messages of up to `message_bytes` each. With
// UDP_GRO on the socket, one message may hold several datagrams of one sender, all
// `segment_size` bytes but the last; datagrams() splits them again.
class UdpReceiveBatch {
  public:
    struct Message {
        std::span<uint8_t> data;  // writable: a protocol may decrypt in place
        const sockaddr* from;
        socklen_t from_length;
        size_t segment_size;  // 0: one datagram
        bool truncated;       // larger than message_bytes: its datagrams are incomplete
    };

    UdpReceiveBatch(size_t messages, size_t message_bytes);

    // Receives what is queued without waiting; returns how many messages arrived (0 when
    // there was nothing, or an error such as a queued ICMP report).
    size_t receive(int fd);
    Message message(size_t index);

    // Calls visit(std::span<uint8_t>) for each datagram of `message`, in order.
    template <typename Visit>
    static void for_each_datagram(const Message& message, Visit&& visit) {
        if (message.segment_size == 0 || message.data.size() <= message.segment_size) {
            visit(message.data);
            return;
        }
        for (size_t offset = 0; offset < message.data.size(); offset += message.segment_size) {
            visit(message.data.subspan(
                offset, std::min(message.segment_size, message.data.size() - offset)));
        }
    }

  private:
    size_t message_bytes_;
    std::vector<uint8_t> buffer_;
    std::vector<mmsghdr> headers_;
    std::vector<iovec> vectors_;
    std::vector<sockaddr_storage> sources_;
    std::vector<uint8_t> controls_;
};

}  // namespace tunlab
