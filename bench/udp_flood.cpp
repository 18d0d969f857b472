// The small-packet load of bench/run: sends or counts UDP datagrams with sendmmsg/recvmmsg, so
// that neither end of the measurement costs more per packet than the tunnel it measures
// (iperf3's receiver reads one datagram per call and tops out below what the path carries).
//
//   udp_flood send <IPv4 address> <port> <seconds> <payload bytes> [<packets per second>]
//   udp_flood receive <port> <seconds>
// Each prints one JSON object: {"datagrams": N, "seconds": S}. The receiver counts from its
// first datagram for <seconds> (or until it has been idle for a second after that).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "connected_udp_socket.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr unsigned kBatch = 64;

int usage() {
    std::fprintf(stderr,
                 "usage: udp_flood send ADDRESS PORT SECONDS PAYLOAD [PPS]\n"
                 "       udp_flood receive PORT SECONDS\n");
    return 2;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

int send(const char* address, int port, double seconds, size_t payload, double rate) {
    const int fd = connected_udp_socket(address, port);
    if (fd < 0) {
        std::perror("udp_flood send");
        return 1;
    }
    std::vector<char> bytes(payload, 'x');
    iovec vector{bytes.data(), bytes.size()};
    std::vector<mmsghdr> messages(kBatch);
    for (auto& message : messages) {
        message.msg_hdr.msg_iov = &vector;
        message.msg_hdr.msg_iovlen = 1;
    }
    const auto start = Clock::now();
    unsigned long long sent = 0;
    while (seconds_since(start) < seconds) {
        if (rate > 0) {
            // Paced: never ahead of the schedule (batches of 64 keep the clock reads rare).
            const double due = static_cast<double>(sent) / rate;
            const double now = seconds_since(start);
            if (due > now) {
                std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
            }
        }
        const int count = ::sendmmsg(fd, messages.data(), kBatch, 0);
        if (count > 0) {
            sent += static_cast<unsigned>(count);
        }
    }
    std::printf("{\"datagrams\": %llu, \"seconds\": %.6f}\n", sent, seconds_since(start));
    return 0;
}

int receive(int port, double seconds) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(static_cast<uint16_t>(port));
    const int buffer = 8 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) {
        std::perror("udp_flood receive");
        return 1;
    }
    std::printf("{\"listening\": %d}\n", port);
    std::fflush(stdout);
    std::vector<char> storage(kBatch * 2048);
    std::vector<iovec> vectors(kBatch);
    std::vector<mmsghdr> messages(kBatch);
    for (unsigned i = 0; i < kBatch; ++i) {
        vectors[i] = {storage.data() + i * 2048, 2048};
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long received = 0;
    Clock::time_point first;
    pollfd ready{fd, POLLIN, 0};
    while (received == 0 || seconds_since(first) < seconds) {
        if (::poll(&ready, 1, received == 0 ? -1 : 1000) == 0) {
            break;  // idle for a second: the sender is done
        }
        const int count = ::recvmmsg(fd, messages.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (count > 0) {
            if (received == 0) {
                first = Clock::now();
            }
            received += static_cast<unsigned>(count);
        }
    }
    std::printf("{\"datagrams\": %llu, \"seconds\": %.6f}\n", received,
                received == 0 ? 0.0 : std::min(seconds_since(first), seconds));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 6 && std::string(argv[1]) == "send") {
        return send(argv[2], std::atoi(argv[3]), std::atof(argv[4]),
                    static_cast<size_t>(std::atoi(argv[5])), argc > 6 ? std::atof(argv[6]) : 0);
    }
    if (argc == 4 && std::string(argv[1]) == "receive") {
        return receive(std::atoi(argv[2]), std::atof(argv[3]));
    }
    return usage();
}
