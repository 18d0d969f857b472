#pragma once

// The sending end of bench/run's load generators: a UDP socket connected to an IPv4 address
// (the lab's V or server), so that each send() needs no address.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

// The socket, or -1 (errno set) if the address is not IPv4 or the socket cannot be made.
inline int connected_udp_socket(const char* address, int port) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    if (fd < 0 || ::inet_pton(AF_INET, address, &to.sin_addr) != 1 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
        return -1;
    }
    return fd;
}
