#pragma once

// The per-peer timer rules of the whitepaper (§6.2-6.5), as the kernel and wireguard-go
// (device/timers.go) implement them, as a pure state machine: the owner reports what happened
// (the event methods), calls tick(now) when next_deadline() is reached, and carries out the
// actions it returns. No clock of its own: every `now_us` is the owner's monotonic time.
//
// Rules (the deadlines, each re-armed or cancelled by the events named):
//   retransmit   5 s + 0..334 ms jitter after an initiation is sent, until a handshake
//                completes: send another (a retry). After 18 retries (REKEY_ATTEMPT_TIME /
//                REKEY_TIMEOUT; 20 initiations, ~100 s) give up instead: drop what waits for
//                a session, stop the passive keepalive, and arm the zeroing below.
//   keepalive    10 s after data is received with nothing sent since: send an empty message.
//   new handshake 15 s + jitter after data is sent with nothing authenticated received since:
//                the peer stopped answering, initiate again.
//   zero keys    540 s (3 × REJECT_AFTER_TIME) after the last session was derived: wipe all
//                keypairs and handshake state.
//   persistent   every N s after the last authenticated packet either way (if configured).
// Also: at most one initiation per REKEY_TIMEOUT (want_initiation()), and the keypair rules
// that ask for a new handshake (needs_rekey_after_send/receive(), usable_for_sending()).

#include <cstdint>
#include <optional>

#include "crypto/random.hpp"
#include "protocols/wireguard/keypairs.hpp"

namespace tunlab::wireguard {

struct TimerActions {
    bool send_initiation = false;  // create and send an initiation, then call initiation_sent()
    // Send an empty transport message (a keepalive); without a usable keypair, start a
    // handshake instead (want_initiation()).
    bool send_keepalive = false;
    bool gave_up = false;    // handshake attempts exhausted: drop packets waiting for a session
    bool zero_keys = false;  // wipe keypairs and handshake (Keypairs::clear, HandshakeState::clear)

    bool any() const { return send_initiation || send_keepalive || gave_up || zero_keys; }
};

class PeerTimers {
  public:
    explicit PeerTimers(crypto::RandomSource& random) : random_(random) {}

    // 0 turns it off. Turning it on sends a keepalive at once (as `wg set` does).
    void set_persistent_keepalive(uint16_t interval_seconds, uint64_t now_us);

    // What happened. Each names the message kind; keepalives count as transport messages.
    void initiation_sent(uint64_t now_us);
    void response_sent(uint64_t now_us);  // with its keypair derived
    void transport_sent(uint64_t now_us, bool is_keepalive);
    void initiation_received(uint64_t now_us);  // an initiation consumed
    void response_received(uint64_t now_us);    // a response consumed and its keypair derived
    // `confirmed_keypair`: it was the first under the responder's `next` keypair
    // (Keypairs::received_with() returned true), which completes the handshake.
    void transport_received(uint64_t now_us, bool is_keepalive, bool confirmed_keypair);

    // Whether to send an initiation now: not if one was sent (or a response) less than
    // REKEY_TIMEOUT ago. If true, the caller must send one. A fresh attempt (not a retry)
    // restarts the attempt count.
    bool want_initiation(uint64_t now_us, bool is_retry = false);

    // The keypair rules (whitepaper §6.2). `current` may be null.
    // Data may be sent with it: it exists, is younger than REJECT_AFTER_TIME, and has counters
    // left. If not, queue the packet and initiate.
    static bool usable_for_sending(const Keypair* current, uint64_t now_us);
    // After sending: REKEY_AFTER_MESSAGES used, or we initiated it REKEY_AFTER_TIME ago.
    static bool needs_rekey_after_send(const Keypair* current, uint64_t now_us);
    // After receiving: we initiated it and it is about to expire (REJECT_AFTER_TIME −
    // KEEPALIVE_TIMEOUT − REKEY_TIMEOUT old), once per session.
    bool needs_rekey_after_receive(const Keypair* current, uint64_t now_us);

    // Runs every rule whose deadline is at or before `now_us`.
    TimerActions tick(uint64_t now_us);
    // The earliest pending deadline, if any: when to call tick() next.
    std::optional<uint64_t> next_deadline() const;
    // Cancels everything (peer removed, interface down).
    void stop();

    uint32_t handshake_attempts() const { return handshake_attempts_; }
    std::optional<uint64_t> last_handshake_us() const { return last_handshake_us_; }

  private:
    using Deadline = std::optional<uint64_t>;

    uint64_t jitter();
    void any_authenticated_sent();
    void any_authenticated_received();
    void authenticated_traversal(uint64_t now_us);
    void session_derived(uint64_t now_us);
    void handshake_complete(uint64_t now_us);
    static bool due(const Deadline& deadline, uint64_t now_us);

    crypto::RandomSource& random_;
    Deadline retransmit_handshake_;
    Deadline send_keepalive_;
    Deadline new_handshake_;
    Deadline zero_key_material_;
    Deadline persistent_keepalive_;
    uint16_t persistent_interval_s_ = 0;
    uint32_t handshake_attempts_ = 0;
    bool need_another_keepalive_ = false;
    bool sent_last_minute_handshake_ = false;
    std::optional<uint64_t> last_handshake_sent_us_;
    std::optional<uint64_t> last_handshake_us_;
};

}  // namespace tunlab::wireguard
