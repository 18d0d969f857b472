#include "offload/checksum.hpp"

#include <bit>
#include <cstring>

namespace tunlab::offload {
namespace {

// Converts between a sum of native-order 16-bit words and a sum of big-endian words: RFC 1071
// §2(B), the one's-complement sum is byte-order independent up to swapping its two bytes.
uint16_t native_to_big_endian_sum(uint16_t sum) {
    if constexpr (std::endian::native == std::endian::little) {
        return static_cast<uint16_t>((sum << 8) | (sum >> 8));
    }
    return sum;
}

uint16_t fold_to_16(uint64_t accumulator) {
    accumulator = (accumulator & 0xffffffffu) + (accumulator >> 32);
    accumulator = (accumulator & 0xffffffffu) + (accumulator >> 32);
    accumulator = (accumulator & 0xffffu) + (accumulator >> 16);
    accumulator = (accumulator & 0xffffu) + (accumulator >> 16);
    return static_cast<uint16_t>(accumulator);
}

uint64_t load_u64(const uint8_t* bytes) {
    uint64_t value;
    std::memcpy(&value, bytes, sizeof value);  // one unaligned load, no alignment assumed
    return value;
}

// Each 64-bit word adds its two 32-bit halves into a 64-bit accumulator: the carries out of the
// 16-bit words pile up in the upper bits instead of being folded every step, and an add never
// overflows (2^33 per word; a block of 32 bytes adds < 2^36). Folding the 32-bit halves later
// gives the same one's-complement sum as adding 16-bit words one by one.
constexpr size_t kBlock = 32;
// 2^64 / 2^36 blocks fit; fold well before that (every 64 MB) so no input size can overflow.
constexpr size_t kBlocksPerFold = size_t{1} << 21;

}  // namespace

uint16_t ones_complement_sum(std::span<const uint8_t> data, uint16_t initial) {
    // Per byte: 1/8 of a load and 1/4 of an add (about 0.03 ns/byte on a 3 GHz core, memory
    // permitting), with four independent accumulators so that the adds do not wait on each
    // other.
    const uint8_t* bytes = data.data();
    size_t remaining = data.size();
    uint64_t total = native_to_big_endian_sum(initial);  // the same swap converts back

    while (remaining >= kBlock) {
        uint64_t sum0 = 0;
        uint64_t sum1 = 0;
        uint64_t sum2 = 0;
        uint64_t sum3 = 0;
        size_t blocks = remaining / kBlock;
        if (blocks > kBlocksPerFold) {
            blocks = kBlocksPerFold;
        }
        for (size_t i = 0; i < blocks; ++i, bytes += kBlock) {
            const uint64_t w0 = load_u64(bytes);
            const uint64_t w1 = load_u64(bytes + 8);
            const uint64_t w2 = load_u64(bytes + 16);
            const uint64_t w3 = load_u64(bytes + 24);
            sum0 += (w0 & 0xffffffffu) + (w0 >> 32);
            sum1 += (w1 & 0xffffffffu) + (w1 >> 32);
            sum2 += (w2 & 0xffffffffu) + (w2 >> 32);
            sum3 += (w3 & 0xffffffffu) + (w3 >> 32);
        }
        remaining -= blocks * kBlock;
        total += fold_to_16(sum0) + fold_to_16(sum1) + fold_to_16(sum2) + fold_to_16(sum3);
    }
    while (remaining >= 8) {
        const uint64_t word = load_u64(bytes);
        total += (word & 0xffffffffu) + (word >> 32);
        bytes += 8;
        remaining -= 8;
    }
    if (remaining >= 4) {
        uint32_t word;
        std::memcpy(&word, bytes, sizeof word);
        total += word;
        bytes += 4;
        remaining -= 4;
    }
    if (remaining >= 2) {
        uint16_t word;
        std::memcpy(&word, bytes, sizeof word);
        total += word;
        bytes += 2;
        remaining -= 2;
    }
    if (remaining == 1) {
        // The odd byte is the first of a word whose second byte is zero, whatever the host order.
        const uint8_t padded[2] = {bytes[0], 0};
        uint16_t word;
        std::memcpy(&word, padded, sizeof word);
        total += word;
    }
    return native_to_big_endian_sum(fold_to_16(total));
}

uint16_t pseudo_header_sum_ipv4(std::span<const uint8_t, 4> source,
                                std::span<const uint8_t, 4> destination, uint8_t protocol,
                                uint16_t transport_length) {
    uint32_t sum = protocol + uint32_t{transport_length};
    for (size_t i = 0; i < 4; i += 2) {
        sum += (uint32_t{source[i]} << 8) | source[i + 1];
        sum += (uint32_t{destination[i]} << 8) | destination[i + 1];
    }
    return fold_to_16(sum);
}

uint16_t pseudo_header_sum_ipv6(std::span<const uint8_t, 16> source,
                                std::span<const uint8_t, 16> destination, uint8_t protocol,
                                uint32_t transport_length) {
    uint64_t sum = uint64_t{protocol} + (transport_length >> 16) + (transport_length & 0xffffu);
    for (size_t i = 0; i < 16; i += 2) {
        sum += (uint32_t{source[i]} << 8) | source[i + 1];
        sum += (uint32_t{destination[i]} << 8) | destination[i + 1];
    }
    return fold_to_16(sum);
}

}  // namespace tunlab::offload
