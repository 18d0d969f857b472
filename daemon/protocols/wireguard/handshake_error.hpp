#pragma once

// Why a handshake message was not accepted or could not be made. Each is a separate drop
// reason for the data plane's counters; none carries key material.

#include <cstdint>
#include <string_view>

namespace tunlab::wireguard {

enum class HandshakeError : uint8_t {
    Ok,
    BadMessage,        // wrong type, reserved bytes or size
    BadMac1,           // mac1 does not verify: not meant for our public key (or forged)
    InvalidPublicKey,  // a Diffie-Hellman result was all zeros (a low-order public key)
    DecryptFailed,     // an encrypted field (static, timestamp, empty, cookie) did not verify
    UnknownPeer,       // an initiation from a static key that is not one of our peers
    StaleTimestamp,    // an initiation not newer than the last one accepted (a replay)
    Flood,             // an initiation sooner than 1/50 s after the last one from the peer
    WrongState,        // no initiation pending for a response, no response due, no mac1 sent
    UnknownIndex,      // a response whose receiver index is not our pending initiation's
};

constexpr std::string_view handshake_error_name(HandshakeError error) {
    switch (error) {
        case HandshakeError::Ok:
            return "ok";
        case HandshakeError::BadMessage:
            return "bad_message";
        case HandshakeError::BadMac1:
            return "bad_mac1";
        case HandshakeError::InvalidPublicKey:
            return "invalid_public_key";
        case HandshakeError::DecryptFailed:
            return "decrypt_failed";
        case HandshakeError::UnknownPeer:
            return "unknown_peer";
        case HandshakeError::StaleTimestamp:
            return "stale_timestamp";
        case HandshakeError::Flood:
            return "flood";
        case HandshakeError::WrongState:
            return "wrong_state";
        case HandshakeError::UnknownIndex:
            return "unknown_index";
    }
    return "unknown";
}

}  // namespace tunlab::wireguard
