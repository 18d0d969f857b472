#pragma once

// Where randomness comes from. Protocol code takes a RandomSource& so that tests can run it
// deterministically; the daemon passes system_random() (libsodium's randombytes: getrandom()).

#include <cstdint>
#include <span>

namespace tunlab::crypto {

class RandomSource {
  public:
    virtual ~RandomSource() = default;
    virtual void fill(std::span<uint8_t> out) = 0;

    uint32_t next_u32();
    // Uniform in [0, bound) for bound > 0 (Lemire's multiply-shift; the bias is below 2^-32 per
    // draw for the small bounds used here: timer jitter, indices).
    uint32_t below(uint32_t bound);
};

class SystemRandom final : public RandomSource {
  public:
    void fill(std::span<uint8_t> out) override;
};

RandomSource& system_random();

}  // namespace tunlab::crypto
