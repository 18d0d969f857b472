#pragma once

// TAI64N timestamps as the handshake initiation carries them: 8 bytes big-endian
// 2^62 + 10 + Unix seconds (TAI64's label for UTC plus the 10 s TAI-UTC offset of 1972, as the
// whitepaper and every implementation use), then 4 bytes big-endian nanoseconds.
//
// The nanoseconds are rounded down to a multiple of 2^24 (~16.8 ms), as wireguard-go and the
// kernel do, so that the timestamp does not fingerprint the sender's clock; initiations are
// accepted at most every 20 ms anyway. A responder accepts an initiation only if its timestamp
// is greater than the last one it accepted from that peer (bytewise, which is numeric order).

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>

namespace tunlab::wireguard {

inline constexpr size_t kTai64nSize = 12;

struct Tai64n {
    std::array<uint8_t, kTai64nSize> bytes{};  // all zeros sorts before any real time

    static Tai64n from_unix(int64_t seconds, uint32_t nanoseconds) {
        constexpr uint64_t kBase = (uint64_t{1} << 62) + 10;
        constexpr uint32_t kWhitenerMask = (uint32_t{1} << 24) - 1;
        const uint64_t label = kBase + static_cast<uint64_t>(seconds);
        const uint32_t nanos = nanoseconds & ~kWhitenerMask;
        Tai64n stamp;
        for (size_t i = 0; i < 8; ++i) {
            stamp.bytes[i] = static_cast<uint8_t>(label >> (56 - 8 * i));
        }
        for (size_t i = 0; i < 4; ++i) {
            stamp.bytes[8 + i] = static_cast<uint8_t>(nanos >> (24 - 8 * i));
        }
        return stamp;
    }

    static Tai64n from(std::chrono::system_clock::time_point time) {
        const auto since_epoch = time.time_since_epoch();
        const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
        const auto nanos =
            std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds);
        return from_unix(seconds.count(), static_cast<uint32_t>(nanos.count()));
    }

    friend auto operator<=>(const Tai64n&, const Tai64n&) = default;
};

}  // namespace tunlab::wireguard
