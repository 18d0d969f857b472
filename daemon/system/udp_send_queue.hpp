#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/endpoint.hpp"

namespace tunlab {

// Datagrams waiting for one sendmmsg(). A message is a train of datagrams to one endpoint,
// laid out back to back, each `segment_size` bytes but the last; with UDP segmentation
// offload the kernel cuts the train itself (one syscall for up to 64 datagrams), otherwise
// each datagram is its own entry of the sendmmsg.
//
// The queue owns a fixed arena and never allocates after construction: callers write into
// tail() and push(); when room() is short they flush first.
class UdpSendQueue {
  public:
    struct Message {
        const Endpoint* to = nullptr;  // must stay valid until the flush
        size_t offset = 0;
        size_t length = 0;
        size_t segment_size = 0;  // every datagram but the last; == length for one datagram
        void* owner = nullptr;    // handed back by flush() to account for the result
        size_t sent_datagrams = 0;
        size_t sent_bytes = 0;

        size_t datagrams() const { return (length + segment_size - 1) / segment_size; }
    };

    UdpSendQueue(int fd, bool segmentation_offload, size_t arena_bytes, size_t max_messages);

    size_t room() const { return arena_.size() - used_; }
    bool full() const { return messages_.size() >= max_messages_; }
    uint8_t* tail() { return arena_.data() + used_; }
    // The `length` bytes just written at tail(): datagrams of `segment_size` (the last may
    // be shorter) for `to`. An empty datagram (keepalive) has length and segment_size 0.
    void push(const Endpoint& to, size_t length, size_t segment_size, void* owner);

    // Sends everything, then calls report(const Message&) once per message (sent_* say how
    // much went out) and empties the queue.
    template <typename Report>
    void flush(Report&& report) {
        send_all();
        for (const auto& message : messages_) {
            report(message);
        }
        messages_.clear();
        used_ = 0;
    }

    bool segmentation_offload() const { return segmentation_offload_; }

  private:
    bool joins_previous(const Endpoint& to, size_t length, size_t segment_size,
                        const void* owner) const;
    void send_all();
    size_t send_range(size_t first);
    void send_one_by_one(Message& message);

    int fd_;
    bool segmentation_offload_;
    size_t max_messages_;
    std::vector<uint8_t> arena_;
    size_t used_ = 0;
    std::vector<Message> messages_;
    std::vector<mmsghdr> headers_;
    std::vector<iovec> vectors_;
    std::vector<uint8_t> controls_;
};

}  // namespace tunlab
