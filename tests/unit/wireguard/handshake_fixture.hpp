#pragma once

// Two (or three) WireGuard identities that know each other, for handshakes in memory.

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <memory>
#include <ostream>

#include "protocols/wireguard/handshake.hpp"
#include "test_support.hpp"

namespace tunlab::wireguard {

// gtest prints errors by name.
inline void PrintTo(HandshakeError error, std::ostream* out) {
    *out << handshake_error_name(error);
}

}  // namespace tunlab::wireguard

namespace tunlab::wireguard::test_support {

// One side: its identity, and the HandshakeState it keeps for each peer it knows.
struct Side {
    explicit Side(uint32_t seed) : random(seed), identity(LocalIdentity::generate(random)) {}

    void know(const Side& other) {
        peers[other.identity.public_key()] =
            std::make_unique<HandshakeState>(identity, other.identity.public_key());
    }
    HandshakeState& state_for(const Side& other) { return *peers.at(other.identity.public_key()); }
    PeerLookup lookup() {
        return [this](const crypto::PublicKey& key) -> HandshakeState* {
            const auto found = peers.find(key);
            return found == peers.end() ? nullptr : found->second.get();
        };
    }

    SeededRandom random;
    LocalIdentity identity;
    std::map<crypto::PublicKey, std::unique_ptr<HandshakeState>> peers;
};

inline Tai64n at_second(int64_t seconds) {
    return Tai64n::from_unix(1'700'000'000 + seconds, 0);
}

class HandshakeTest : public ::testing::Test {
  protected:
    HandshakeTest() : alice(1), bob(2), carol(3) {
        alice.know(bob);
        bob.know(alice);
        carol.know(bob);  // bob does not know carol
    }

    std::array<uint8_t, kInitiationSize> initiation_from(Side& from, Side& to, int64_t second = 0,
                                                         uint32_t index = 0x11111111) {
        std::array<uint8_t, kInitiationSize> out{};
        EXPECT_EQ(from.state_for(to).create_initiation(from.identity, index, at_second(second),
                                                       now_us, from.random, out),
                  HandshakeError::Ok);
        return out;
    }

    // Recomputes mac1 (and zeros mac2) after a test changed a message, as an attacker who
    // knows the receiver's public key can.
    static void fix_mac1(std::span<uint8_t> message, const Side& receiver) {
        CookieGenerator(receiver.identity.public_key()).add_macs(message, 0);
    }

    uint64_t now_us = 1'000 * 1'000'000;
    Side alice;
    Side bob;
    Side carol;
};

}  // namespace tunlab::wireguard::test_support
