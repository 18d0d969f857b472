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
    // Packets from the device.
    NoPeer,      // no peer's allowed IPs contain the destination
    NoEndpoint,  // the peer has no known endpoint yet
    SendError,   // sendto() failed
    BadOffload,  // the device's offload header (virtio_net_hdr) could not be honoured
    FloodLimit,  // TAP: a broadcast or unknown-destination frame over the flooding rate
    Count,
};

constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::Count);

constexpr std::array<std::string_view, kDropReasonCount> kDropReasonNames = {
    "empty",   "truncated",   "bad_version",  "bad_header",  "bad_length",
    "too_big", "bad_source",  "unknown_peer", "peer_limit",  "device_error",
    "no_peer", "no_endpoint", "send_error",   "bad_offload", "flood_limit",
};

constexpr std::string_view drop_reason_name(DropReason reason) {
    return kDropReasonNames[static_cast<size_t>(reason)];
}

}  // namespace tunlab
