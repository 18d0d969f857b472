#pragma once

// Transport sessions (whitepaper §5.4.6, §6.1): a keypair is the pair of keys one handshake
// derived, with its indices, age, sending counter and replay filter; a peer holds up to three.
//
//   current   sends and receives.
//   previous  the one current before: still receives, for packets already in flight.
//   next      a responder's new keypair, which it may not send with until the initiator has
//             proved it has it: the first transport message received under it makes it current.
//
// An initiator's new keypair is current at once (the response confirmed it). Not thread-safe:
// the owner serialises changes against its packet paths.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "crypto/secret_key.hpp"
#include "protocols/wireguard/constants.hpp"
#include "protocols/wireguard/replay.hpp"

namespace tunlab::wireguard {

struct Keypair {
    crypto::SecretKey send_key;
    crypto::SecretKey receive_key;
    uint32_t local_index = 0;   // what the peer puts in its messages' receiver field
    uint32_t remote_index = 0;  // what we put in ours
    uint64_t created_us = 0;
    bool is_initiator = false;
    uint64_t send_counter = 0;  // the next counter to send with
    ReplayFilter replay;

    // The counter for the next message, or nothing once REJECT_AFTER_MESSAGES is reached.
    std::optional<uint64_t> take_send_counter() noexcept {
        if (send_counter >= kRejectAfterMessages) {
            return std::nullopt;
        }
        return send_counter++;
    }
    uint64_t age(uint64_t now_us) const noexcept {
        return now_us > created_us ? now_us - created_us : 0;
    }
};

// The local indices of keypairs that were dropped, for the owner's index table.
struct RetiredIndices {
    std::array<uint32_t, 3> indices{};
    size_t count = 0;
    void add(const Keypair* keypair) {
        if (keypair != nullptr) {
            indices[count++] = keypair->local_index;
        }
    }
};

class Keypairs {
  public:
    // A keypair just derived (HandshakeState::derive_keypair()): see the rules above.
    RetiredIndices install(std::unique_ptr<Keypair> keypair);
    // After a transport message under `keypair` authenticated. True when that confirmed `next`
    // (it is now current, and the old `previous` is in `retired`): the handshake is complete
    // for the responder.
    bool received_with(const Keypair* keypair, RetiredIndices& retired);
    // Drops all three (keys wiped); e.g. 3 × REJECT_AFTER_TIME without a new handshake.
    RetiredIndices clear();

    Keypair* current() const { return current_.get(); }
    Keypair* previous() const { return previous_.get(); }
    Keypair* next() const { return next_.get(); }
    // The keypair a received message names by our local index, if it is one of ours.
    Keypair* find(uint32_t local_index) const;

  private:
    std::unique_ptr<Keypair> previous_;
    std::unique_ptr<Keypair> current_;
    std::unique_ptr<Keypair> next_;
};

}  // namespace tunlab::wireguard
