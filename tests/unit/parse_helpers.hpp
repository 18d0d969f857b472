#pragma once

// Literal addresses for tests: a text that does not parse fails the test that wrote it.

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "net/endpoint.hpp"
#include "net/ip_address.hpp"

namespace tunlab::test_support {

inline IpAddress ip(std::string_view text) {
    const auto parsed = IpAddress::parse(text);
    EXPECT_TRUE(parsed.has_value()) << text;
    return parsed.value_or(IpAddress{});
}

inline Prefix prefix(std::string_view text) {
    const auto parsed = Prefix::parse(text);
    EXPECT_TRUE(parsed.has_value()) << text;
    return parsed.value_or(Prefix{});
}

inline Endpoint endpoint(std::string_view text) {
    std::string error;
    const auto parsed = Endpoint::parse(text, &error);
    EXPECT_TRUE(parsed.has_value()) << text << ": " << error;
    return parsed.value_or(Endpoint{});
}

}  // namespace tunlab::test_support
