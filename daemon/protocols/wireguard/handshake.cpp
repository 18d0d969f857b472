#include "protocols/wireguard/handshake.hpp"

#include <algorithm>
#include <utility>

#include "crypto/aead.hpp"
#include "crypto/error.hpp"
#include "crypto/kdf.hpp"
#include "protocols/wireguard/constants.hpp"
#include "protocols/wireguard/noise.hpp"

namespace tunlab::wireguard {
namespace {

using crypto::SecretKey;

// Handshake fields are sealed with a key used once, so the counter is always 0.
void seal_field(const SecretKey& key, crypto::Bytes plaintext, std::span<uint8_t> out,
                const crypto::Hash& hash) {
    if (!crypto::seal(key.bytes(), 0, plaintext, out, hash)) {
        throw crypto::CryptoError("ChaCha20-Poly1305 seal failed");
    }
}

bool open_field(const SecretKey& key, crypto::Bytes sealed, std::span<uint8_t> out,
                const crypto::Hash& hash) {
    return crypto::open(key.bytes(), 0, sealed, out, hash);
}

SecretKey key_from(const crypto::Hash& value) {
    return SecretKey(std::span<const uint8_t, crypto::kKeySize>(value));
}

}  // namespace

HandshakeState::HandshakeState(const LocalIdentity& local, const crypto::PublicKey& remote_static)
    : remote_static_(remote_static), cookies_(remote_static) {
    set_local_identity(local);
}

void HandshakeState::set_preshared_key(std::span<const uint8_t, crypto::kKeySize> key) {
    preshared_key_.assign(key);
}

void HandshakeState::set_local_identity(const LocalIdentity& local) {
    static_static_valid_ = crypto::x25519(static_static_, local.private_key(), remote_static_);
    clear();
}

void HandshakeState::clear() {
    chaining_key_.wipe();
    local_ephemeral_.wipe();
    crypto::secure_wipe(hash_);
    crypto::secure_wipe(remote_ephemeral_);
    local_index_ = 0;
    stage_ = HandshakeStage::Zeroed;
}

HandshakeError HandshakeState::create_initiation(const LocalIdentity& local, uint32_t local_index,
                                                 const Tai64n& timestamp, uint64_t now_us,
                                                 crypto::RandomSource& random,
                                                 std::span<uint8_t, kInitiationSize> out) {
    clear();
    if (!static_static_valid_) {
        return HandshakeError::InvalidPublicKey;
    }
    hash_ = noise::initial_hash();
    chaining_key_.assign(noise::initial_chaining_key());
    noise::mix_hash(hash_, remote_static_);

    InitiationMessage message;
    message.sender = local_index;
    local_ephemeral_ = crypto::generate_private_key(random);
    message.ephemeral = crypto::public_key_of(local_ephemeral_);
    noise::mix_key(chaining_key_, message.ephemeral);
    noise::mix_hash(hash_, message.ephemeral);

    SecretKey shared;
    if (!crypto::x25519(shared, local_ephemeral_, remote_static_)) {
        clear();
        return HandshakeError::InvalidPublicKey;
    }
    SecretKey key;
    crypto::kdf2(chaining_key_.bytes(), key.bytes(), chaining_key_.bytes(), shared.bytes());
    seal_field(key, local.public_key(), message.encrypted_static, hash_);
    noise::mix_hash(hash_, message.encrypted_static);

    crypto::kdf2(chaining_key_.bytes(), key.bytes(), chaining_key_.bytes(), static_static_.bytes());
    seal_field(key, timestamp.bytes, message.encrypted_timestamp, hash_);
    noise::mix_hash(hash_, message.encrypted_timestamp);

    local_index_ = local_index;
    stage_ = HandshakeStage::InitiationCreated;
    serialize(message, out);
    cookies_.add_macs(out, now_us);
    return HandshakeError::Ok;
}

// A friend of HandshakeState: the responder's half of the first message, which has to look
// into the peer it finds.
struct InitiationConsumer {
    static ConsumedInitiation consume(const LocalIdentity& local, std::span<const uint8_t> bytes,
                                      const PeerLookup& find_peer, uint64_t now_us) {
        const auto message = parse_initiation(bytes);
        if (!message) {
            return {HandshakeError::BadMessage, nullptr};
        }
        if (!mac1_valid(bytes, local.mac1_key())) {
            return {HandshakeError::BadMac1, nullptr};
        }
        crypto::Hash hash = noise::initial_hash();
        noise::mix_hash(hash, local.public_key());
        noise::mix_hash(hash, message->ephemeral);
        SecretKey chaining_key = key_from(noise::initial_chaining_key());
        noise::mix_key(chaining_key, message->ephemeral);

        SecretKey shared;
        if (!crypto::x25519(shared, local.private_key(), message->ephemeral)) {
            return {HandshakeError::InvalidPublicKey, nullptr};
        }
        SecretKey key;
        crypto::kdf2(chaining_key.bytes(), key.bytes(), chaining_key.bytes(), shared.bytes());
        crypto::PublicKey peer_static;
        if (!open_field(key, message->encrypted_static, peer_static, hash)) {
            return {HandshakeError::DecryptFailed, nullptr};
        }
        noise::mix_hash(hash, message->encrypted_static);

        HandshakeState* peer = find_peer(peer_static);
        if (peer == nullptr) {
            return {HandshakeError::UnknownPeer, nullptr};
        }
        if (!peer->static_static_valid_) {
            return {HandshakeError::InvalidPublicKey, peer};
        }
        crypto::kdf2(chaining_key.bytes(), key.bytes(), chaining_key.bytes(),
                     peer->static_static_.bytes());
        Tai64n timestamp;
        if (!open_field(key, message->encrypted_timestamp, timestamp.bytes, hash)) {
            return {HandshakeError::DecryptFailed, peer};
        }
        noise::mix_hash(hash, message->encrypted_timestamp);

        if (timestamp <= peer->last_timestamp_) {
            return {HandshakeError::StaleTimestamp, peer};
        }
        if (peer->has_consumed_initiation_ &&
            now_us - peer->last_initiation_consumed_us_ < kInitiationMinInterval) {
            return {HandshakeError::Flood, peer};
        }

        // Accepted: this replaces whatever handshake the peer had pending (both sides may have
        // initiated at once; the responder role wins here, the other initiation times out).
        peer->clear();
        peer->hash_ = hash;
        peer->chaining_key_ = std::move(chaining_key);
        peer->remote_ephemeral_ = message->ephemeral;
        peer->remote_index_ = message->sender;
        peer->last_timestamp_ = timestamp;
        peer->last_initiation_consumed_us_ = now_us;
        peer->has_consumed_initiation_ = true;
        peer->stage_ = HandshakeStage::InitiationConsumed;
        crypto::secure_wipe(hash);
        return {HandshakeError::Ok, peer};
    }
};

ConsumedInitiation consume_initiation(const LocalIdentity& local, std::span<const uint8_t> message,
                                      const PeerLookup& find_peer, uint64_t now_us) {
    return InitiationConsumer::consume(local, message, find_peer, now_us);
}

HandshakeError HandshakeState::create_response(uint32_t local_index, uint64_t now_us,
                                               crypto::RandomSource& random,
                                               std::span<uint8_t, kResponseSize> out) {
    if (stage_ != HandshakeStage::InitiationConsumed) {
        return HandshakeError::WrongState;
    }
    ResponseMessage message;
    message.sender = local_index;
    message.receiver = remote_index_;
    local_ephemeral_ = crypto::generate_private_key(random);
    message.ephemeral = crypto::public_key_of(local_ephemeral_);
    noise::mix_hash(hash_, message.ephemeral);
    noise::mix_key(chaining_key_, message.ephemeral);

    SecretKey shared;
    if (!crypto::x25519(shared, local_ephemeral_, remote_ephemeral_)) {
        clear();
        return HandshakeError::InvalidPublicKey;
    }
    noise::mix_key(chaining_key_, shared.bytes());
    if (!crypto::x25519(shared, local_ephemeral_, remote_static_)) {
        clear();
        return HandshakeError::InvalidPublicKey;
    }
    noise::mix_key(chaining_key_, shared.bytes());

    crypto::Hash tau;
    SecretKey key;
    crypto::kdf3(chaining_key_.bytes(), tau, key.bytes(), chaining_key_.bytes(),
                 preshared_key_.bytes());
    noise::mix_hash(hash_, tau);
    crypto::secure_wipe(tau);
    seal_field(key, {}, message.encrypted_empty, hash_);
    noise::mix_hash(hash_, message.encrypted_empty);

    local_index_ = local_index;
    stage_ = HandshakeStage::ResponseCreated;
    serialize(message, out);
    cookies_.add_macs(out, now_us);
    return HandshakeError::Ok;
}

HandshakeError HandshakeState::consume_response(const LocalIdentity& local,
                                                std::span<const uint8_t> bytes) {
    const auto message = parse_response(bytes);
    if (!message) {
        return HandshakeError::BadMessage;
    }
    if (!mac1_valid(bytes, local.mac1_key())) {
        return HandshakeError::BadMac1;
    }
    if (stage_ != HandshakeStage::InitiationCreated) {
        return HandshakeError::WrongState;
    }
    if (message->receiver != local_index_) {
        return HandshakeError::UnknownIndex;
    }
    // Work on copies: a forged response must leave the pending initiation intact.
    crypto::Hash hash = hash_;
    SecretKey chaining_key = chaining_key_.clone();
    noise::mix_hash(hash, message->ephemeral);
    noise::mix_key(chaining_key, message->ephemeral);

    SecretKey shared;
    if (!crypto::x25519(shared, local_ephemeral_, message->ephemeral)) {
        return HandshakeError::InvalidPublicKey;
    }
    noise::mix_key(chaining_key, shared.bytes());
    if (!crypto::x25519(shared, local.private_key(), message->ephemeral)) {
        return HandshakeError::InvalidPublicKey;
    }
    noise::mix_key(chaining_key, shared.bytes());

    crypto::Hash tau;
    SecretKey key;
    crypto::kdf3(chaining_key.bytes(), tau, key.bytes(), chaining_key.bytes(),
                 preshared_key_.bytes());
    noise::mix_hash(hash, tau);
    crypto::secure_wipe(tau);
    if (!open_field(key, message->encrypted_empty, {}, hash)) {
        return HandshakeError::DecryptFailed;
    }
    noise::mix_hash(hash, message->encrypted_empty);

    hash_ = hash;
    chaining_key_ = std::move(chaining_key);
    remote_index_ = message->sender;
    stage_ = HandshakeStage::ResponseConsumed;
    crypto::secure_wipe(hash);
    return HandshakeError::Ok;
}

HandshakeError HandshakeState::consume_cookie_reply(std::span<const uint8_t> message,
                                                    uint64_t now_us) {
    return cookies_.consume_reply(message, now_us);
}

std::unique_ptr<Keypair> HandshakeState::derive_keypair(uint64_t now_us) {
    const bool initiator = stage_ == HandshakeStage::ResponseConsumed;
    if (!initiator && stage_ != HandshakeStage::ResponseCreated) {
        return nullptr;
    }
    auto keypair = std::make_unique<Keypair>();
    // (T_send, T_receive) for the initiator, swapped for the responder.
    crypto::SecretKey& first = initiator ? keypair->send_key : keypair->receive_key;
    crypto::SecretKey& second = initiator ? keypair->receive_key : keypair->send_key;
    crypto::kdf2(first.bytes(), second.bytes(), chaining_key_.bytes(), {});
    keypair->local_index = local_index_;
    keypair->remote_index = remote_index_;
    keypair->created_us = now_us;
    keypair->is_initiator = initiator;
    clear();  // the index now belongs to the keypair
    return keypair;
}

}  // namespace tunlab::wireguard
