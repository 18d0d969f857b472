#include "net/ip_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace tunlab {

IpAddress IpAddress::v4(const uint8_t* network_order) {
    IpAddress address;
    address.family = Family::V4;
    std::memcpy(address.bytes.data(), network_order, 4);
    return address;
}

IpAddress IpAddress::v6(const uint8_t* network_order) {
    IpAddress address;
    address.family = Family::V6;
    std::memcpy(address.bytes.data(), network_order, 16);
    return address;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton needs a terminated string; anything longer than the longest IPv6 text is bad.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
        text.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    char buffer[INET6_ADDRSTRLEN] = {};
    std::memcpy(buffer, text.data(), text.size());
    uint8_t raw[16];
    if (inet_pton(AF_INET, buffer, raw) == 1) {
        return v4(raw);
    }
    if (inet_pton(AF_INET6, buffer, raw) == 1) {
        return v6(raw);
    }
    return std::nullopt;
}

std::string IpAddress::to_string() const {
    char buffer[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == Family::V4 ? AF_INET : AF_INET6, bytes.data(), buffer, sizeof buffer);
    return buffer;
}

bool IpAddress::is_unspecified() const {
    for (uint8_t byte : bytes) {
        if (byte != 0) {
            return false;
        }
    }
    return true;
}

IpAddress IpAddress::masked(unsigned length) const {
    IpAddress result = *this;
    const unsigned width = bit_width();
    for (unsigned bit = length; bit < width; ++bit) {
        result.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    }
    return result;
}

namespace {

struct AddressAndLength {
    IpAddress address;
    unsigned length;
};

std::optional<AddressAndLength> parse_cidr(std::string_view text) {
    const auto slash = text.find('/');
    auto address = IpAddress::parse(text.substr(0, slash));
    if (!address) {
        return std::nullopt;
    }
    unsigned length = address->bit_width();
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        const auto [end, error] =
            std::from_chars(digits.data(), digits.data() + digits.size(), length);
        if (digits.empty() || error != std::errc{} || end != digits.data() + digits.size() ||
            length > address->bit_width()) {
            return std::nullopt;
        }
    }
    return AddressAndLength{*address, length};
}

}  // namespace

std::optional<Prefix> Prefix::parse(std::string_view text) {
    const auto parsed = parse_cidr(text);
    if (!parsed) {
        return std::nullopt;
    }
    return Prefix{parsed->address.masked(parsed->length), static_cast<uint8_t>(parsed->length)};
}

Prefix Prefix::host(const IpAddress& address) {
    return Prefix{address, static_cast<uint8_t>(address.bit_width())};
}

bool Prefix::contains(const IpAddress& candidate) const {
    return candidate.family == address.family && candidate.masked(length) == address;
}

std::string Prefix::to_string() const {
    return address.to_string() + "/" + std::to_string(length);
}

std::optional<InterfaceAddress> InterfaceAddress::parse(std::string_view text) {
    const auto parsed = parse_cidr(text);
    if (!parsed) {
        return std::nullopt;
    }
    return InterfaceAddress{parsed->address, static_cast<uint8_t>(parsed->length)};
}

std::string InterfaceAddress::to_string() const {
    return address.to_string() + "/" + std::to_string(length);
}

size_t IpAddressHash::operator()(const IpAddress& address) const noexcept {
    // FNV-1a over the used bytes: cheap and good enough for a table keyed by peer addresses.
    uint64_t hash = 1469598103934665603ull ^ static_cast<uint8_t>(address.family);
    const size_t used = address.family == Family::V4 ? 4 : 16;
    for (size_t i = 0; i < used; ++i) {
        hash = (hash ^ address.bytes[i]) * 1099511628211ull;
    }
    return static_cast<size_t>(hash);
}

}  // namespace tunlab
