#pragma once

// The WireGuard handshake, Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (whitepaper §5.4.2-5.4.5):
//
//   initiator                                         responder
//   create_initiation() ── initiation (148 B) ──────▶ consume_initiation() finds the peer
//                                                     create_response(), derive_keypair()
//   consume_response() ◀── response (92 B) ───────── (keypair waits as `next`, keypairs.hpp)
//   derive_keypair()   ── first transport message ─▶ confirms the responder's keypair
//
// Pure computation: no clock, sockets or index table. Time comes in as `now_us` (monotonic)
// and the initiation's TAI64N timestamp (wall clock); randomness (ephemeral keys) from the
// RandomSource given; the 32-bit indices from the caller, who owns the table that maps them
// back to peers (a response is matched to its initiation by receiver index = our sender index).
//
// Every consume function checks mac1 itself before any Diffie-Hellman. mac2 and cookies
// (denial-of-service protection under load) are the caller's step before it (cookie.hpp).
//
// Secrets (ephemeral and static private keys, chaining keys, session keys) live in SecretKey
// storage and are wiped as soon as the handshake no longer needs them. Errors in the messages
// are HandshakeError values; only a failure of libcrypto itself (no memory) throws.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "crypto/blake2s.hpp"
#include "crypto/random.hpp"
#include "crypto/secret_key.hpp"
#include "crypto/x25519.hpp"
#include "protocols/wireguard/cookie.hpp"
#include "protocols/wireguard/handshake_error.hpp"
#include "protocols/wireguard/identity.hpp"
#include "protocols/wireguard/keypairs.hpp"
#include "protocols/wireguard/messages.hpp"
#include "protocols/wireguard/tai64n.hpp"

namespace tunlab::wireguard {

enum class HandshakeStage : uint8_t {
    Zeroed,              // nothing pending
    InitiationCreated,   // we initiated and wait for a response
    InitiationConsumed,  // we accepted an initiation and owe a response
    ResponseCreated,     // we responded: derive the keypair
    ResponseConsumed,    // our initiation was answered: derive the keypair
};

// One per peer: the peer's static key and preshared key, and the handshake in progress.
class HandshakeState {
  public:
    // Precomputes DH(our static, peer static). If that is all zeros (a low-order public key)
    // the peer can be configured, but every handshake with it fails with InvalidPublicKey.
    HandshakeState(const LocalIdentity& local, const crypto::PublicKey& remote_static);

    // All zeros (the default) means no preshared key, as the protocol defines.
    void set_preshared_key(std::span<const uint8_t, crypto::kKeySize> key);
    // After our static key changed: a new DH(static, static), and any handshake dropped.
    void set_local_identity(const LocalIdentity& local);

    // Writes an initiation to send (mac1, and mac2 if a fresh cookie from this peer is held).
    // `local_index` is the index the peer will answer to; `timestamp` the current wall clock.
    HandshakeError create_initiation(const LocalIdentity& local, uint32_t local_index,
                                     const Tai64n& timestamp, uint64_t now_us,
                                     crypto::RandomSource& random,
                                     std::span<uint8_t, kInitiationSize> out);

    // Answers the initiation consume_initiation() accepted for this peer.
    HandshakeError create_response(uint32_t local_index, uint64_t now_us,
                                   crypto::RandomSource& random,
                                   std::span<uint8_t, kResponseSize> out);

    // A response to our pending initiation (the caller found this peer by its receiver index).
    HandshakeError consume_response(const LocalIdentity& local, std::span<const uint8_t> message);

    // A cookie reply to the last initiation or response we sent this peer: the next one
    // carries mac2. (The caller found this peer by the reply's receiver index.)
    HandshakeError consume_cookie_reply(std::span<const uint8_t> message, uint64_t now_us);

    // After create_response() or consume_response(): the session keys, the handshake wiped.
    // Nothing in any other stage.
    std::unique_ptr<Keypair> derive_keypair(uint64_t now_us);

    // Drops a pending handshake (keys wiped). The last timestamp is kept: replays stay refused.
    void clear();

    const crypto::PublicKey& remote_static() const { return remote_static_; }
    HandshakeStage stage() const { return stage_; }
    uint32_t local_index() const { return local_index_; }
    uint32_t remote_index() const { return remote_index_; }
    const Tai64n& last_timestamp() const { return last_timestamp_; }
    const CookieGenerator& cookies() const { return cookies_; }

  private:
    friend struct InitiationConsumer;

    crypto::PublicKey remote_static_;
    crypto::SecretKey preshared_key_;
    crypto::SecretKey static_static_;
    bool static_static_valid_ = false;
    CookieGenerator cookies_;

    HandshakeStage stage_ = HandshakeStage::Zeroed;
    crypto::Hash hash_{};
    crypto::SecretKey chaining_key_;
    crypto::SecretKey local_ephemeral_;
    crypto::PublicKey remote_ephemeral_{};
    uint32_t local_index_ = 0;
    uint32_t remote_index_ = 0;

    Tai64n last_timestamp_;
    uint64_t last_initiation_consumed_us_ = 0;
    bool has_consumed_initiation_ = false;
};

// Finds a peer by its static public key; nullptr for a key that is not a peer.
using PeerLookup = std::function<HandshakeState*(const crypto::PublicKey&)>;

struct ConsumedInitiation {
    HandshakeError error = HandshakeError::Ok;
    // The peer, once identified (also on StaleTimestamp, Flood and a bad timestamp, so that the
    // caller can count per peer); on Ok its state holds what create_response() needs.
    HandshakeState* peer = nullptr;
};

// An initiation from anyone: mac1, then our static key decrypts the sender's static key, which
// names the peer, whose DH(static, static) decrypts the timestamp, which must be newer than the
// peer's last one, and no sooner than 1/50 s after its last accepted initiation.
ConsumedInitiation consume_initiation(const LocalIdentity& local, std::span<const uint8_t> message,
                                      const PeerLookup& find_peer, uint64_t now_us);

}  // namespace tunlab::wireguard
