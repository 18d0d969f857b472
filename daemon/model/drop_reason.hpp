#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace tunlab {

// Why a packet was not delivered. The names are part of the API: they appear as
// `drop_<name>` counter keys.
enum class DropReason : size_t {
    // Datagrams from the network.
    Empty,        // zero-length datagram from an unknown endpoint
    Truncated,    // shorter than the header its first byte announces
    BadVersion,   // IP version is neither 4 nor 6 (TUN mode)
    BadHeader,    // IPv4 header length field below 5 words or past the datagram
    BadLength,    // the IP total/payload length disagrees with the datagram length
    TooBig,       // larger than the tunnel MTU allows
    BadSource,    // inner source address not in the sending peer's allowed IPs
    UnknownPeer,  // from an unknown endpoint and the tunnel does not learn peers
    PeerLimit,    // from an unknown endpoint and the learned-peer cap is reached
    DeviceError,  // the write into the TUN/TAP device failed
    // Datagrams from the network, protocol wireguard.
    BadMessage,      // not a WireGuard message: unknown type, reserved bytes set, wrong size
    BadMac,          // a handshake message whose mac1 is wrong (not for us, or forged)
    UnknownIndex,    // names a receiver index that is none of ours (any more)
    DecryptFailed,   // did not authenticate: forged, corrupted, or under another key
    Replay,          // a transport message seen before, or older than the replay window
    StaleTimestamp,  // an initiation not newer than the last one from that peer
    RateLimited,     // more than 50 initiations a second from one peer
    UnderLoad,       // an initiation without a cookie while under load: a cookie reply went back
    NoSession,       // a transport message under a keypair that expired
    // Packets from the device.
    NoPeer,      // no peer's allowed IPs contain the destination
    NoEndpoint,  // the peer has no known endpoint yet
    SendError,   // sendto() failed
    BadOffload,  // the device's offload header (virtio_net_hdr) could not be honoured
    FloodLimit,  // TAP: a broadcast or unknown-destination frame over the flooding rate
    // Packets from the device, protocol wireguard.
    NoSessionOut,  // for a peer without a session, when the packets held for it overflow or
                   // its handshake attempts gave up
    Count,
};

constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::Count);

constexpr std::array<std::string_view, kDropReasonCount> kDropReasonNames = {
    // in, as DropReason lists them
    "empty",
    "truncated",
    "bad_version",
    "bad_header",
    "bad_length",
    "too_big",
    "bad_source",
    "unknown_peer",
    "peer_limit",
    "device_error",
    "bad_message",
    "bad_mac",
    "unknown_index",
    "decrypt_failed",
    "replay",
    "stale_timestamp",
    "rate_limited",
    "under_load",
    "no_session",
    // out
    "no_peer",
    "no_endpoint",
    "send_error",
    "bad_offload",
    "flood_limit",
    "no_session_out",
};

static_assert(!kDropReasonNames.back().empty(), "a drop reason without a name");

constexpr std::string_view drop_reason_name(DropReason reason) {
    return kDropReasonNames[static_cast<size_t>(reason)];
}

}  // namespace tunlab
