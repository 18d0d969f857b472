#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tunlab {

enum class Family : uint8_t { V4 = 4, V6 = 6 };

// An IPv4 or IPv6 address in network byte order. IPv4 uses the first 4 bytes; the rest stay 0
// so that comparison and hashing work on the whole array.
struct IpAddress {
    Family family = Family::V4;
    std::array<uint8_t, 16> bytes{};

    static IpAddress v4(const uint8_t* network_order);
    static IpAddress v6(const uint8_t* network_order);
    static std::optional<IpAddress> parse(std::string_view text);

    unsigned bit_width() const { return family == Family::V4 ? 32 : 128; }
    std::string to_string() const;
    bool is_unspecified() const;
    // The address with every bit past `length` cleared.
    IpAddress masked(unsigned length) const;

    auto operator<=>(const IpAddress&) const = default;
};

// A CIDR block such as 192.168.60.0/24. Host bits are cleared on parse, so 192.168.60.5/24
// and 192.168.60.0/24 name the same block (the interface-address form keeps the host part in
// `InterfaceAddress`).
struct Prefix {
    IpAddress address;
    uint8_t length = 0;

    // Accepts "a.b.c.d/n", "x::y/n", or a bare address (a host prefix: /32 or /128).
    static std::optional<Prefix> parse(std::string_view text);
    static Prefix host(const IpAddress& address);

    bool contains(const IpAddress& candidate) const;
    std::string to_string() const;

    auto operator<=>(const Prefix&) const = default;
};

// An address assigned to an interface: keeps its host part, e.g. 192.168.53.99/24.
struct InterfaceAddress {
    IpAddress address;
    uint8_t length = 0;

    static std::optional<InterfaceAddress> parse(std::string_view text);
    std::string to_string() const;

    auto operator<=>(const InterfaceAddress&) const = default;
};

struct IpAddressHash {
    size_t operator()(const IpAddress& address) const noexcept;
};

}  // namespace tunlab
