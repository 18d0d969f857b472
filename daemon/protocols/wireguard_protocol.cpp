#include "protocols/wireguard_protocol.hpp"

#include <algorithm>
#include <array>
#include <chrono>

#include "protocols/wireguard/messages.hpp"
#include "protocols/wireguard/tai64n.hpp"
#include "protocols/wireguard/transport.hpp"
#include "util/log.hpp"

namespace tunlab {

using namespace wireguard;

namespace {

constexpr uint64_t kLoadWindowUs = 100'000;
constexpr uint64_t kUnderLoadForUs = 1'000'000;

// The IP packet inside a padded plaintext: as long as its header says.
std::span<const uint8_t> unpadded(std::span<const uint8_t> plaintext) {
    if (plaintext.empty()) {
        return plaintext;
    }
    size_t length = plaintext.size();
    const unsigned version = plaintext[0] >> 4;
    if (version == 4 && plaintext.size() >= 4) {
        length = size_t{plaintext[2]} << 8 | plaintext[3];
    } else if (version == 6 && plaintext.size() >= 6) {
        length = 40 + (size_t{plaintext[4]} << 8 | plaintext[5]);
    }
    // A length that does not fit is the inner packet check's to refuse (BadLength).
    return length <= plaintext.size() ? plaintext.first(length) : plaintext;
}

DropReason drop_for(HandshakeError error) {
    switch (error) {
        case HandshakeError::BadMac1:
            return DropReason::BadMac;
        case HandshakeError::UnknownPeer:
            return DropReason::UnknownPeer;
        case HandshakeError::StaleTimestamp:
            return DropReason::StaleTimestamp;
        case HandshakeError::Flood:
            return DropReason::RateLimited;
        case HandshakeError::UnknownIndex:
        case HandshakeError::WrongState:
            return DropReason::UnknownIndex;
        case HandshakeError::DecryptFailed:
        case HandshakeError::InvalidPublicKey:
            return DropReason::DecryptFailed;
        case HandshakeError::Ok:
        case HandshakeError::BadMessage:
            break;
    }
    return DropReason::BadMessage;
}

DropReason drop_for(TransportStatus status) {
    switch (status) {
        case TransportStatus::DecryptFailed:
        case TransportStatus::CryptoFailure:
            return DropReason::DecryptFailed;
        case TransportStatus::Replayed:
        case TransportStatus::CounterExhausted:
            return DropReason::Replay;
        case TransportStatus::Expired:
            return DropReason::NoSession;
        case TransportStatus::Ok:
        case TransportStatus::Malformed:
        case TransportStatus::NoRoom:
            break;
    }
    return DropReason::BadMessage;
}

CookieSource cookie_source(const Endpoint& from) {
    const IpAddress address = from.address();
    return CookieSource::from(
        std::span<const uint8_t>(address.bytes.data(), address.family == Family::V4 ? 4 : 16),
        from.port());
}

}  // namespace

struct WireGuardProtocol::PeerState final : PeerProtocolState {
    PeerState(const LocalIdentity& local, const crypto::PublicKey& key,
              crypto::RandomSource& random)
        : handshake(local, key), timers(random) {}

