// The handshake load of bench/run: WireGuard handshake initiations from many distinct peers,
// each a real, valid initiation (Noise_IKpsk2, made by tunlab's own handshake code) that the
// server must authenticate and answer, paced evenly at a given rate.
//
//   handshake_flood public-keys COUNT
//       prints the public keys of the COUNT bench peers, one per line (base64), to configure
//       the server with; peer i's private key is HASH("tunlab bench peer" ‖ i), so that both
//       calls agree without passing secrets around.
//   handshake_flood send ADDRESS PORT SERVER_PUBLIC_KEY COUNT RATE SECONDS
//       sends RATE initiations per second for SECONDS, cycling through the COUNT peers (so each
//       peer initiates RATE / COUNT times per second: keep that below WireGuard's 50), and
//       counts the replies. Prints one JSON object: {"initiations": N, "responses": N,
//       "cookie_replies": N, "other": N, "seconds": S}.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connected_udp_socket.hpp"
#include "crypto/blake2s.hpp"
#include "crypto/encoding.hpp"
#include "crypto/random.hpp"
#include "protocols/wireguard/handshake.hpp"
#include "protocols/wireguard/identity.hpp"
#include "protocols/wireguard/messages.hpp"

namespace {

using namespace tunlab;
using Clock = std::chrono::steady_clock;

int usage() {
    std::fprintf(stderr,
                 "usage: handshake_flood public-keys COUNT\n"
                 "       handshake_flood send ADDRESS PORT SERVER_PUBLIC_KEY COUNT RATE SECONDS\n");
    return 2;
}

wireguard::LocalIdentity bench_peer(uint32_t index) {
    constexpr std::string_view kLabel = "tunlab bench peer";
    const std::array<uint8_t, 4> number{
        static_cast<uint8_t>(index), static_cast<uint8_t>(index >> 8),
        static_cast<uint8_t>(index >> 16), static_cast<uint8_t>(index >> 24)};
    const crypto::Hash seed = crypto::blake2s(
        {crypto::Bytes(reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size()), number});
    return wireguard::LocalIdentity(crypto::SecretKey(seed));
}

int print_public_keys(uint32_t count) {
    for (uint32_t i = 0; i < count; ++i) {
        std::printf("%s\n", crypto::key_to_base64(bench_peer(i).public_key()).c_str());
    }
    return 0;
}

struct Replies {
    unsigned long long responses = 0;
    unsigned long long cookie_replies = 0;
    unsigned long long other = 0;
};

// Reads every datagram waiting on the socket without blocking.
void drain(int fd, Replies& replies) {
    std::array<uint8_t, 2048> buffer;
    for (;;) {
        const ssize_t size = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (size < 0) {
            return;
        }
        switch (wireguard::message_type(std::span(buffer.data(), static_cast<size_t>(size)))) {
            case wireguard::MessageType::Response:
                ++replies.responses;
                break;
            case wireguard::MessageType::CookieReply:
                ++replies.cookie_replies;
                break;
            default:
                ++replies.other;
        }
    }
}

int send(const char* address, int port, const char* server_key, uint32_t count, double rate,
         double seconds) {
    const auto server_public = crypto::key_from_base64(server_key);
    if (!server_public || count == 0 || rate <= 0) {
        return usage();
    }
    const int fd = connected_udp_socket(address, port);
    if (fd < 0) {
        std::perror("handshake_flood send");
        return 1;
    }
    struct BenchPeer {
        wireguard::LocalIdentity identity;
        std::unique_ptr<wireguard::HandshakeState> handshake;
    };
    std::vector<BenchPeer> peers;
    peers.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
        auto identity = bench_peer(i);
        auto handshake = std::make_unique<wireguard::HandshakeState>(identity, *server_public);
        peers.push_back({std::move(identity), std::move(handshake)});
    }

    Replies replies;
    unsigned long long sent = 0;
    std::array<uint8_t, wireguard::kInitiationSize> message;
    const auto start = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    while (elapsed() < seconds) {
        // Evenly paced, one at a time: a burst would measure the socket queue, not the server.
        const double due = static_cast<double>(sent) / rate;
        if (const double now = elapsed(); due > now) {
            pollfd readable{fd, POLLIN, 0};
            ::poll(&readable, 1, static_cast<int>((due - now) * 1000));
            drain(fd, replies);
            continue;
        }
        BenchPeer& peer = peers[sent % count];
        const auto wall = wireguard::Tai64n::from(std::chrono::system_clock::now());
        const uint64_t now_us = static_cast<uint64_t>(elapsed() * 1e6);
        if (peer.handshake->create_initiation(peer.identity, static_cast<uint32_t>(sent), wall,
                                              now_us, crypto::system_random(),
                                              message) != wireguard::HandshakeError::Ok) {
            std::fprintf(stderr, "handshake_flood: could not create an initiation\n");
            return 1;
        }
        if (::send(fd, message.data(), message.size(), 0) == static_cast<ssize_t>(message.size())) {
            ++sent;
        }
        drain(fd, replies);
    }
    const double sending = elapsed();
    // The answers to the last initiations are still on their way.
    const auto grace_end = Clock::now() + std::chrono::milliseconds(500);
    while (Clock::now() < grace_end) {
        pollfd readable{fd, POLLIN, 0};
        ::poll(&readable, 1, 50);
        drain(fd, replies);
    }
    std::printf(
        "{\"initiations\": %llu, \"responses\": %llu, \"cookie_replies\": %llu, \"other\": %llu, "
        "\"seconds\": %.6f}\n",
        sent, replies.responses, replies.cookie_replies, replies.other, sending);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "public-keys" && argc == 3) {
        return print_public_keys(static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)));
    }
    if (mode == "send" && argc == 8) {
        return send(argv[2], std::atoi(argv[3]), argv[4],
                    static_cast<uint32_t>(std::strtoul(argv[5], nullptr, 10)),
                    std::strtod(argv[6], nullptr), std::strtod(argv[7], nullptr));
    }
    return usage();
}
