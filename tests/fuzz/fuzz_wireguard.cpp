// libFuzzer target: every WireGuard entry point that reads a datagram from the network
// (daemon/protocols/wireguard), against fixed identities, with invariants beyond "no crash".
//
// Input: 1 flags byte, then the datagram.
//   bit 0  recompute mac1 for our identity first (so that the fuzzer reaches past mac1 into
//          the Diffie-Hellman and AEAD steps, as an attacker who knows our public key can)
//   bit 1  the responder is "under load" (mac2 required)
//   bit 2  instead of a datagram: little-endian 8-byte counters for the replay window,
//          checked against a reference set
// The datagram goes to the classifier and parsers, CookieChecker::admit, consume_initiation,
// consume_response (against a pending initiation of ours), consume_cookie_reply,
// open_transport (against a keypair of ours) and, as a plaintext, through
// seal_transport/open_transport and back.
//
// State that a valid message would change (the peer's last timestamp, our pending initiation,
// a cookie, the replay window) is rebuilt after each input, so that an input always does the
// same thing. TUNLAB_FUZZ_WIREGUARD_SEEDS=DIR writes valid messages for these identities to DIR
// (the committed corpus/fuzz_wireguard/) and exits.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "protocols/wireguard/cookie.hpp"
#include "protocols/wireguard/handshake.hpp"
#include "protocols/wireguard/messages.hpp"
#include "protocols/wireguard/replay.hpp"
#include "protocols/wireguard/transport.hpp"
#include "test_support.hpp"

