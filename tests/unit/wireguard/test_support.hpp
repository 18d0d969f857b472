#pragma once

// Shared by the WireGuard tests: hex literals and a deterministic random source.

#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/random.hpp"

namespace tunlab::wireguard::test_support {

inline std::vector<uint8_t> from_hex(std::string_view text) {
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        throw std::invalid_argument("not hex");
    };
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i + 1 < text.size(); i += 2) {
        bytes.push_back(static_cast<uint8_t>(digit(text[i]) * 16 + digit(text[i + 1])));
    }
    return bytes;
}

template <size_t N>
std::array<uint8_t, N> array_from_hex(std::string_view text) {
    const auto bytes = from_hex(text);
    if (bytes.size() != N) {
        throw std::invalid_argument("wrong length");
    }
    std::array<uint8_t, N> out;
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

inline std::string to_hex(std::span<const uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text;
    for (const uint8_t byte : bytes) {
        text += kDigits[byte >> 4];
        text += kDigits[byte & 15];
    }
    return text;
}

inline std::span<const uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// The same bytes for the same seed, so that a failing test fails the same way every time.
class SeededRandom final : public crypto::RandomSource {
  public:
    explicit SeededRandom(uint32_t seed) : engine_(seed) {}
    void fill(std::span<uint8_t> out) override {
        for (auto& byte : out) {
            byte = static_cast<uint8_t>(engine_());
        }
    }

  private:
    std::mt19937 engine_;
};

// Every byte the same value: for jitter at its minimum (0x00) or maximum (0xff).
class ConstantRandom final : public crypto::RandomSource {
  public:
    explicit ConstantRandom(uint8_t value) : value_(value) {}
    void fill(std::span<uint8_t> out) override {
        for (auto& byte : out) {
            byte = value_;
        }
    }

  private:
    uint8_t value_;
};

}  // namespace tunlab::wireguard::test_support
