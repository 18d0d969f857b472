#pragma once

// The receive-side anti-replay filter (RFC 6479), the size the kernel and wireguard-go use: a
// ring of 128 64-bit blocks (8192 bits) of which all but the block being filled make the
// window, so counters up to 8128 behind the highest one seen are still accepted once each, out
// of order. Counters at or above a limit (REJECT_AFTER_MESSAGES) are always refused.
//
// Per packet, after the packet authenticated (a forged counter must not move the window): no
// allocation, no exceptions, a few instructions. Not thread-safe: one receiver per keypair.

#include <array>
#include <cstddef>
#include <cstdint>

#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {

class ReplayFilter {
  public:
    static constexpr size_t kBlockBits = 64;
    static constexpr size_t kRingBlocks = 128;
    static constexpr uint64_t kWindowSize = (kRingBlocks - 1) * kBlockBits;  // 8128

    // True, and `counter` recorded, if it was not seen before and is within the window.
    bool accept(uint64_t counter, uint64_t limit = kRejectAfterMessages) noexcept;
    void reset() noexcept;

  private:
    uint64_t highest_ = 0;  // the highest counter accepted (0 before any)
    std::array<uint64_t, kRingBlocks> ring_{};
};

}  // namespace tunlab::wireguard
