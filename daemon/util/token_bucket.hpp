#pragma once

#include <algorithm>
#include <cstdint>

namespace tunlab {

// At most `rate_per_second` events per second on average, in bursts of up to `burst`. Time is
// passed in (µs, any monotonic origin), so that the owner reads the clock once per batch and
// tests need none. Not thread-safe: one owner.
class TokenBucket {
  public:
    TokenBucket(uint64_t rate_per_second, uint64_t burst)
        : rate_(rate_per_second), capacity_(burst * kScale), tokens_(capacity_) {}

    // Takes one token if there is one.
    bool take(uint64_t now_us) {
        if (now_us > last_us_) {
            // Bounded first, so that a long pause cannot overflow the product.
            const uint64_t elapsed = std::min(now_us - last_us_, kScale * 3600);
            tokens_ = std::min(capacity_, tokens_ + elapsed * rate_);
            last_us_ = now_us;
        }
        if (tokens_ < kScale) {
            return false;
        }
        tokens_ -= kScale;
        return true;
    }

  private:
    // A token is kScale units, one per µs at a rate of 1/s: whole numbers throughout.
    static constexpr uint64_t kScale = 1'000'000;
    uint64_t rate_;
    uint64_t capacity_;
    uint64_t tokens_;
    uint64_t last_us_ = 0;
};

}  // namespace tunlab
