#include "protocols/wireguard/timers.hpp"

#include <algorithm>

#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {

uint64_t PeerTimers::jitter() {
    return random_.below(static_cast<uint32_t>(kRekeyTimeoutJitterMax));
}

bool PeerTimers::due(const Deadline& deadline, uint64_t now_us) {
    return deadline.has_value() && *deadline <= now_us;
}

void PeerTimers::set_persistent_keepalive(uint16_t interval_seconds, uint64_t now_us) {
    const bool was_off = persistent_interval_s_ == 0;
    persistent_interval_s_ = interval_seconds;
    if (interval_seconds == 0) {
        persistent_keepalive_.reset();
    } else if (was_off) {
        persistent_keepalive_ = now_us;
    }
}

// The building blocks, one per wireguard-go timers* function.

void PeerTimers::any_authenticated_sent() {
    send_keepalive_.reset();
}

void PeerTimers::any_authenticated_received() {
    new_handshake_.reset();
}

void PeerTimers::authenticated_traversal(uint64_t now_us) {
    if (persistent_interval_s_ > 0) {
        persistent_keepalive_ = now_us + persistent_interval_s_ * kSecond;
    }
}

void PeerTimers::session_derived(uint64_t now_us) {
    zero_key_material_ = now_us + 3 * kRejectAfterTime;
}

void PeerTimers::handshake_complete(uint64_t now_us) {
    retransmit_handshake_.reset();
    handshake_attempts_ = 0;
    sent_last_minute_handshake_ = false;
    last_handshake_us_ = now_us;
}

// The events.

void PeerTimers::initiation_sent(uint64_t now_us) {
    last_handshake_sent_us_ = now_us;
    authenticated_traversal(now_us);
    any_authenticated_sent();
    retransmit_handshake_ = now_us + kRekeyTimeout + jitter();
}

void PeerTimers::response_sent(uint64_t now_us) {
    last_handshake_sent_us_ = now_us;
    session_derived(now_us);
    authenticated_traversal(now_us);
    any_authenticated_sent();
}

void PeerTimers::transport_sent(uint64_t now_us, bool is_keepalive) {
    authenticated_traversal(now_us);
    any_authenticated_sent();
    if (!is_keepalive && !new_handshake_) {
        new_handshake_ = now_us + kKeepaliveTimeout + kRekeyTimeout + jitter();
    }
}

void PeerTimers::initiation_received(uint64_t now_us) {
    authenticated_traversal(now_us);
    any_authenticated_received();
}

void PeerTimers::response_received(uint64_t now_us) {
    authenticated_traversal(now_us);
    any_authenticated_received();
    session_derived(now_us);
    handshake_complete(now_us);
}

void PeerTimers::transport_received(uint64_t now_us, bool is_keepalive, bool confirmed_keypair) {
    if (confirmed_keypair) {
        handshake_complete(now_us);
    }
    authenticated_traversal(now_us);
    any_authenticated_received();
    if (!is_keepalive) {
        if (!send_keepalive_) {
            send_keepalive_ = now_us + kKeepaliveTimeout;
        } else {
            need_another_keepalive_ = true;
        }
    }
}

bool PeerTimers::want_initiation(uint64_t now_us, bool is_retry) {
    if (!is_retry) {
        handshake_attempts_ = 0;
    }
    if (last_handshake_sent_us_ && now_us - *last_handshake_sent_us_ < kRekeyTimeout) {
        return false;
    }
    // Counted as sent from here, as wireguard-go does, so that a failure to build the message
    // does not turn into a retry storm.
    last_handshake_sent_us_ = now_us;
    return true;
}

bool PeerTimers::usable_for_sending(const Keypair* current, uint64_t now_us) {
    return current != nullptr && current->send_counter < kRejectAfterMessages &&
           current->age(now_us) < kRejectAfterTime;
}

bool PeerTimers::needs_rekey_after_send(const Keypair* current, uint64_t now_us) {
    return current != nullptr &&
           (current->send_counter > kRekeyAfterMessages ||
            (current->is_initiator && current->age(now_us) > kRekeyAfterTime));
}

bool PeerTimers::needs_rekey_after_receive(const Keypair* current, uint64_t now_us) {
    if (sent_last_minute_handshake_ || current == nullptr || !current->is_initiator ||
        current->age(now_us) <= kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout) {
        return false;
    }
    sent_last_minute_handshake_ = true;
    return true;
}

TimerActions PeerTimers::tick(uint64_t now_us) {
    TimerActions actions;
    if (due(retransmit_handshake_, now_us)) {
        retransmit_handshake_.reset();
        if (handshake_attempts_ > kMaxTimerHandshakes) {
            actions.gave_up = true;
            send_keepalive_.reset();
            if (!zero_key_material_) {
                zero_key_material_ = now_us + 3 * kRejectAfterTime;
            }
        } else {
            ++handshake_attempts_;
            actions.send_initiation |= want_initiation(now_us, true);
        }
    }
    if (due(send_keepalive_, now_us)) {
        send_keepalive_.reset();
        actions.send_keepalive = true;
        if (need_another_keepalive_) {
            need_another_keepalive_ = false;
            send_keepalive_ = now_us + kKeepaliveTimeout;
        }
    }
    if (due(new_handshake_, now_us)) {
        new_handshake_.reset();
        actions.send_initiation |= want_initiation(now_us, false);
    }
    if (due(zero_key_material_, now_us)) {
        zero_key_material_.reset();
        actions.zero_keys = true;
    }
    if (due(persistent_keepalive_, now_us)) {
        persistent_keepalive_.reset();
        if (persistent_interval_s_ > 0) {
            actions.send_keepalive = true;
        }
    }
    return actions;
}

std::optional<uint64_t> PeerTimers::next_deadline() const {
    std::optional<uint64_t> earliest;
    for (const auto& deadline : {retransmit_handshake_, send_keepalive_, new_handshake_,
                                 zero_key_material_, persistent_keepalive_}) {
        if (deadline && (!earliest || *deadline < *earliest)) {
            earliest = deadline;
        }
    }
    return earliest;
}

void PeerTimers::stop() {
    retransmit_handshake_.reset();
    send_keepalive_.reset();
    new_handshake_.reset();
    zero_key_material_.reset();
    persistent_keepalive_.reset();
    need_another_keepalive_ = false;
}

}  // namespace tunlab::wireguard
