#include "protocols/wireguard/replay.hpp"

namespace tunlab::wireguard {

bool ReplayFilter::accept(uint64_t counter, uint64_t limit) noexcept {
    if (counter >= limit) {
        return false;
    }
    const uint64_t block = counter / kBlockBits;
    if (counter > highest_) {
        // The blocks between the old highest one and this counter's are now inside the window
        // with nothing seen in them yet; clearing more than the whole ring is pointless.
        const uint64_t highest_block = highest_ / kBlockBits;
        uint64_t blocks_to_clear = block - highest_block;
        if (blocks_to_clear > kRingBlocks) {
            blocks_to_clear = kRingBlocks;
        }
        for (uint64_t i = 1; i <= blocks_to_clear; ++i) {
            ring_[(highest_block + i) % kRingBlocks] = 0;
        }
        highest_ = counter;
    } else if (highest_ - counter > kWindowSize) {
        return false;
    }
    uint64_t& bits = ring_[block % kRingBlocks];
    const uint64_t bit = uint64_t{1} << (counter % kBlockBits);
    if ((bits & bit) != 0) {
        return false;
    }
    bits |= bit;
    return true;
}

void ReplayFilter::reset() noexcept {
    highest_ = 0;
    ring_.fill(0);
}

}  // namespace tunlab::wireguard