namespace {

using namespace tunlab;
using namespace tunlab::wireguard;

constexpr uint64_t kNow = 1'000 * kSecond;
constexpr uint32_t kOurIndex = 0x0badcafe;
constexpr uint32_t kTransportIndex = 0x00c0ffee;

// The WireGuard unit tests' deterministic random source: a crash reproduces byte for byte.
using test_support::SeededRandom;

LocalIdentity identity_from(uint32_t seed) {
    SeededRandom random(seed);
    return LocalIdentity::generate(random);
}

Tai64n timestamp() {
    return Tai64n::from_unix(1'700'000'000, 0);
}

struct World {
    LocalIdentity us = identity_from(1);
    LocalIdentity them = identity_from(2);
    CookieChecker checker{us};
    // Our state for the peer: a pending initiation to it, and what its initiations meet.
    std::unique_ptr<HandshakeState> peer;
    std::array<uint8_t, kInitiationSize> our_initiation{};
    // A session: theirs sends, ours receives (for transport messages), and a pair for the
    // plaintext round trip.
    std::unique_ptr<Keypair> their_sender;
    std::unique_ptr<Keypair> our_receiver;

    World() {
        reset_peer();
        make_session();
    }

    void reset_peer() {
        peer = std::make_unique<HandshakeState>(us, them.public_key());
        SeededRandom random(3);
        if (peer->create_initiation(us, kOurIndex, timestamp(), kNow, random, our_initiation) !=
            HandshakeError::Ok) {
            tunlab::fuzz::fail("cannot create the fixed initiation");
        }
    }

    void make_session() {
        HandshakeState initiator(them, us.public_key());
        HandshakeState responder(us, them.public_key());
        SeededRandom random(4);
        std::array<uint8_t, kInitiationSize> initiation{};
        std::array<uint8_t, kResponseSize> response{};
        initiator.create_initiation(them, 0x1111, timestamp(), kNow, random, initiation);
        const auto consumed = consume_initiation(
            us, initiation, [&](const crypto::PublicKey&) { return &responder; }, kNow);
        if (consumed.error != HandshakeError::Ok ||
            responder.create_response(kTransportIndex, kNow, random, response) !=
                HandshakeError::Ok ||
            initiator.consume_response(them, response) != HandshakeError::Ok) {
            tunlab::fuzz::fail("cannot complete the fixed handshake");
        }
        our_receiver = responder.derive_keypair(kNow);
        their_sender = initiator.derive_keypair(kNow);
    }

    PeerLookup lookup() {
        return [this](const crypto::PublicKey& key) {
            return key == them.public_key() ? peer.get() : nullptr;
        };
    }
};

World& world() {
    static World instance;
    return instance;
}

void verbose(const char* what, std::string_view answer) {
    static const bool enabled = std::getenv("TUNLAB_FUZZ_VERBOSE") != nullptr;
    if (enabled) {
        std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(answer.size()), answer.data());
    }
}

void check_classifier(std::span<const uint8_t> datagram) {
    const MessageType type = message_type(datagram);
    const size_t size = datagram.size();
    if (type != MessageType::Invalid) {
        FUZZ_CHECK(size >= 4 && datagram[0] == static_cast<uint8_t>(type) && datagram[1] == 0 &&
                       datagram[2] == 0 && datagram[3] == 0,
                   "classified a message with a wrong type or reserved bytes");
    }
    FUZZ_CHECK((type == MessageType::Initiation) ==
                   (size == kInitiationSize && datagram[0] == 1 && datagram[1] == 0 &&
                    datagram[2] == 0 && datagram[3] == 0),
               "initiation classification disagrees with type and size");
    FUZZ_CHECK(type != MessageType::Transport || size >= kTransportMinSize,
               "a transport message shorter than a keepalive");
    FUZZ_CHECK(receiver_index(datagram).has_value() ==
                   (type == MessageType::Response || type == MessageType::CookieReply ||
                    type == MessageType::Transport),
               "receiver_index for the wrong message types");

    auto same_bytes = [&](std::span<const uint8_t> written) {
        return std::equal(written.begin(), written.end(), datagram.begin(), datagram.end());
    };
    const auto initiation = parse_initiation(datagram);
    FUZZ_CHECK(initiation.has_value() == (type == MessageType::Initiation), "parse_initiation");
    if (initiation) {
        std::array<uint8_t, kInitiationSize> out{};
        serialize(*initiation, out);
        FUZZ_CHECK(same_bytes(out), "initiation does not serialize back to its bytes");
    }
    const auto response = parse_response(datagram);
    FUZZ_CHECK(response.has_value() == (type == MessageType::Response), "parse_response");
    if (response) {
        std::array<uint8_t, kResponseSize> out{};
        serialize(*response, out);
        FUZZ_CHECK(same_bytes(out), "response does not serialize back to its bytes");
    }
    const auto reply = parse_cookie_reply(datagram);
    FUZZ_CHECK(reply.has_value() == (type == MessageType::CookieReply), "parse_cookie_reply");
    if (reply) {
        std::array<uint8_t, kCookieReplySize> out{};
        serialize(*reply, out);
        FUZZ_CHECK(same_bytes(out), "cookie reply does not serialize back to its bytes");
    }
    FUZZ_CHECK(parse_transport_header(datagram).has_value() == (type == MessageType::Transport),
               "parse_transport_header");
}

void check_handshake_paths(std::span<const uint8_t> datagram, bool under_load) {
    World& w = world();
    const MessageType type = message_type(datagram);
    const auto source = CookieSource::from(std::array<uint8_t, 4>{192, 0, 2, 1}, 51820);

    if (datagram.size() >= kMacsSize + 4) {
        const auto admission = w.checker.admit(datagram, source, under_load, kNow);
        verbose("admit", admission == CookieChecker::Admission::Accept    ? "accept"
                         : admission == CookieChecker::Admission::BadMac1 ? "bad_mac1"
                                                                          : "send_cookie");
        FUZZ_CHECK((admission == CookieChecker::Admission::BadMac1) !=
                       mac1_valid(datagram, w.us.mac1_key()),
                   "admit() and mac1_valid() disagree");
        if (admission == CookieChecker::Admission::SendCookie) {
            std::array<uint8_t, kCookieReplySize> reply{};
            SeededRandom random(5);
            FUZZ_CHECK(w.checker.create_reply(datagram, source, kNow, random, reply),
                       "no cookie reply for a message that passed mac1");
            FUZZ_CHECK(message_type(reply) == MessageType::CookieReply, "malformed cookie reply");
        }
    }

    bool dirty = false;
    const auto consumed = consume_initiation(w.us, datagram, w.lookup(), kNow);
    verbose("consume_initiation", handshake_error_name(consumed.error));
    FUZZ_CHECK((consumed.error == HandshakeError::BadMessage) == (type != MessageType::Initiation),
               "consume_initiation: BadMessage iff not an initiation");
    if (consumed.error == HandshakeError::Ok) {
        FUZZ_CHECK(consumed.peer == w.peer.get(), "accepted initiation names no peer");
        std::array<uint8_t, kResponseSize> response{};
        SeededRandom random(6);
        FUZZ_CHECK(consumed.peer->create_response(7, kNow, random, response) == HandshakeError::Ok,
                   "cannot answer an accepted initiation");
        FUZZ_CHECK(consumed.peer->derive_keypair(kNow) != nullptr, "no keypair after responding");
        dirty = true;
    } else if (type == MessageType::Initiation && !mac1_valid(datagram, w.us.mac1_key())) {
        FUZZ_CHECK(consumed.error == HandshakeError::BadMac1, "bad mac1 not reported as such");
    }

    if (!dirty) {
        const HandshakeError response_error = w.peer->consume_response(w.us, datagram);
        verbose("consume_response", handshake_error_name(response_error));
        FUZZ_CHECK(
            (response_error == HandshakeError::BadMessage) == (type != MessageType::Response),
            "consume_response: BadMessage iff not a response");
        if (response_error == HandshakeError::Ok) {
            FUZZ_CHECK(w.peer->derive_keypair(kNow) != nullptr, "no keypair after a response");
            dirty = true;
        } else {
            FUZZ_CHECK(w.peer->stage() == HandshakeStage::InitiationCreated,
                       "a refused response disturbed the pending initiation");
        }
    }

    const HandshakeError cookie_error = w.peer->consume_cookie_reply(datagram, kNow);
    verbose("consume_cookie_reply", handshake_error_name(cookie_error));
    FUZZ_CHECK((cookie_error == HandshakeError::BadMessage) == (type != MessageType::CookieReply),
               "consume_cookie_reply: BadMessage iff not a cookie reply");
    dirty |= cookie_error == HandshakeError::Ok;

    if (dirty) {
        w.reset_peer();
    }
}

void check_transport(std::span<const uint8_t> datagram) {
    World& w = world();
    std::vector<uint8_t> copy(datagram.begin(), datagram.end());
    const auto opened = open_transport(*w.our_receiver, copy, kNow);
    verbose("open_transport", transport_status_name(opened.status));
    const auto header = parse_transport_header(datagram);
    const bool addressed = header && header->receiver == w.our_receiver->local_index;
    FUZZ_CHECK((opened.status == TransportStatus::Malformed) == !addressed,
               "open_transport: Malformed iff not a transport message for this keypair");
    if (opened.status == TransportStatus::Ok) {
        FUZZ_CHECK(opened.plaintext.data() == copy.data() + kTransportHeaderSize &&
                       opened.plaintext.size() == copy.size() - kTransportOverhead,
                   "plaintext outside the datagram");
    }
    w.our_receiver->replay.reset();

    // The datagram as an inner packet: sealed by the peer, opened by us, the same bytes.
    const size_t length = std::min<size_t>(datagram.size(), 1500);
    std::vector<uint8_t> buffer(kTransportHeaderSize + length + kMaxPadding + kTagSize);
    std::copy_n(datagram.begin(), length, buffer.begin() + kTransportHeaderSize);
    w.their_sender->send_counter = 0;
    const auto sealed = seal_transport(*w.their_sender, buffer, length, 1420, kNow);
    FUZZ_CHECK(sealed.status == TransportStatus::Ok, "seal_transport failed");
    const auto round_trip =
        open_transport(*w.our_receiver, std::span(buffer).first(sealed.size), kNow);
    FUZZ_CHECK(round_trip.status == TransportStatus::Ok, "a sealed packet does not open");
    FUZZ_CHECK(round_trip.plaintext.size() == length + padding_for(length, 1420) &&
                   std::equal(datagram.begin(), datagram.begin() + static_cast<long>(length),
                              round_trip.plaintext.begin()),
               "round trip changed the packet");
    w.our_receiver->replay.reset();
}

void check_replay(std::span<const uint8_t> bytes) {
    ReplayFilter filter;
    std::set<uint64_t> seen;
    uint64_t highest = 0;
    for (size_t offset = 0; offset + 8 <= bytes.size() && offset < 8 * 4096; offset += 8) {
        uint64_t counter = 0;
        std::memcpy(&counter, bytes.data() + offset, 8);
        const bool expected =
            counter < kRejectAfterMessages && seen.count(counter) == 0 &&
            (counter >= highest || highest - counter <= ReplayFilter::kWindowSize);
        FUZZ_CHECK(filter.accept(counter) == expected, "replay window disagrees with the model");
        if (expected) {
            seen.insert(counter);
            highest = std::max(highest, counter);
        }
    }
}

void write_seed(const std::string& directory, const char* name, std::span<const uint8_t> datagram,
                uint8_t flags = 0) {
    const std::string path = directory + "/" + name;
    FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) {
        std::perror(path.c_str());
        std::exit(1);
    }
    std::fputc(flags, file);
    std::fwrite(datagram.data(), 1, datagram.size(), file);
    std::fclose(file);
}

