#include "system/udp_socket.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "util/system_error.hpp"

namespace tunlab {

namespace {

// Room for a few milliseconds of line rate, so that a burst waits in the socket while the
// data-plane thread is busy instead of being dropped (wireguard-go uses 7 MB as well).
constexpr int kSocketBufferBytes = 7 << 20;

UniqueFd open_socket(int family) {
    return UniqueFd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP));
}

void set_buffer(int fd, int forced_option, int option) {
    // The *FORCE variants pass net.core.[rw]mem_max (they need CAP_NET_ADMIN, which tunlabd
    // has); without them the kernel caps the size silently, which is still better than none.
    if (::setsockopt(fd, SOL_SOCKET, forced_option, &kSocketBufferBytes,
                     sizeof kSocketBufferBytes) < 0) {
        ::setsockopt(fd, SOL_SOCKET, option, &kSocketBufferBytes, sizeof kSocketBufferBytes);
    }
}

}  // namespace

UdpSocket::UdpSocket(const IpAddress& listen_address, uint16_t port, bool offload) {
    IpAddress address = listen_address;
    family_ = address.family == Family::V4 ? AF_INET : AF_INET6;
    fd_ = open_socket(family_);
    if (!fd_.valid() && errno == EAFNOSUPPORT && address.family == Family::V6 &&
        address.is_unspecified()) {
        address = IpAddress{};  // 0.0.0.0
        family_ = AF_INET;
        fd_ = open_socket(family_);
    }
    if (!fd_.valid()) {
        throw system_error("open UDP socket");
    }
    if (family_ == AF_INET6) {
        const int v6_only = address.is_unspecified() ? 0 : 1;
        ::setsockopt(fd_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, sizeof v6_only);
    }
    const Endpoint local(address, port);
    const std::string where = local.to_string();
    if (::bind(fd_.get(), local.sockaddr_ptr(), local.sockaddr_length()) < 0) {
        throw system_error("bind UDP socket to " + where);
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &length) < 0) {
        throw system_error("getsockname");
    }
    bound_port_ = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&bound), length)->port();
    tune(offload);
}

void UdpSocket::tune(bool offload) {
    set_buffer(fd_.get(), SO_RCVBUFFORCE, SO_RCVBUF);
    set_buffer(fd_.get(), SO_SNDBUFFORCE, SO_SNDBUF);
    if (!offload) {
        return;
    }
    // Reading the option back succeeds only on kernels that implement it (Linux 4.18+).
    int segment_size = 0;
    socklen_t length = sizeof segment_size;
    segmentation_offload_ =
        ::getsockopt(fd_.get(), SOL_UDP, UDP_SEGMENT, &segment_size, &length) == 0;
    const int on = 1;
    receive_offload_ = ::setsockopt(fd_.get(), SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
}

}  // namespace tunlab
