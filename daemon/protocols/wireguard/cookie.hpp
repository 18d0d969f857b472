#pragma once

// mac1, mac2 and cookies (whitepaper §5.4.4, §5.4.7; wireguard-go device/cookie.go).
//
// Every initiation and response ends with mac1 = MAC(HASH("mac1----" ‖ receiver's public key),
// message up to mac1), so a receiver can drop garbage before any Diffie-Hellman; and mac2 =
// MAC(cookie, message up to mac2), or zeros without a cookie. A responder under load (its own
// decision: wireguard-go's is "handshake queue more than 1/8 full") answers messages without a
// valid mac2 with a cookie reply instead: cookie = MAC(secret, source IP ‖ port), the secret
// renewed every 2 minutes, sent encrypted with XChaCha20-Poly1305 under HASH("cookie--" ‖ its
// public key) with the mac1 it answers as associated data. The initiator decrypts it, keeps the
// cookie for 2 minutes and puts mac2 on its next messages: proof that it owns its source address.

#include <array>
#include <cstdint>
#include <span>

#include "crypto/blake2s.hpp"
#include "crypto/random.hpp"
#include "crypto/secret_key.hpp"
#include "crypto/x25519.hpp"
#include "protocols/wireguard/handshake_error.hpp"
#include "protocols/wireguard/identity.hpp"
#include "protocols/wireguard/messages.hpp"

namespace tunlab::wireguard {

// What a cookie is bound to: the source address (4 or 16 bytes) then the source port,
// big-endian (the kernel's order; only the responder that made the cookie ever recomputes it).
struct CookieSource {
    std::array<uint8_t, 18> bytes{};
    size_t size = 0;

    static CookieSource from(std::span<const uint8_t> address, uint16_t port);
    std::span<const uint8_t> view() const { return {bytes.data(), size}; }
};

// mac1 of an initiation or response (message.size() >= 32), checked in constant time.
bool mac1_valid(std::span<const uint8_t> message, const crypto::Hash& mac1_key);

// The responder side: one per interface, for our identity.
class CookieChecker {
  public:
    enum class Admission : uint8_t {
        Accept,      // go on with the handshake
        BadMac1,     // drop
        SendCookie,  // under load without a valid mac2: answer with create_reply(), then drop
    };

    explicit CookieChecker(const LocalIdentity& identity);

    bool check_mac1(std::span<const uint8_t> message) const;
    // False when no cookie secret is current (none made yet, or older than 2 minutes).
    bool check_mac2(std::span<const uint8_t> message, const CookieSource& source,
                    uint64_t now_us) const;
    // mac1 always; mac2 only when the caller says it is under load.
    Admission admit(std::span<const uint8_t> message, const CookieSource& source, bool under_load,
                    uint64_t now_us) const;

    // A cookie reply to `message` (an initiation or response that passed mac1). Renews the
    // secret when it is older than 2 minutes. False (nothing written) for a message too short
    // to carry MACs.
    bool create_reply(std::span<const uint8_t> message, const CookieSource& source, uint64_t now_us,
                      crypto::RandomSource& random, std::span<uint8_t, kCookieReplySize> out);

  private:
    MacField cookie_for(const CookieSource& source) const;
    bool secret_current(uint64_t now_us) const;

    crypto::Hash mac1_key_;
    crypto::Hash cookie_key_;
    crypto::SecretKey secret_;
    uint64_t secret_created_us_ = 0;
    bool has_secret_ = false;
};

// The initiator side: one per peer, for the peer's public key. Also puts the MACs on our
// responses to that peer.
class CookieGenerator {
  public:
    explicit CookieGenerator(const crypto::PublicKey& remote_static);
    CookieGenerator(const CookieGenerator&) = delete;
    CookieGenerator& operator=(const CookieGenerator&) = delete;
    CookieGenerator(CookieGenerator&&) noexcept = default;
    CookieGenerator& operator=(CookieGenerator&&) noexcept = default;
    ~CookieGenerator();

    // Writes mac1, and mac2 if a cookie younger than 2 minutes is held (zeros otherwise), into
    // the last 32 bytes of `message` (an initiation or response); remembers mac1 for the reply.
    void add_macs(std::span<uint8_t> message, uint64_t now_us);

    // A cookie reply to the last message we MACed. BadMessage, WrongState (nothing sent yet)
    // or DecryptFailed (not an answer to our last mac1).
    HandshakeError consume_reply(std::span<const uint8_t> message, uint64_t now_us);

    bool has_fresh_cookie(uint64_t now_us) const;

  private:
    crypto::Hash mac1_key_;
    crypto::Hash cookie_key_;
    MacField cookie_{};
    uint64_t cookie_received_us_ = 0;
    bool has_cookie_ = false;
    MacField last_mac1_{};
    bool has_last_mac1_ = false;
};

}  // namespace tunlab::wireguard
