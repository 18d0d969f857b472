#pragma once

// The four WireGuard messages on the wire (whitepaper §5.4, kernel messages.h). Byte 0 is the
// type, bytes 1-3 are zero, integers are little-endian:
//
//   initiation   (1, 148)  sender 4@4 · ephemeral 32@8 · static 48@40 · timestamp 28@88
//                          · mac1 16@116 · mac2 16@132
//   response     (2, 92)   sender 4@4 · receiver 4@8 · ephemeral 32@12 · empty 16@44
//                          · mac1 16@60 · mac2 16@76
//   cookie reply (3, 64)   receiver 4@4 · nonce 24@8 · cookie 32@32
//   transport    (4, 32+)  receiver 4@4 · counter 8@8 · ciphertext (padded to 16) and tag @16
//
// message_type() is the per-packet classifier (no allocation, no exceptions); the parse
// functions copy a handshake message's fields out of a datagram already classified (or refuse
// it), and serialize() writes them back.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace tunlab::wireguard {

enum class MessageType : uint8_t {
    Invalid = 0,  // unknown type, reserved bytes not zero, or the wrong size for its type
    Initiation = 1,
    Response = 2,
    CookieReply = 3,
    Transport = 4,
};

inline constexpr size_t kInitiationSize = 148;
inline constexpr size_t kResponseSize = 92;
inline constexpr size_t kCookieReplySize = 64;
inline constexpr size_t kTransportHeaderSize = 16;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kTransportMinSize = kTransportHeaderSize + kTagSize;  // a keepalive
inline constexpr size_t kPaddingMultiple = 16;

// Offsets that code outside this file needs: the MACs sit at the end of the two handshake
// messages, so a message's MACs start kMacsSize before its end.
inline constexpr size_t kMacSize = 16;
inline constexpr size_t kMacsSize = 2 * kMacSize;
inline constexpr size_t kTransportCounterOffset = 8;

using KeyField = std::array<uint8_t, 32>;
using MacField = std::array<uint8_t, kMacSize>;

struct InitiationMessage {
    uint32_t sender = 0;
    KeyField ephemeral{};
    std::array<uint8_t, 32 + kTagSize> encrypted_static{};
    std::array<uint8_t, 12 + kTagSize> encrypted_timestamp{};
    MacField mac1{};
    MacField mac2{};
};

struct ResponseMessage {
    uint32_t sender = 0;
    uint32_t receiver = 0;
    KeyField ephemeral{};
    std::array<uint8_t, kTagSize> encrypted_empty{};
    MacField mac1{};
    MacField mac2{};
};

struct CookieReplyMessage {
    uint32_t receiver = 0;
    std::array<uint8_t, 24> nonce{};
    std::array<uint8_t, kMacSize + kTagSize> encrypted_cookie{};
};

struct TransportHeader {
    uint32_t receiver = 0;
    uint64_t counter = 0;
};

MessageType message_type(std::span<const uint8_t> datagram) noexcept;

// The receiver index of a response, cookie reply or transport message (the index the receiving
// side chose), which is how a datagram finds its peer; nothing for other messages.
std::optional<uint32_t> receiver_index(std::span<const uint8_t> datagram) noexcept;

std::optional<InitiationMessage> parse_initiation(std::span<const uint8_t> datagram) noexcept;
std::optional<ResponseMessage> parse_response(std::span<const uint8_t> datagram) noexcept;
std::optional<CookieReplyMessage> parse_cookie_reply(std::span<const uint8_t> datagram) noexcept;
std::optional<TransportHeader> parse_transport_header(std::span<const uint8_t> datagram) noexcept;

void serialize(const InitiationMessage& message, std::span<uint8_t, kInitiationSize> out) noexcept;
void serialize(const ResponseMessage& message, std::span<uint8_t, kResponseSize> out) noexcept;
void serialize(const CookieReplyMessage& message,
               std::span<uint8_t, kCookieReplySize> out) noexcept;
void write_transport_header(const TransportHeader& header,
                            std::span<uint8_t, kTransportHeaderSize> out) noexcept;

}  // namespace tunlab::wireguard
