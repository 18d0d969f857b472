#include "system/device_read_batch.hpp"

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "util/log.hpp"

namespace tunlab {

namespace {

// No read result is negative beyond -4095 (errno values).
constexpr int kInFlight = INT32_MIN;
// Packets read one by one before the ring takes over: a lone packet costs a read() and the
// read() that finds the device empty, both cheaper than one io_uring_enter() here.
constexpr size_t kReadsBeforeRing = 2;

void log_read_error(int error) {
    if (error != EAGAIN && error != EINTR) {
        log::warning("data plane: read from device: ", std::strerror(error));
    }
}

}  // namespace

DeviceReadBatch::DeviceReadBatch(int fd, size_t slots, size_t slot_bytes, bool use_io_uring)
    : fd_(fd),
      slots_(std::max<size_t>(slots, 1)),
      slot_bytes_(slot_bytes),
      buffer_(slots_ * slot_bytes),
      packets_(slots_),
      results_(slots_) {
    if (use_io_uring) {
        if (const int error = set_up_ring(); error != 0) {
            ring_.reset();
            log::info("data plane: no io_uring (", std::strerror(error),
                      "): one read() per packet from the device");
        }
    }
}

DeviceReadBatch::~DeviceReadBatch() {
    close_ring();
}

void DeviceReadBatch::close_ring() {
    if (ring_) {
        io_uring_queue_exit(ring_.get());
        ring_.reset();
    }
}

int DeviceReadBatch::set_up_ring() {
    ring_ = std::make_unique<io_uring>();
    // Created disabled, so that the restriction is in place before the first submission.
    if (const int result = io_uring_queue_init(static_cast<unsigned>(slots_), ring_.get(),
                                               IORING_SETUP_R_DISABLED);
        result < 0) {
        return -result;
    }
    // The ring may read, nothing else. The descriptor is not registered with it: a registered
    // file stays open until the ring's teardown, which the kernel finishes asynchronously, so
    // the device would outlive a killed daemon for a moment.
    io_uring_restriction allowed{};
    allowed.opcode = IORING_RESTRICTION_SQE_OP;
    allowed.sqe_op = IORING_OP_READ;
    // The raw register call: Debian 12's liburing 2.3 declares io_uring_register_restrictions()
    // and io_uring_enable_rings() but does not export them.
    const auto ring_fd = static_cast<unsigned>(ring_->ring_fd);
    int result = io_uring_register(ring_fd, IORING_REGISTER_RESTRICTIONS, &allowed, 1);
    if (result >= 0) {
        result = io_uring_register(ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    }
    if (result < 0) {
        io_uring_queue_exit(ring_.get());
        return -result;
    }
    return 0;
}

DeviceReadBatch::Result DeviceReadBatch::read() {
    if (ring_ && streak_ >= kReadsBeforeRing) {
        return read_with_ring();
    }
    return read_one();
}

DeviceReadBatch::Result DeviceReadBatch::read_with_ring() {
    const size_t issued = batch_;
    for (size_t i = 0; i < issued; ++i) {
        io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
        // Offset 0: the device is a stream.
        io_uring_prep_read(sqe, fd_, slot(i), static_cast<unsigned>(slot_bytes_), 0);
        // Fail with EAGAIN on an empty device instead of waiting for a packet (which io_uring
        // would do even on an O_NONBLOCK descriptor).
        sqe->rw_flags = RWF_NOWAIT;
        io_uring_sqe_set_data64(sqe, i);
        results_[i] = kInFlight;
    }
    // With RWF_NOWAIT every read completes within the submission: the wait returns at once.
    int submitted;
    do {
        submitted = io_uring_submit_and_wait(ring_.get(), static_cast<unsigned>(issued));
    } while (submitted == -EINTR);
    if (submitted < 0) {
        log::warning("data plane: io_uring_enter: ", std::strerror(-submitted),
                     "; reading the device one packet at a time from now on");
        close_ring();
        return read_one();
    }
    io_uring_cqe* cqe;
    while (io_uring_peek_cqe(ring_.get(), &cqe) == 0) {
        results_[io_uring_cqe_get_data64(cqe)] = cqe->res;
        io_uring_cqe_seen(ring_.get(), cqe);
    }
    // Each read took the packet at the head of the device's queue when it ran, and they ran
    // in slot order: a packet in a later slot arrived after those in earlier ones.
    Result result;
    bool in_flight = false;
    bool unsupported = false;
    for (size_t i = 0; i < issued; ++i) {
        if (results_[i] == kInFlight) {
            // Not possible with RWF_NOWAIT; were it to happen, the read would fill a buffer
            // that is about to be reused.
            in_flight = true;
        } else if (results_[i] > 0) {
            packets_[result.packets++] = {slot(i), static_cast<size_t>(results_[i])};
        } else {
            // A device without non-blocking reads through io_uring took nothing: read() it.
            unsupported |= results_[i] == -EOPNOTSUPP || results_[i] == -EINVAL;
            if (!unsupported) {
                log_read_error(-results_[i]);
            }
            result.drained = true;
        }
    }
    if (in_flight) {
        log::error(
            "data plane: a read from the device did not complete at once; one read() "
            "per packet from now on");
    } else if (unsupported) {
        log::info("data plane: the device does not read through io_uring; one read() per packet");
    }
    if (in_flight || unsupported) {
        close_ring();
        result.drained = false;  // the next read() looks again
    }
    if (result.drained) {
        streak_ = 0;
        batch_ = std::max(result.packets, kReadsBeforeRing);
    } else {
        streak_ += result.packets;
        batch_ = std::min(2 * issued, slots_);
    }
    return result;
}

DeviceReadBatch::Result DeviceReadBatch::read_one() {
    const ssize_t length = ::read(fd_, slot(0), slot_bytes_);
    if (length <= 0) {
        if (length < 0) {
            log_read_error(errno);
        }
        streak_ = 0;
        return Result{.packets = 0, .drained = true};
    }
    packets_[0] = {slot(0), static_cast<size_t>(length)};
    ++streak_;
    return Result{.packets = 1, .drained = false};
}

}  // namespace tunlab
