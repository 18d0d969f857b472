#include "system/netlink.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>

#include "util/system_error.hpp"

namespace tunlab {
namespace {

// Requests are a few dozen bytes, and replies are bare acks because NETLINK_CAP_ACK stops the
// kernel from echoing the request back, so one page is plenty for either.
struct alignas(nlmsghdr) Buffer {
    char data[8192];
};

uint8_t address_family(Family family) {
    return family == Family::V4 ? AF_INET : AF_INET6;
}

size_t address_size(Family family) {
    return family == Family::V4 ? 4 : 16;
}

std::string interface_name(unsigned ifindex) {
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(ifindex, name) != nullptr) {
        return name;
    }
    return "ifindex " + std::to_string(ifindex);
}

nlmsghdr* put_request(Buffer& buffer, uint16_t type, uint16_t flags) {
    nlmsghdr* header = mnl_nlmsg_put_header(buffer.data);
    header->nlmsg_type = type;
    header->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    return header;
}

nlmsghdr* put_address_request(Buffer& buffer, uint16_t type, uint16_t flags, unsigned ifindex,
                              const InterfaceAddress& address) {
    nlmsghdr* header = put_request(buffer, type, flags);
    auto* message = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifaddrmsg)));
    message->ifa_family = address_family(address.address.family);
    message->ifa_prefixlen = address.length;
    message->ifa_scope = RT_SCOPE_UNIVERSE;
    message->ifa_index = ifindex;
    const size_t size = address_size(address.address.family);
    // Both, as `ip` sends them: IFA_ADDRESS alone would make IPv4 take it as a peer address.
    mnl_attr_put(header, IFA_LOCAL, size, address.address.bytes.data());
    mnl_attr_put(header, IFA_ADDRESS, size, address.address.bytes.data());
    return header;
}

nlmsghdr* put_route_request(Buffer& buffer, uint16_t type, uint16_t flags, unsigned ifindex,
                            const Prefix& destination) {
    nlmsghdr* header = put_request(buffer, type, flags);
    auto* message = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(rtmsg)));
    message->rtm_family = address_family(destination.address.family);
    message->rtm_dst_len = destination.length;
    message->rtm_table = RT_TABLE_MAIN;
    // On delete these are match keys too, so only a route we added is removed, never the
    // kernel's own prefix route for an interface address.
    message->rtm_protocol = RTPROT_STATIC;
    message->rtm_scope = RT_SCOPE_LINK;
    message->rtm_type = RTN_UNICAST;
    mnl_attr_put(header, RTA_DST, address_size(destination.address.family),
                 destination.address.bytes.data());
    mnl_attr_put_u32(header, RTA_OIF, ifindex);
    return header;
}

// The kernel's own explanation (NETLINK_EXT_ACK), e.g. " (Nexthop device is not up)", or "".
std::string kernel_message(const nlmsghdr* reply) {
    if ((reply->nlmsg_flags & NLM_F_ACK_TLVS) == 0) {
        return {};
    }
    const auto* error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(reply));
    size_t offset = sizeof(nlmsgerr);
    if ((reply->nlmsg_flags & NLM_F_CAPPED) == 0) {
        offset += error->msg.nlmsg_len - sizeof(nlmsghdr);
    }
    const char* text = nullptr;
    mnl_attr_parse(
        reply, static_cast<unsigned>(offset),
        [](const nlattr* attribute, void* data) {
            if (mnl_attr_get_type(attribute) == NLMSGERR_ATTR_MSG &&
                mnl_attr_validate(attribute, MNL_TYPE_NUL_STRING) == 0) {
                *static_cast<const char**>(data) = mnl_attr_get_str(attribute);
            }
            return MNL_CB_OK;
        },
        &text);
    return text != nullptr ? std::string(" (") + text + ")" : std::string();
}

}  // namespace

void Netlink::SocketCloser::operator()(mnl_socket* socket) const {
    mnl_socket_close(socket);
}

