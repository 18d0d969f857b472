#pragma once

// Transport data messages (whitepaper §5.4.6): the per-packet path, in place on the caller's
// buffers, with no allocation and no exceptions.
//
// Sending: the caller reads the inner packet into a buffer at offset kTransportHeaderSize,
// leaving room after it for padding and the tag (kTransportOverhead in all, at most 15 + 32
// bytes beyond the packet); seal_transport() writes the header, zero-pads the packet to a
// multiple of 16 (never past the MTU), encrypts it in place and appends the tag. The result is
// the datagram, from the buffer's start.
//
// Receiving: open_transport() checks the keypair is not expired, decrypts in place, then checks
// the counter against the replay window (only after the message authenticated, so a forged
// counter cannot move the window). The plaintext is the padded packet: its IP header says how
// long it really is. An empty plaintext is a keepalive.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "protocols/wireguard/keypairs.hpp"
#include "protocols/wireguard/messages.hpp"

namespace tunlab::wireguard {

// Header before the packet, and the most that padding and tag add after it.
inline constexpr size_t kTransportOverhead = kTransportHeaderSize + kTagSize;
inline constexpr size_t kMaxPadding = kPaddingMultiple - 1;

enum class TransportStatus : uint8_t {
    Ok,
    Malformed,         // not a transport message, or for another keypair (receiver index)
    Expired,           // the keypair is older than REJECT_AFTER_TIME
    CounterExhausted,  // REJECT_AFTER_MESSAGES reached (sending) or a counter beyond it
    DecryptFailed,     // forged, corrupted, or another key
    Replayed,          // seen before, or older than the replay window
    NoRoom,            // the buffer cannot hold header, padding and tag
    CryptoFailure,     // libcrypto itself failed
};

std::string_view transport_status_name(TransportStatus status);

// Bytes of zero padding for a packet of `length` bytes in a tunnel of `mtu` (0: no MTU):
// up to the next multiple of 16, but never past the MTU.
size_t padding_for(size_t length, size_t mtu) noexcept;

struct SealedTransport {
    TransportStatus status = TransportStatus::Ok;
    size_t size = 0;  // the datagram: buffer[0, size)
};

// `buffer` holds the packet at [16, 16 + packet_length).
SealedTransport seal_transport(Keypair& keypair, std::span<uint8_t> buffer, size_t packet_length,
                               size_t mtu, uint64_t now_us) noexcept;

struct OpenedTransport {
    TransportStatus status = TransportStatus::Ok;
    std::span<uint8_t> plaintext;  // inside the datagram, on Ok
    uint64_t counter = 0;
};

// `datagram` is a whole transport message addressed to `keypair` (found by its receiver index).
OpenedTransport open_transport(Keypair& keypair, std::span<uint8_t> datagram,
                               uint64_t now_us) noexcept;

}  // namespace tunlab::wireguard