void write_seeds(const std::string& directory) {
    World& w = world();
    SeededRandom random(7);
    // Their initiation to us.
    HandshakeState them_to_us(w.them, w.us.public_key());
    std::array<uint8_t, kInitiationSize> initiation{};
    them_to_us.create_initiation(w.them, 0x2222, Tai64n::from_unix(1'700'000'001, 0), kNow, random,
                                 initiation);
    write_seed(directory, "initiation", initiation);
    write_seed(directory, "initiation_under_load", initiation, 2);
    // Their response to our pending initiation.
    HandshakeState responder(w.them, w.us.public_key());
    const auto consumed = consume_initiation(
        w.them, w.our_initiation, [&](const crypto::PublicKey&) { return &responder; }, kNow);
    std::array<uint8_t, kResponseSize> response{};
    if (consumed.error != HandshakeError::Ok ||
        responder.create_response(0x3333, kNow, random, response) != HandshakeError::Ok) {
        tunlab::fuzz::fail("cannot answer our initiation");
    }
    write_seed(directory, "response", response);
    // Their cookie reply to our initiation.
    CookieChecker their_checker(w.them);
    std::array<uint8_t, kCookieReplySize> reply{};
    their_checker.create_reply(w.our_initiation,
                               CookieSource::from(std::array<uint8_t, 4>{127, 0, 0, 1}, 1), kNow,
                               random, reply);
    write_seed(directory, "cookie_reply", reply);
    // A transport message and a keepalive to our keypair.
    std::vector<uint8_t> packet(kTransportHeaderSize + 28 + kMaxPadding + kTagSize);
    const uint8_t ping[28] = {0x45, 0, 0,  28, 0, 0, 0, 0, 64,   1,    0, 0, 10, 77,
                              0,    1, 10, 77, 0, 2, 8, 0, 0xf7, 0xff, 0, 0, 0,  0};
    std::memcpy(packet.data() + kTransportHeaderSize, ping, sizeof ping);
    w.their_sender->send_counter = 5;
    auto sealed = seal_transport(*w.their_sender, packet, sizeof ping, 1420, kNow);
    write_seed(directory, "transport", std::span(packet).first(sealed.size));
    std::vector<uint8_t> keepalive(kTransportMinSize);
    sealed = seal_transport(*w.their_sender, keepalive, 0, 1420, kNow);
    write_seed(directory, "keepalive", std::span(keepalive).first(sealed.size));
    // Counters for the replay window: in order, a jump, a duplicate, an old one.
    std::vector<uint8_t> counters;
    for (const uint64_t counter : {0ull, 1ull, 2ull, 9000ull, 2ull, 100ull, 8999ull, 871ull}) {
        for (size_t i = 0; i < 8; ++i) {
            counters.push_back(static_cast<uint8_t>(counter >> (8 * i)));
        }
    }
    write_seed(directory, "replay_counters", counters, 4);
    std::exit(0);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    world();
    if (const char* directory = std::getenv("TUNLAB_FUZZ_WIREGUARD_SEEDS")) {
        write_seeds(directory);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) {
        return -1;
    }
    const uint8_t flags = data[0];
    const std::span<const uint8_t> input(data + 1, size - 1);
    if ((flags & 4) != 0) {
        check_replay(input);
        return 0;
    }
    std::vector<uint8_t> datagram(input.begin(), input.end());
    if ((flags & 1) != 0 && (message_type(datagram) == MessageType::Initiation ||
                             message_type(datagram) == MessageType::Response)) {
        // mac1 as anyone who knows our public key can compute it.
        const auto mac1 = crypto::keyed_blake2s_128(
            world().us.mac1_key(), {std::span(datagram).first(datagram.size() - kMacsSize)});
        std::memcpy(datagram.data() + datagram.size() - kMacsSize, mac1.data(), kMacSize);
    }
    check_classifier(datagram);
    check_handshake_paths(datagram, (flags & 2) != 0);
    check_transport(datagram);
    return 0;
}
