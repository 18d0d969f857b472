#pragma once

// The protocol's constants (whitepaper §6, wireguard-go device/constants.go). Times are in
// microseconds of the caller's monotonic clock, the unit of every `now_us` in this library.

#include <cstdint>
#include <string_view>

namespace tunlab::wireguard {

inline constexpr std::string_view kConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
inline constexpr std::string_view kIdentifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
inline constexpr std::string_view kLabelMac1 = "mac1----";
inline constexpr std::string_view kLabelCookie = "cookie--";

inline constexpr uint64_t kSecond = 1'000'000;
inline constexpr uint64_t kMillisecond = 1'000;

inline constexpr uint64_t kRekeyAfterMessages = uint64_t{1} << 60;
// 2^64 - 2^13 - 1: the last 2^13 counters stay unused so that the replay window can never wrap.
inline constexpr uint64_t kRejectAfterMessages = ~uint64_t{0} - (uint64_t{1} << 13);
inline constexpr uint64_t kRekeyAfterTime = 120 * kSecond;
inline constexpr uint64_t kRejectAfterTime = 180 * kSecond;
inline constexpr uint64_t kRekeyAttemptTime = 90 * kSecond;
inline constexpr uint64_t kRekeyTimeout = 5 * kSecond;
inline constexpr uint64_t kRekeyTimeoutJitterMax = 334 * kMillisecond;  // exclusive
inline constexpr uint64_t kKeepaliveTimeout = 10 * kSecond;
inline constexpr uint64_t kCookieRefreshTime = 120 * kSecond;
// Initiations from one peer are consumed at most every 1/50 s (wireguard-go's
// HandshakeInitationRate); TAI64N timestamps are rounded to 2^24 ns (~16.8 ms) to match.
inline constexpr uint64_t kInitiationMinInterval = kSecond / 50;
// Retries after the first initiation before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT.
inline constexpr uint32_t kMaxTimerHandshakes = 90 / 5;

}  // namespace tunlab::wireguard
