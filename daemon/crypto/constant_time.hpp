#pragma once

// Comparisons whose time does not depend on where the inputs differ, for MACs, tags and keys:
// an early-exit memcmp would tell a forger how many leading bytes were right.

#include <cstdint>
#include <span>

namespace tunlab::crypto {

// False for different sizes (sizes are public); otherwise compares every byte.
bool equal_constant_time(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept;
bool is_zero_constant_time(std::span<const uint8_t> bytes) noexcept;

}  // namespace tunlab::crypto
