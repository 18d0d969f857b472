#include "system/udp_send_queue.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/log.hpp"

namespace tunlab {

namespace {

// What one UDP_SEGMENT send may carry: the kernel's UDP_MAX_SEGMENTS (64 before Linux 6.9)
// and a UDP payload that fits an IPv4 datagram (65535 − 20 − 8).
constexpr size_t kMaxSegmentsPerSend = 64;
constexpr size_t kMaxBytesPerSend = 65507;
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(uint16_t));

}  // namespace

UdpSendQueue::UdpSendQueue(int fd, bool segmentation_offload, size_t arena_bytes,
                           size_t max_messages)
    : fd_(fd),
      segmentation_offload_(segmentation_offload),
      max_messages_(max_messages),
      arena_(arena_bytes) {
    // A train pushed without segmentation offload adds one message per datagram, past
    // max_messages: the reserve covers one such train without reallocating.
    messages_.reserve(max_messages + kMaxSegmentsPerSend);
}

void UdpSendQueue::push(const Endpoint& to, size_t length, size_t segment_size, void* owner) {
    if (joins_previous(to, length, segment_size, owner)) {
        messages_.back().length += length;
        used_ += length;
        return;
    }
    if (length == 0 || segment_size == 0 || segment_size >= length) {
        messages_.push_back({&to, used_, length, std::max<size_t>(length, 1), owner});
        used_ += length;
        return;
    }
    // Without segmentation offload every datagram is a message of its own.
    const size_t per_send =
        segmentation_offload_
            ? std::min(kMaxSegmentsPerSend, std::max<size_t>(kMaxBytesPerSend / segment_size, 1))
            : 1;
    for (size_t done = 0; done < length;) {
        const size_t part = std::min(length - done, per_send * segment_size);
        messages_.push_back({&to, used_ + done, part, segment_size, owner});
        done += part;
    }
    used_ += length;
}

// A lone datagram right after a train of datagrams of its size (or larger) to the same
// endpoint extends that train: small packets of one flow then cost the kernel one pass
// through its UDP stack per train instead of one per datagram, and the receiver's UDP_GRO
// takes them in one piece. On the wire they stay separate datagrams, in the same order.
bool UdpSendQueue::joins_previous(const Endpoint& to, size_t length, size_t segment_size,
                                  const void* owner) const {
    if (!segmentation_offload_ || messages_.empty() || length == 0 || segment_size < length) {
        return false;
    }
    const Message& previous = messages_.back();
    return previous.owner == owner && *previous.to == to &&
           previous.offset + previous.length == used_ &&
           previous.length % previous.segment_size == 0 && length <= previous.segment_size &&
           previous.datagrams() < kMaxSegmentsPerSend &&
           previous.length + length <= kMaxBytesPerSend;
}

void UdpSendQueue::send_all() {
    const size_t count = messages_.size();
    headers_.assign(count, mmsghdr{});
    vectors_.resize(count);
    controls_.assign(count * kControlBytes, 0);
    for (size_t i = 0; i < count; ++i) {
        Message& message = messages_[i];
        vectors_[i] = {arena_.data() + message.offset, message.length};
        msghdr& header = headers_[i].msg_hdr;
        header.msg_name = const_cast<sockaddr*>(message.to->sockaddr_ptr());
        header.msg_namelen = message.to->sockaddr_length();
        header.msg_iov = &vectors_[i];
        header.msg_iovlen = 1;
        if (message.segment_size < message.length && segmentation_offload_) {
            header.msg_control = controls_.data() + i * kControlBytes;
            header.msg_controllen = kControlBytes;
            cmsghdr* control = CMSG_FIRSTHDR(&header);
            control->cmsg_level = SOL_UDP;
            control->cmsg_type = UDP_SEGMENT;
            control->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            const auto size = static_cast<uint16_t>(message.segment_size);
            std::memcpy(CMSG_DATA(control), &size, sizeof size);
        }
    }
    for (size_t next = 0; next < count;) {
        next = send_range(next);
    }
}

// Sends messages from `first` on; returns the first message not yet dealt with.
size_t UdpSendQueue::send_range(size_t first) {
    const int sent =
        ::sendmmsg(fd_, &headers_[first], static_cast<unsigned>(messages_.size() - first), 0);
    if (sent > 0) {
        for (size_t i = first; i < first + static_cast<size_t>(sent); ++i) {
            messages_[i].sent_datagrams = messages_[i].datagrams();
            messages_[i].sent_bytes = messages_[i].length;
        }
        return first + static_cast<size_t>(sent);
    }
    if (errno == EINTR) {
        return first;
    }
    Message& failed = messages_[first];
    if (headers_[first].msg_hdr.msg_controllen != 0) {
        // A train the kernel would not segment: larger than the path MTU (EINVAL/EMSGSIZE),
        // or a device without checksum offload (EIO, for good). Each datagram on its own
        // still goes out, fragmented if it must, as the lab's programs would send it.
        if (errno == EIO) {
            log::warning("UDP segmentation offload refused by the kernel (", std::strerror(errno),
                         "); sending datagram by datagram from now on");
            segmentation_offload_ = false;
        }
        send_one_by_one(failed);
    }
    // Otherwise this message failed for good (e.g. no route): the others still go.
    return first + 1;
}

void UdpSendQueue::send_one_by_one(Message& message) {
    for (size_t offset = 0; offset < message.length; offset += message.segment_size) {
        const size_t length = std::min(message.segment_size, message.length - offset);
        if (::sendto(fd_, arena_.data() + message.offset + offset, length, 0,
                     message.to->sockaddr_ptr(), message.to->sockaddr_length()) >= 0) {
            ++message.sent_datagrams;
            message.sent_bytes += length;
        }
    }
}

}  // namespace tunlab
