#include "crypto/random.hpp"

#include <cstring>

#include "crypto/sodium.hpp"

namespace tunlab::crypto {

uint32_t RandomSource::next_u32() {
    uint8_t bytes[4];
    fill(bytes);
    uint32_t value;
    std::memcpy(&value, bytes, sizeof value);
    return value;
}

uint32_t RandomSource::below(uint32_t bound) {
    return static_cast<uint32_t>((uint64_t{next_u32()} * bound) >> 32);
}

void SystemRandom::fill(std::span<uint8_t> out) {
    detail::ensure_sodium();
    randombytes_buf(out.data(), out.size());
}

RandomSource& system_random() {
    static SystemRandom source;
    return source;
}

}  // namespace tunlab::crypto
