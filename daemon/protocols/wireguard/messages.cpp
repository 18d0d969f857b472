#include "protocols/wireguard/messages.hpp"

#include <algorithm>
#include <cstring>

namespace tunlab::wireguard {
namespace {

uint32_t load_u32(const uint8_t* bytes) {
    return uint32_t{bytes[0]} | (uint32_t{bytes[1]} << 8) | (uint32_t{bytes[2]} << 16) |
           (uint32_t{bytes[3]} << 24);
}

uint64_t load_u64(const uint8_t* bytes) {
    return uint64_t{load_u32(bytes)} | (uint64_t{load_u32(bytes + 4)} << 32);
}

void store_u32(uint8_t* bytes, uint32_t value) {
    for (size_t i = 0; i < 4; ++i) {
        bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    }
}

void store_u64(uint8_t* bytes, uint64_t value) {
    store_u32(bytes, static_cast<uint32_t>(value));
    store_u32(bytes + 4, static_cast<uint32_t>(value >> 32));
}

template <size_t N>
void copy_out(const uint8_t* from, std::array<uint8_t, N>& to) {
    std::memcpy(to.data(), from, N);
}

template <size_t N>
void copy_in(const std::array<uint8_t, N>& from, uint8_t* to) {
    std::memcpy(to, from.data(), N);
}

void write_type(uint8_t* bytes, MessageType type) {
    store_u32(bytes, static_cast<uint32_t>(type));  // the type and three zero bytes
}

}  // namespace

MessageType message_type(std::span<const uint8_t> datagram) noexcept {
    if (datagram.size() < 4 || datagram[1] != 0 || datagram[2] != 0 || datagram[3] != 0) {
        return MessageType::Invalid;
    }
    const size_t size = datagram.size();
    switch (datagram[0]) {
        case 1:
            return size == kInitiationSize ? MessageType::Initiation : MessageType::Invalid;
        case 2:
            return size == kResponseSize ? MessageType::Response : MessageType::Invalid;
        case 3:
            return size == kCookieReplySize ? MessageType::CookieReply : MessageType::Invalid;
        case 4:
            // Padding makes every plaintext a multiple of 16 except a final segment cut at the
            // MTU; senders pad, but a receiver accepts any length (as wireguard-go does).
            return size >= kTransportMinSize ? MessageType::Transport : MessageType::Invalid;
        default:
            return MessageType::Invalid;
    }
}

std::optional<uint32_t> receiver_index(std::span<const uint8_t> datagram) noexcept {
    switch (message_type(datagram)) {
        case MessageType::Response:
            return load_u32(datagram.data() + 8);
        case MessageType::CookieReply:
        case MessageType::Transport:
            return load_u32(datagram.data() + 4);
        default:
            return std::nullopt;
    }
}

std::optional<InitiationMessage> parse_initiation(std::span<const uint8_t> datagram) noexcept {
    if (message_type(datagram) != MessageType::Initiation) {
        return std::nullopt;
    }
    const uint8_t* bytes = datagram.data();
    InitiationMessage message;
    message.sender = load_u32(bytes + 4);
    copy_out(bytes + 8, message.ephemeral);
    copy_out(bytes + 40, message.encrypted_static);
    copy_out(bytes + 88, message.encrypted_timestamp);
    copy_out(bytes + 116, message.mac1);
    copy_out(bytes + 132, message.mac2);
    return message;
}

std::optional<ResponseMessage> parse_response(std::span<const uint8_t> datagram) noexcept {
    if (message_type(datagram) != MessageType::Response) {
        return std::nullopt;
    }
    const uint8_t* bytes = datagram.data();
    ResponseMessage message;
    message.sender = load_u32(bytes + 4);
    message.receiver = load_u32(bytes + 8);
    copy_out(bytes + 12, message.ephemeral);
    copy_out(bytes + 44, message.encrypted_empty);
    copy_out(bytes + 60, message.mac1);
    copy_out(bytes + 76, message.mac2);
    return message;
}

std::optional<CookieReplyMessage> parse_cookie_reply(std::span<const uint8_t> datagram) noexcept {
    if (message_type(datagram) != MessageType::CookieReply) {
        return std::nullopt;
    }
    const uint8_t* bytes = datagram.data();
    CookieReplyMessage message;
    message.receiver = load_u32(bytes + 4);
    copy_out(bytes + 8, message.nonce);
    copy_out(bytes + 32, message.encrypted_cookie);
    return message;
}

std::optional<TransportHeader> parse_transport_header(std::span<const uint8_t> datagram) noexcept {
    if (message_type(datagram) != MessageType::Transport) {
        return std::nullopt;
    }
    return TransportHeader{load_u32(datagram.data() + 4), load_u64(datagram.data() + 8)};
}

void serialize(const InitiationMessage& message, std::span<uint8_t, kInitiationSize> out) noexcept {
    uint8_t* bytes = out.data();
    write_type(bytes, MessageType::Initiation);
    store_u32(bytes + 4, message.sender);
    copy_in(message.ephemeral, bytes + 8);
    copy_in(message.encrypted_static, bytes + 40);
    copy_in(message.encrypted_timestamp, bytes + 88);
    copy_in(message.mac1, bytes + 116);
    copy_in(message.mac2, bytes + 132);
}

void serialize(const ResponseMessage& message, std::span<uint8_t, kResponseSize> out) noexcept {
    uint8_t* bytes = out.data();
    write_type(bytes, MessageType::Response);
    store_u32(bytes + 4, message.sender);
    store_u32(bytes + 8, message.receiver);
    copy_in(message.ephemeral, bytes + 12);
    copy_in(message.encrypted_empty, bytes + 44);
    copy_in(message.mac1, bytes + 60);
    copy_in(message.mac2, bytes + 76);
}

void serialize(const CookieReplyMessage& message,
               std::span<uint8_t, kCookieReplySize> out) noexcept {
    uint8_t* bytes = out.data();
    write_type(bytes, MessageType::CookieReply);
    store_u32(bytes + 4, message.receiver);
    copy_in(message.nonce, bytes + 8);
    copy_in(message.encrypted_cookie, bytes + 32);
}

void write_transport_header(const TransportHeader& header,
                            std::span<uint8_t, kTransportHeaderSize> out) noexcept {
    write_type(out.data(), MessageType::Transport);
    store_u32(out.data() + 4, header.receiver);
    store_u64(out.data() + 8, header.counter);
}

}  // namespace tunlab::wireguard
