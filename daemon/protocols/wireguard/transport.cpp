#include "protocols/wireguard/transport.hpp"

#include <algorithm>

#include "crypto/aead.hpp"
#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {

std::string_view transport_status_name(TransportStatus status) {
    switch (status) {
        case TransportStatus::Ok:
            return "ok";
        case TransportStatus::Malformed:
            return "malformed";
        case TransportStatus::Expired:
            return "expired";
        case TransportStatus::CounterExhausted:
            return "counter_exhausted";
        case TransportStatus::DecryptFailed:
            return "decrypt_failed";
        case TransportStatus::Replayed:
            return "replayed";
        case TransportStatus::NoRoom:
            return "no_room";
        case TransportStatus::CryptoFailure:
            return "crypto_failure";
    }
    return "unknown";
}

size_t padding_for(size_t length, size_t mtu) noexcept {
    size_t last_unit = length;
    if (mtu != 0 && last_unit > mtu) {
        last_unit %= mtu;  // what a GSO batch's last segment would be
    }
    size_t padded = (last_unit + kPaddingMultiple - 1) & ~(kPaddingMultiple - 1);
    if (mtu != 0 && padded > mtu) {
        padded = mtu;
    }
    return padded - last_unit;
}

SealedTransport seal_transport(Keypair& keypair, std::span<uint8_t> buffer, size_t packet_length,
                               size_t mtu, uint64_t now_us) noexcept {
    const size_t padded = packet_length + padding_for(packet_length, mtu);
    if (buffer.size() < kTransportHeaderSize + padded + kTagSize || packet_length > buffer.size()) {
        return {TransportStatus::NoRoom, 0};
    }
    if (keypair.age(now_us) >= kRejectAfterTime) {
        return {TransportStatus::Expired, 0};
    }
    const auto counter = keypair.take_send_counter();
    if (!counter) {
        return {TransportStatus::CounterExhausted, 0};
    }
    write_transport_header({keypair.remote_index, *counter}, buffer.first<kTransportHeaderSize>());
    const auto plaintext = buffer.subspan(kTransportHeaderSize, padded);
    std::fill(plaintext.begin() + static_cast<std::ptrdiff_t>(packet_length), plaintext.end(), 0);
    const auto tag = buffer.subspan(kTransportHeaderSize + padded).first<kTagSize>();
    if (!crypto::seal_in_place(keypair.send_key.bytes(), *counter, plaintext, tag)) {
        return {TransportStatus::CryptoFailure, 0};
    }
    return {TransportStatus::Ok, kTransportHeaderSize + padded + kTagSize};
}

OpenedTransport open_transport(Keypair& keypair, std::span<uint8_t> datagram,
                               uint64_t now_us) noexcept {
    const auto header = parse_transport_header(datagram);
    if (!header || header->receiver != keypair.local_index) {
        return {TransportStatus::Malformed, {}, 0};
    }
    if (keypair.age(now_us) >= kRejectAfterTime) {
        return {TransportStatus::Expired, {}, header->counter};
    }
    if (header->counter >= kRejectAfterMessages) {
        return {TransportStatus::CounterExhausted, {}, header->counter};
    }
    const auto sealed = datagram.subspan(kTransportHeaderSize);
    const auto length = crypto::open_in_place(keypair.receive_key.bytes(), header->counter, sealed);
    if (!length) {
        return {TransportStatus::DecryptFailed, {}, header->counter};
    }
    if (!keypair.replay.accept(header->counter)) {
        return {TransportStatus::Replayed, {}, header->counter};
    }
    return {TransportStatus::Ok, sealed.first(*length), header->counter};
}

}  // namespace tunlab::wireguard