Netlink::Netlink() : socket_(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)) {
    if (!socket_) {
        throw system_error("open rtnetlink socket");
    }
    if (mnl_socket_bind(socket_.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
        throw system_error("bind rtnetlink socket");
    }
    port_id_ = mnl_socket_get_portid(socket_.get());
    // Best effort: without them errors lose the kernel's explanation, nothing else.
    int on = 1;
    mnl_socket_setsockopt(socket_.get(), NETLINK_CAP_ACK, &on, sizeof on);
    mnl_socket_setsockopt(socket_.get(), NETLINK_EXT_ACK, &on, sizeof on);
}

void Netlink::set_link_up(unsigned ifindex, bool up) {
    Buffer buffer;
    nlmsghdr* header = put_request(buffer, RTM_NEWLINK, 0);
    auto* message = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifinfomsg)));
    message->ifi_family = AF_UNSPEC;
    message->ifi_index = static_cast<int>(ifindex);
    message->ifi_flags = up ? IFF_UP : 0;
    message->ifi_change = IFF_UP;
    request(header, "set " + interface_name(ifindex) + (up ? " up" : " down"));
}

void Netlink::set_mtu(unsigned ifindex, uint32_t mtu) {
    Buffer buffer;
    nlmsghdr* header = put_request(buffer, RTM_NEWLINK, 0);
    auto* message = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifinfomsg)));
    message->ifi_family = AF_UNSPEC;
    message->ifi_index = static_cast<int>(ifindex);
    mnl_attr_put_u32(header, IFLA_MTU, mtu);
    request(header, "set mtu " + std::to_string(mtu) + " on " + interface_name(ifindex));
}

void Netlink::add_address(unsigned ifindex, const InterfaceAddress& address) {
    Buffer buffer;
    nlmsghdr* header =
        put_address_request(buffer, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, address);
    if (address.address.family == Family::V6) {
        // Usable at once: the other end of a tunnel cannot answer duplicate detection anyway.
        static_cast<ifaddrmsg*>(mnl_nlmsg_get_payload(header))->ifa_flags = IFA_F_NODAD;
    }
    request(header, "add address " + address.to_string() + " to " + interface_name(ifindex));
}

void Netlink::remove_address(unsigned ifindex, const InterfaceAddress& address) {
    Buffer buffer;
    nlmsghdr* header = put_address_request(buffer, RTM_DELADDR, 0, ifindex, address);
    request(header, "remove address " + address.to_string() + " from " + interface_name(ifindex));
}

void Netlink::add_route(unsigned ifindex, const Prefix& destination) {
    Buffer buffer;
    nlmsghdr* header =
        put_route_request(buffer, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, ifindex, destination);
    request(header, "add route " + destination.to_string() + " dev " + interface_name(ifindex));
}

void Netlink::remove_route(unsigned ifindex, const Prefix& destination) {
    Buffer buffer;
    nlmsghdr* header = put_route_request(buffer, RTM_DELROUTE, 0, ifindex, destination);
    request(header, "remove route " + destination.to_string() + " dev " + interface_name(ifindex));
}

void Netlink::request(void* message_header, const std::string& what) {
    auto* header = static_cast<nlmsghdr*>(message_header);
    const uint32_t sequence = ++sequence_;
    header->nlmsg_seq = sequence;
    while (mnl_socket_sendto(socket_.get(), header, header->nlmsg_len) < 0) {
        if (errno != EINTR) {
            throw system_error(what + ": send to rtnetlink");
        }
    }

    Buffer buffer;
    for (;;) {
        const ssize_t received =
            mnl_socket_recvfrom(socket_.get(), buffer.data, sizeof buffer.data);
        if (received < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw system_error(what + ": receive from rtnetlink");
        }
        int remaining = static_cast<int>(received);
        // Replies with another sequence number are leftovers of an earlier, abandoned request.
        for (const nlmsghdr* reply = reinterpret_cast<const nlmsghdr*>(buffer.data);
             mnl_nlmsg_ok(reply, remaining); reply = mnl_nlmsg_next(reply, &remaining)) {
            if (reply->nlmsg_type != NLMSG_ERROR || !mnl_nlmsg_seq_ok(reply, sequence) ||
                !mnl_nlmsg_portid_ok(reply, port_id_)) {
                continue;
            }
            if (reply->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
                throw system_error(what + ": truncated rtnetlink ack", EBADMSG);
            }
            const int error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(reply))->error;
            if (error == 0) {
                return;
            }
            throw system_error(what + kernel_message(reply), -error);
        }
    }
}

}  // namespace tunlab
