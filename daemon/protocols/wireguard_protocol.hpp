#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "crypto/random.hpp"
#include "peers/counters.hpp"
#include "protocols/protocol.hpp"
#include "protocols/wireguard/cookie.hpp"
#include "protocols/wireguard/handshake.hpp"
#include "protocols/wireguard/identity.hpp"
#include "protocols/wireguard/keypairs.hpp"
#include "protocols/wireguard/timers.hpp"

namespace tunlab {

// WireGuard on the wire, byte for byte (protocols/wireguard/ has the protocol itself; this is
// how a tunnel runs it). A peer is its public key: no learned peers, and its endpoint follows
// it only on messages that authenticated. Per peer, the handshake, up to three sessions and
// the timers live in the peer's protocol state; the tunnel keeps our identity, the cookie
// checker, and two indexes: receiver index → peer, public key → peer.
//
// Sending: packets for a peer with a usable session are sealed where the data plane laid them
// out (16 bytes of header before each, padding and tag after). Without one they are held (at
// most kHeldPackets per peer) and a handshake starts; they go out when it completes.
//
// Under load (more than kUnderLoadHandshakes handshake messages within 100 ms; wireguard-go's
// rule is a handshake queue more than 1/8 full, and handshakes here are handled as they
// arrive, without a queue), an initiation without a valid mac2 gets a cookie reply instead of
// a Diffie-Hellman, for a second after the last such burst.
class WireGuardProtocol final : public Protocol, private PeerObserver {
  public:
    static constexpr size_t kHeldPackets = 128;
    static constexpr uint64_t kUnderLoadHandshakes = 256;

    WireGuardProtocol(const ProtocolSettings& settings, PeerTable& table, Wire& wire,
                      TunnelCounters& counters);
    WireGuardProtocol(const WireGuardProtocol&) = delete;
    WireGuardProtocol& operator=(const WireGuardProtocol&) = delete;
    ~WireGuardProtocol() override;

    Framing framing() const override;
    bool authenticates() const override { return true; }
    Sealed seal(Peer& peer, const Train& train, const BatchTime& time, DropReason* drop) override;
    Opened open(std::span<uint8_t> datagram, const Endpoint& from, Peer* known,
                const BatchTime& now) override;
    Peer* identify(const Endpoint&, const InnerSource&, uint64_t, DropReason* drop) override {
        *drop = DropReason::UnknownPeer;  // every datagram names its sender, or is dropped
        return nullptr;
    }
    void tick(uint64_t now_us) override;
    std::optional<uint64_t> next_deadline() const override { return next_deadline_; }

  private:
    struct PeerState;

    void peer_configured(Peer& peer) override;
    void peer_removed(Peer& peer) override;

    PeerState& state(Peer& peer);
    uint32_t new_handshake_index(Peer& peer, PeerState& state);
    void forget_index(uint32_t index);
    void forget_indices(const wireguard::RetiredIndices& retired);
    void install(Peer& peer, PeerState& state, std::unique_ptr<wireguard::Keypair> keypair);
    void handshake_completed(Peer& peer, PeerState& state, uint64_t now);
    void roam(Peer& peer, const Endpoint& from);
    void watch(const PeerState& state);

    void send_initiation(Peer& peer, PeerState& state, uint64_t now);
    void send_keepalive(Peer& peer, PeerState& state, uint64_t now);
    void send_held(Peer& peer, PeerState& state, uint64_t now);
    bool send_sealed(Peer& peer, wireguard::Keypair& keypair, std::span<const uint8_t> packet,
                     uint64_t now);
    void hold(PeerState& state, const Train& train);

    Opened open_transport_message(std::span<uint8_t> datagram, const Endpoint& from, uint64_t now,
                                  uint64_t wall_now);
    Opened open_initiation(std::span<uint8_t> datagram, const Endpoint& from, uint64_t now,
                           uint64_t wall_now);
    Opened open_response(std::span<uint8_t> datagram, const Endpoint& from, uint64_t now,
                         uint64_t wall_now);
    Opened open_cookie_reply(std::span<uint8_t> datagram, uint64_t now);
    // A handshake message or cookie reply that did its job: counted in rx_handshakes.
    Opened handshake_consumed(Peer& peer, size_t counted_bytes);
    // mac1, and under load mac2 (or a cookie reply): nullopt to go on, else the outcome.
    std::optional<Opened> admit(std::span<const uint8_t> message, const Endpoint& from,
                                uint64_t now);
    bool under_load(uint64_t now);

    PeerTable& table_;
    Wire& wire_;
    TunnelCounters& counters_;
    size_t mtu_;
    crypto::RandomSource& random_;
    wireguard::LocalIdentity identity_;
    wireguard::CookieChecker cookies_;
    std::unordered_map<uint32_t, Peer*> indices_;
    std::map<crypto::PublicKey, Peer*> by_key_;
    std::optional<uint64_t> next_deadline_;
    std::vector<uint8_t> scratch_;  // sealing what the protocol sends itself
    // Handshake messages in the current 100 ms window, and until when we are under load.
    uint64_t load_window_start_ = 0;
    uint64_t load_window_count_ = 0;
    uint64_t under_load_until_ = 0;
};

}  // namespace tunlab
