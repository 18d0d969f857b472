#include "system/udp_receive_batch.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>

#include <cstring>

namespace tunlab {

namespace {

constexpr size_t kControlBytes = CMSG_SPACE(sizeof(int));

}  // namespace

UdpReceiveBatch::UdpReceiveBatch(size_t messages, size_t message_bytes)
    : message_bytes_(message_bytes),
      buffer_(messages * message_bytes),
      headers_(messages),
      vectors_(messages),
      sources_(messages),
      controls_(messages * kControlBytes) {
    for (size_t i = 0; i < messages; ++i) {
        vectors_[i] = {buffer_.data() + i * message_bytes, message_bytes};
    }
}

size_t UdpReceiveBatch::receive(int fd) {
    // The kernel overwrites lengths and flags: every field is set again for every call.
    for (size_t i = 0; i < headers_.size(); ++i) {
        msghdr& header = headers_[i].msg_hdr;
        header = msghdr{};
        header.msg_name = &sources_[i];
        header.msg_namelen = sizeof sources_[i];
        header.msg_iov = &vectors_[i];
        header.msg_iovlen = 1;
        header.msg_control = controls_.data() + i * kControlBytes;
        header.msg_controllen = kControlBytes;
    }
    const int received = ::recvmmsg(fd, headers_.data(), static_cast<unsigned>(headers_.size()),
                                    MSG_DONTWAIT, nullptr);
    return received > 0 ? static_cast<size_t>(received) : 0;
}

UdpReceiveBatch::Message UdpReceiveBatch::message(size_t index) {
    const mmsghdr& entry = headers_[index];
    const msghdr& header = entry.msg_hdr;
    size_t segment_size = 0;
    for (const cmsghdr* control = CMSG_FIRSTHDR(&header); control != nullptr;
         control = CMSG_NXTHDR(const_cast<msghdr*>(&header), const_cast<cmsghdr*>(control))) {
        if (control->cmsg_level == SOL_UDP && control->cmsg_type == UDP_GRO) {
            int size = 0;
            std::memcpy(&size, CMSG_DATA(control), sizeof size);
            segment_size = size > 0 ? static_cast<size_t>(size) : 0;
        }
    }
    const bool truncated = (header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    const size_t length = std::min<size_t>(entry.msg_len, message_bytes_);
    return {{buffer_.data() + index * message_bytes_, length},
            reinterpret_cast<const sockaddr*>(&sources_[index]),
            header.msg_namelen,
            segment_size,
            truncated};
}

}  // namespace tunlab