    HandshakeState handshake;
    // Ours for the handshake in progress (0: none); the session it derives keeps it.
    uint32_t handshake_index = 0;
    Keypairs keypairs;
    PeerTimers timers;
    std::deque<std::vector<uint8_t>> held;  // inner packets waiting for a session
};

WireGuardProtocol::WireGuardProtocol(const ProtocolSettings& settings, PeerTable& table, Wire& wire,
                                     TunnelCounters& counters)
    : table_(table),
      wire_(wire),
      counters_(counters),
      mtu_(settings.mtu),
      random_(crypto::system_random()),
      identity_(settings.private_key.key().clone()),
      cookies_(identity_),
      scratch_(kTransportHeaderSize + 65536 + kPaddingMultiple + kTagSize) {
    counters_.counts_handshakes = true;
    table_.set_observer(this);
}

WireGuardProtocol::~WireGuardProtocol() {
    table_.set_observer(nullptr);
}

Framing WireGuardProtocol::framing() const {
    return Framing{kTransportHeaderSize, kTagSize, kPaddingMultiple, mtu_};
}

WireGuardProtocol::PeerState& WireGuardProtocol::state(Peer& peer) {
    return static_cast<PeerState&>(*peer.protocol_state);
}

void WireGuardProtocol::peer_configured(Peer& peer) {
    const crypto::PublicKey& key = *peer.config.public_key;
    auto* current = static_cast<PeerState*>(peer.protocol_state.get());
    if (current == nullptr || current->handshake.remote_static() != key) {
        if (current != nullptr) {
            peer_removed(peer);
        }
        peer.protocol_state = std::make_unique<PeerState>(identity_, key, random_);
        by_key_[key] = &peer;
    }
    PeerState& s = state(peer);
    static const crypto::SecretKey kNoKey;  // all zeros: no preshared key, as the protocol has it
    s.handshake.set_preshared_key(peer.config.preshared_key.empty()
                                      ? kNoKey.bytes()
                                      : peer.config.preshared_key.key().bytes());
    s.timers.set_persistent_keepalive(peer.config.keepalive_seconds, monotonic_microseconds());
    watch(s);
}

void WireGuardProtocol::peer_removed(Peer& peer) {
    auto* s = static_cast<PeerState*>(peer.protocol_state.get());
    if (s == nullptr) {
        return;
    }
    forget_indices(s->keypairs.clear());
    forget_index(s->handshake_index);
    s->timers.stop();
    if (const auto found = by_key_.find(s->handshake.remote_static());
        found != by_key_.end() && found->second == &peer) {
        by_key_.erase(found);
    }
    peer.protocol_state.reset();  // wipes its keys
}

uint32_t WireGuardProtocol::new_handshake_index(Peer& peer, PeerState& state) {
    forget_index(state.handshake_index);  // a handshake in progress is abandoned
    for (;;) {
        const uint32_t index = random_.next_u32();
        if (index != 0 && indices_.emplace(index, &peer).second) {
            state.handshake_index = index;
            return index;
        }
    }
}

void WireGuardProtocol::forget_index(uint32_t index) {
    if (index != 0) {
        indices_.erase(index);
    }
}

void WireGuardProtocol::forget_indices(const RetiredIndices& retired) {
    for (size_t i = 0; i < retired.count; ++i) {
        forget_index(retired.indices[i]);
    }
}

void WireGuardProtocol::watch(const PeerState& state) {
    if (const auto deadline = state.timers.next_deadline()) {
        next_deadline_ = next_deadline_ ? std::min(*next_deadline_, *deadline) : *deadline;
    }
}

void WireGuardProtocol::roam(Peer& peer, const Endpoint& from) {
    if (!peer.config.endpoint || !(*peer.config.endpoint == from)) {
        table_.move_endpoint(peer, from);
    }
}

// Sending ------------------------------------------------------------------------------------

Sealed WireGuardProtocol::seal(Peer& peer, const Train& train, const BatchTime& time,
                               DropReason* drop) {
    PeerState& s = state(peer);
    const uint64_t now = time.monotonic_us;
    Keypair* keypair = s.keypairs.current();
    if (!PeerTimers::usable_for_sending(keypair, now)) {
        hold(s, train);
        if (s.timers.want_initiation(now)) {
            send_initiation(peer, s, now);
        }
        watch(s);
        return Sealed::Held;
    }
    for (size_t i = 0; i < train.count; ++i) {
        const bool last = i + 1 == train.count;
        const size_t packet = last ? train.last_packet_size : train.packet_size;
        const size_t size =
            last ? train.bytes.size() - i * train.datagram_size : train.datagram_size;
        const auto sealed = seal_transport(
            *keypair, train.bytes.subspan(i * train.datagram_size, size), packet, mtu_, now);
        if (sealed.status != TransportStatus::Ok || sealed.size != size) {
            *drop = DropReason::NoSessionOut;
            return Sealed::Drop;
        }
    }
    s.timers.transport_sent(now, false);
    if (PeerTimers::needs_rekey_after_send(keypair, now) && s.timers.want_initiation(now)) {
        send_initiation(peer, s, now);
    }
    watch(s);
    return Sealed::Send;
}

void WireGuardProtocol::hold(PeerState& state, const Train& train) {
    const size_t header = kTransportHeaderSize;
    for (size_t i = 0; i < train.count; ++i) {
        const size_t size = i + 1 == train.count ? train.last_packet_size : train.packet_size;
        const uint8_t* packet = train.bytes.data() + i * train.datagram_size + header;
        if (state.held.size() >= kHeldPackets) {
            state.held.pop_front();  // the oldest goes, as wireguard-go's staged queue does
            counters_.drop(DropReason::NoSessionOut);
        }
        state.held.emplace_back(packet, packet + size);
    }
}

bool WireGuardProtocol::send_sealed(Peer& peer, Keypair& keypair, std::span<const uint8_t> packet,
                                    uint64_t now) {
    if (!peer.config.endpoint) {
        return false;
    }
    // A held packet is at most one segment (the data plane cut it for the wire), a keepalive
    // is empty: the scratch buffer holds either, with header, padding and tag.
    if (kTransportHeaderSize + packet.size() + kPaddingMultiple + kTagSize > scratch_.size()) {
        return false;
    }
    std::copy(packet.begin(), packet.end(), scratch_.begin() + kTransportHeaderSize);
    const auto sealed = seal_transport(keypair, scratch_, packet.size(), mtu_, now);
    if (sealed.status != TransportStatus::Ok) {
        return false;
    }
    wire_.send(*peer.config.endpoint, std::span<const uint8_t>(scratch_.data(), sealed.size),
               &peer);
    return true;
}

void WireGuardProtocol::send_held(Peer& peer, PeerState& state, uint64_t now) {
    Keypair* keypair = state.keypairs.current();
    if (state.held.empty() || !PeerTimers::usable_for_sending(keypair, now)) {
        return;
    }
    while (!state.held.empty()) {
        if (!send_sealed(peer, *keypair, state.held.front(), now)) {
            counters_.drop(DropReason::NoSessionOut);
        }
        state.held.pop_front();
    }
    state.timers.transport_sent(now, false);
}

void WireGuardProtocol::send_keepalive(Peer& peer, PeerState& state, uint64_t now) {
    Keypair* keypair = state.keypairs.current();
    if (!PeerTimers::usable_for_sending(keypair, now)) {
        if (state.timers.want_initiation(now)) {
            send_initiation(peer, state, now);
        }
        return;
    }
    if (send_sealed(peer, *keypair, {}, now)) {
        state.timers.transport_sent(now, true);
    }
}

void WireGuardProtocol::send_initiation(Peer& peer, PeerState& state, uint64_t now) {
    if (!peer.config.endpoint) {
        return;  // nowhere to send it: this peer must call us
    }
    const uint32_t index = new_handshake_index(peer, state);
    std::array<uint8_t, kInitiationSize> message;
    const auto error = state.handshake.create_initiation(
        identity_, index, Tai64n::from(std::chrono::system_clock::now()), now, random_, message);
    if (error != HandshakeError::Ok) {
        log::debug("peer ", peer.id,
                   ": cannot initiate a handshake: ", handshake_error_name(error));
        return;
    }
    wire_.send(*peer.config.endpoint, message, &peer);
    state.timers.initiation_sent(now);
    counters_.handshake(HandshakeCounter::InitiationsSent);
}

// Receiving ----------------------------------------------------------------------------------

Opened WireGuardProtocol::open(std::span<uint8_t> datagram, const Endpoint& from, Peer*,
                               const BatchTime& time) {
    const uint64_t now = time.monotonic_us;
    const uint64_t now_us = time.wall_us;
    switch (message_type(datagram)) {
        case MessageType::Transport:
            return open_transport_message(datagram, from, now, now_us);
        case MessageType::Initiation:
            return open_initiation(datagram, from, now, now_us);
        case MessageType::Response:
            return open_response(datagram, from, now, now_us);
        case MessageType::CookieReply:
            return open_cookie_reply(datagram, now);
        case MessageType::Invalid:
            break;
    }
    return Opened::dropped(DropReason::BadMessage);
}

Opened WireGuardProtocol::open_transport_message(std::span<uint8_t> datagram, const Endpoint& from,
                                                 uint64_t now, uint64_t wall_now) {
    const auto index = receiver_index(datagram);
    const auto found = index ? indices_.find(*index) : indices_.end();
    if (found == indices_.end()) {
        return Opened::dropped(DropReason::UnknownIndex);
    }
    Peer& peer = *found->second;
    PeerState& s = state(peer);
    Keypair* keypair = s.keypairs.find(*index);
    if (keypair == nullptr) {
        return Opened::dropped(
            DropReason::UnknownIndex);  // the index of a handshake, not a session
    }
    const auto opened = open_transport(*keypair, datagram, now);
    if (opened.status != TransportStatus::Ok) {
        return Opened::dropped(drop_for(opened.status));
    }
    RetiredIndices retired;
    const bool confirmed = s.keypairs.received_with(keypair, retired);
    forget_indices(retired);
    roam(peer, from);
    if (confirmed) {
        handshake_completed(peer, s, wall_now);
        send_held(peer, s, now);
    }
    s.timers.transport_received(now, opened.plaintext.empty(), confirmed);
    if (s.timers.needs_rekey_after_receive(s.keypairs.current(), now) &&
        s.timers.want_initiation(now)) {
        send_initiation(peer, s, now);
    }
    watch(s);
    if (opened.plaintext.empty()) {
        return Opened::keepalive_from(&peer, datagram.size());
    }
    return Opened::packet(unpadded(opened.plaintext), &peer, datagram.size());
}

bool WireGuardProtocol::under_load(uint64_t now) {
    if (now - load_window_start_ >= kLoadWindowUs) {
        load_window_start_ = now;
        load_window_count_ = 0;
    }
    if (++load_window_count_ > kUnderLoadHandshakes) {
        under_load_until_ = now + kUnderLoadForUs;
    }
    return now < under_load_until_;
}

std::optional<Opened> WireGuardProtocol::admit(std::span<const uint8_t> message,
                                               const Endpoint& from, uint64_t now) {
    const CookieSource source = cookie_source(from);
    switch (cookies_.admit(message, source, under_load(now), now)) {
        case CookieChecker::Admission::Accept:
            return std::nullopt;
        case CookieChecker::Admission::BadMac1:
            return Opened::dropped(DropReason::BadMac);
        case CookieChecker::Admission::SendCookie:
            break;
    }
    std::array<uint8_t, kCookieReplySize> reply;
    if (cookies_.create_reply(message, source, now, random_, reply)) {
        wire_.send(from, reply, nullptr);
        counters_.handshake(HandshakeCounter::CookiesSent);
    }
    return Opened::dropped(DropReason::UnderLoad);
}

Opened WireGuardProtocol::open_initiation(std::span<uint8_t> datagram, const Endpoint& from,
                                          uint64_t now, uint64_t wall_now) {
    if (auto refused = admit(datagram, from, now)) {
        return *refused;
    }
    Peer* sender = nullptr;
    const auto consumed = consume_initiation(
        identity_, datagram,
        [&](const crypto::PublicKey& key) -> HandshakeState* {
            const auto found = by_key_.find(key);
            if (found == by_key_.end()) {
                return nullptr;
            }
            sender = found->second;
            return &state(*sender).handshake;
        },
        now);
    if (consumed.error != HandshakeError::Ok) {
        return Opened::dropped(drop_for(consumed.error));
    }
    Peer& peer = *sender;
    PeerState& s = state(peer);
    counters_.handshake(HandshakeCounter::InitiationsReceived);
    roam(peer, from);
    const uint32_t index = new_handshake_index(peer, s);
    std::array<uint8_t, kResponseSize> response;
    if (s.handshake.create_response(index, now, random_, response) != HandshakeError::Ok) {
        return Opened::dropped(DropReason::DecryptFailed);
    }
    install(peer, s, s.handshake.derive_keypair(now));
    wire_.send(from, response, &peer);
    counters_.handshake(HandshakeCounter::ResponsesSent);
    s.timers.initiation_received(now);
    s.timers.response_sent(now);
    watch(s);
    (void)wall_now;  // the handshake completes when the initiator first sends under it
    return handshake_consumed(peer, datagram.size());
}

Opened WireGuardProtocol::open_response(std::span<uint8_t> datagram, const Endpoint& from,
                                        uint64_t now, uint64_t wall_now) {
    if (auto refused = admit(datagram, from, now)) {
        return *refused;
    }
    const auto index = receiver_index(datagram);
    const auto found = index ? indices_.find(*index) : indices_.end();
    if (found == indices_.end()) {
        return Opened::dropped(DropReason::UnknownIndex);
    }
    Peer& peer = *found->second;
    PeerState& s = state(peer);
    if (s.handshake.stage() != HandshakeStage::InitiationCreated || s.handshake_index != *index) {
        return Opened::dropped(DropReason::UnknownIndex);
    }
    const auto error = s.handshake.consume_response(identity_, datagram);
    if (error != HandshakeError::Ok) {
        return Opened::dropped(drop_for(error));
    }
    counters_.handshake(HandshakeCounter::ResponsesReceived);
    roam(peer, from);
    install(peer, s, s.handshake.derive_keypair(now));
    s.timers.response_received(now);
    handshake_completed(peer, s, wall_now);
    if (s.held.empty()) {
        // Something must go out under the new session for the responder to use it.
        send_keepalive(peer, s, now);
    } else {
        send_held(peer, s, now);
    }
    watch(s);
    return handshake_consumed(peer, datagram.size());
}

Opened WireGuardProtocol::open_cookie_reply(std::span<uint8_t> datagram, uint64_t now) {
    const auto index = receiver_index(datagram);
    const auto found = index ? indices_.find(*index) : indices_.end();
    if (found == indices_.end()) {
        return Opened::dropped(DropReason::UnknownIndex);
    }
    const auto error = state(*found->second).handshake.consume_cookie_reply(datagram, now);
    if (error != HandshakeError::Ok) {
        return Opened::dropped(drop_for(error));
    }
    counters_.handshake(HandshakeCounter::CookiesReceived);
    return handshake_consumed(*found->second, 0);
}

Opened WireGuardProtocol::handshake_consumed(Peer& peer, size_t counted_bytes) {
    // Only what was consumed: a dropped message is counted under its drop reason instead, so
    // that every datagram is counted once.
    counters_.rx_handshakes.add(1);
    return Opened::control_from(&peer, counted_bytes);
}

void WireGuardProtocol::install(Peer& peer, PeerState& state, std::unique_ptr<Keypair> keypair) {
    if (!keypair) {
        return;
    }
    // The keypair answers to the handshake's index from now on.
    indices_[keypair->local_index] = &peer;
    state.handshake_index = 0;
    forget_indices(state.keypairs.install(std::move(keypair)));
}

void WireGuardProtocol::handshake_completed(Peer& peer, PeerState&, uint64_t wall_now) {
    counters_.handshake(HandshakeCounter::Completed);
    peer.latest_handshake_us.set(wall_now);
    table_.refresh(peer);  // a new view: the bus signals the handshake
}

// Timers -------------------------------------------------------------------------------------

void WireGuardProtocol::tick(uint64_t) {
    const uint64_t now = monotonic_microseconds();
    next_deadline_.reset();
    table_.for_each([&](Peer& peer) {
        PeerState& s = state(peer);
        const TimerActions actions = s.timers.tick(now);
        if (actions.zero_keys) {
            forget_indices(s.keypairs.clear());
            forget_index(s.handshake_index);
            s.handshake_index = 0;
            s.handshake.clear();
        }
        if (actions.gave_up) {
            counters_.drop(DropReason::NoSessionOut, s.held.size());
            s.held.clear();
        }
        if (actions.send_initiation) {
            send_initiation(peer, s, now);
        }
        if (actions.send_keepalive) {
            send_keepalive(peer, s, now);
        }
        watch(s);
    });
}

}  // namespace tunlab
