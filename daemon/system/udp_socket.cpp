#include "system/udp_socket.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include "util/system_error.hpp"

namespace tunlab {

namespace {

UniqueFd open_socket(int family) {
    return UniqueFd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP));
}

}  // namespace

UdpSocket::UdpSocket(const IpAddress& listen_address, uint16_t port) {
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
}

}  // namespace tunlab
