#include "system/netlink.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "private_network_namespace.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {
namespace {

constexpr const char* kTunName = "tltest0";

InterfaceAddress interface_address(const char* text) {
    return *InterfaceAddress::parse(text);
}
Prefix prefix(const char* text) {
    return *Prefix::parse(text);
}

IpAddress from_attribute(uint8_t family, const nlattr* attribute) {
    const auto* bytes = static_cast<const uint8_t*>(mnl_attr_get_payload(attribute));
    return family == AF_INET ? IpAddress::v4(bytes) : IpAddress::v6(bytes);
}

// A message's attributes indexed by type (the few types the tests read are all below 32).
std::array<const nlattr*, 32> attributes(const nlmsghdr* reply, size_t header_size) {
    std::array<const nlattr*, 32> table{};
    mnl_attr_parse(
        reply, static_cast<unsigned>(header_size),
        [](const nlattr* attribute, void* data) {
            auto& found = *static_cast<std::array<const nlattr*, 32>*>(data);
            if (mnl_attr_get_type(attribute) < found.size()) {
                found[mnl_attr_get_type(attribute)] = attribute;
            }
            return MNL_CB_OK;
        },
        &table);
    return table;
}

// Reads the kernel's state back with a dump, a different path from the requests under test.
// `describe` turns one message into a line ("" to leave it out).
template <typename Describe>
std::vector<std::string> dump(uint16_t type, size_t header_size, Describe describe) {
    mnl_socket* socket = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (socket == nullptr || mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
        throw std::system_error(errno, std::generic_category(), "dump socket");
    }
    alignas(nlmsghdr) char buffer[32768];
    nlmsghdr* header = mnl_nlmsg_put_header(buffer);
    header->nlmsg_type = type;
    header->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    header->nlmsg_seq = 1;
    // Family AF_UNSPEC: both IPv4 and IPv6.
    mnl_nlmsg_put_extra_header(header, header_size);
    if (mnl_socket_sendto(socket, header, header->nlmsg_len) < 0) {
        throw std::system_error(errno, std::generic_category(), "dump send");
    }
    std::vector<std::string> lines;
    const auto callback = [](const nlmsghdr* reply, void* data) {
        auto* context = static_cast<std::pair<Describe*, std::vector<std::string>*>*>(data);
        std::string line = (*context->first)(reply);
        if (!line.empty()) {
            context->second->push_back(line);
        }
        return MNL_CB_OK;
    };
    std::pair<Describe*, std::vector<std::string>*> context{&describe, &lines};
    int result = MNL_CB_OK;
    while (result > MNL_CB_STOP) {
        const ssize_t received = mnl_socket_recvfrom(socket, buffer, sizeof buffer);
        if (received < 0) {
            throw std::system_error(errno, std::generic_category(), "dump receive");
        }
        result = mnl_cb_run(buffer, static_cast<size_t>(received), 1, mnl_socket_get_portid(socket),
                            callback, &context);
    }
    mnl_socket_close(socket);
    if (result < 0) {
        throw std::system_error(errno, std::generic_category(), "dump parse");
    }
    return lines;
}

// "192.168.53.99/24" for every address on the interface.
std::vector<std::string> addresses(unsigned ifindex) {
    return dump(RTM_GETADDR, sizeof(ifaddrmsg), [ifindex](const nlmsghdr* reply) {
        const auto* message = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(reply));
        const auto table = attributes(reply, sizeof(ifaddrmsg));
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS alone only on IPv6.
        const nlattr* local = table[IFA_LOCAL] != nullptr ? table[IFA_LOCAL] : table[IFA_ADDRESS];
        if (message->ifa_index != ifindex || local == nullptr) {
            return std::string();
        }
        return InterfaceAddress{from_attribute(message->ifa_family, local), message->ifa_prefixlen}
            .to_string();
    });
}

// "192.168.60.0/24 static" for every main-table route out of the interface.
std::vector<std::string> routes(unsigned ifindex) {
    return dump(RTM_GETROUTE, sizeof(rtmsg), [ifindex](const nlmsghdr* reply) {
        const auto* message = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(reply));
        const auto table = attributes(reply, sizeof(rtmsg));
        const nlattr* destination = table[RTA_DST];
        const uint32_t oif = table[RTA_OIF] != nullptr ? mnl_attr_get_u32(table[RTA_OIF]) : 0;
        const uint32_t table_id =
            table[RTA_TABLE] != nullptr ? mnl_attr_get_u32(table[RTA_TABLE]) : message->rtm_table;
        if (oif != ifindex || table_id != RT_TABLE_MAIN || destination == nullptr) {
            return std::string();
        }
        const Prefix route{from_attribute(message->rtm_family, destination), message->rtm_dst_len};
        const std::string protocol = message->rtm_protocol == RTPROT_STATIC   ? "static"
                                     : message->rtm_protocol == RTPROT_KERNEL ? "kernel"
                                                                              : "other";
        return route.to_string() + " " + protocol;
    });
}

::testing::AssertionResult has(const std::vector<std::string>& lines, const std::string& line) {
    if (std::find(lines.begin(), lines.end(), line) != lines.end()) {
        return ::testing::AssertionSuccess();
    }
    auto failure = ::testing::AssertionFailure() << "\"" << line << "\" not in [";
    for (const std::string& entry : lines) {
        failure << " \"" << entry << "\"";
    }
    return failure << " ]";
}

class NetlinkTest : public PrivateNetworkNamespaceTest {
  protected:
    void SetUp() override {
        PrivateNetworkNamespaceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) {
            return;
        }

        tun_.reset(open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        if (!tun_.valid() && errno == ENOENT) {
            GTEST_SKIP() << "no /dev/net/tun";
        }
        ASSERT_TRUE(tun_.valid()) << "open /dev/net/tun: " << strerror(errno);
        ifreq request{};
        std::strncpy(request.ifr_name, kTunName, IFNAMSIZ - 1);
        request.ifr_flags = IFF_TUN | IFF_NO_PI;
        ASSERT_EQ(ioctl(tun_.get(), TUNSETIFF, &request), 0) << "TUNSETIFF: " << strerror(errno);
        ifindex_ = if_nametoindex(kTunName);
        ASSERT_NE(ifindex_, 0u);
    }

    // SIOCGIFMTU and SIOCGIFFLAGS answer from the same struct ifreq.
    ifreq interface_info(unsigned long what) {
        UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        ifreq request{};
        std::strncpy(request.ifr_name, kTunName, IFNAMSIZ - 1);
        EXPECT_EQ(ioctl(socket.get(), what, &request), 0) << strerror(errno);
        return request;
    }

    bool is_up() { return (interface_info(SIOCGIFFLAGS).ifr_flags & IFF_UP) != 0; }

    // Closing the only descriptor of a non-persistent TUN device deletes it, with its addresses
    // and routes, so every test starts from a fresh device.
    UniqueFd tun_;
    unsigned ifindex_ = 0;
};

TEST_F(NetlinkTest, SetsMtuAndLinkState) {
    Netlink netlink;
    netlink.set_mtu(ifindex_, 1400);
    EXPECT_EQ(interface_info(SIOCGIFMTU).ifr_mtu, 1400);

    ASSERT_FALSE(is_up());
    netlink.set_link_up(ifindex_, true);
    EXPECT_TRUE(is_up());
    netlink.set_link_up(ifindex_, false);
    EXPECT_FALSE(is_up());
}

TEST_F(NetlinkTest, AddsAddressesAndRoutes) {
    Netlink netlink;
    netlink.set_mtu(ifindex_, 1400);
    netlink.set_link_up(ifindex_, true);
    netlink.add_address(ifindex_, interface_address("192.168.53.99/24"));
    netlink.add_address(ifindex_, interface_address("fd00:53::99/64"));
    netlink.add_route(ifindex_, prefix("192.168.60.0/24"));
    netlink.add_route(ifindex_, prefix("fd00:60::/64"));

    const std::vector<std::string> configured = addresses(ifindex_);
    EXPECT_TRUE(has(configured, "192.168.53.99/24"));
    EXPECT_TRUE(has(configured, "fd00:53::99/64"));

    const std::vector<std::string> installed = routes(ifindex_);
    EXPECT_TRUE(has(installed, "192.168.60.0/24 static"));
    EXPECT_TRUE(has(installed, "fd00:60::/64 static"));
    // The kernel's prefix route for the address, which remove_route must leave alone.
    EXPECT_TRUE(has(installed, "192.168.53.0/24 kernel"));
}

TEST_F(NetlinkTest, AddingAnAddressTwiceFailsWithEexist) {
    Netlink netlink;
    netlink.set_link_up(ifindex_, true);
    for (const char* text : {"192.168.53.99/24", "fd00:53::99/64"}) {
        netlink.add_address(ifindex_, interface_address(text));
        try {
            netlink.add_address(ifindex_, interface_address(text));
            ADD_FAILURE() << "second add of " << text << " did not throw";
        } catch (const std::system_error& error) {
            EXPECT_EQ(error.code(), std::errc::file_exists) << error.what();
            EXPECT_NE(std::string(error.what()).find(std::string("add address ") + text),
                      std::string::npos)
                << error.what();
            EXPECT_NE(std::string(error.what()).find(kTunName), std::string::npos) << error.what();
        }
    }
}

TEST_F(NetlinkTest, RemovesAddressesAndRoutes) {
    Netlink netlink;
    netlink.set_link_up(ifindex_, true);
    for (const char* text : {"192.168.53.99/24", "fd00:53::99/64"}) {
        netlink.add_address(ifindex_, interface_address(text));
        netlink.remove_address(ifindex_, interface_address(text));
        EXPECT_FALSE(has(addresses(ifindex_), text));
        EXPECT_THROW(netlink.remove_address(ifindex_, interface_address(text)), std::system_error);
    }
    for (const char* text : {"192.168.60.0/24", "fd00:60::/64"}) {
        netlink.add_route(ifindex_, prefix(text));
        netlink.remove_route(ifindex_, prefix(text));
        EXPECT_FALSE(has(routes(ifindex_), std::string(text) + " static"));
    }
}

TEST_F(NetlinkTest, RemovingAMissingRouteFails) {
    Netlink netlink;
    netlink.set_link_up(ifindex_, true);
    for (const char* text : {"192.168.60.0/24", "fd00:60::/64"}) {
        try {
            netlink.remove_route(ifindex_, prefix(text));
            ADD_FAILURE() << "removing missing route " << text << " did not throw";
        } catch (const std::system_error& error) {
            EXPECT_EQ(error.code(), std::errc::no_such_process) << error.what();
            EXPECT_NE(std::string(error.what()).find(std::string("remove route ") + text),
                      std::string::npos)
                << error.what();
        }
    }
}

TEST_F(NetlinkTest, RemoveRouteLeavesTheKernelPrefixRoute) {
    Netlink netlink;
    netlink.set_link_up(ifindex_, true);
    netlink.add_address(ifindex_, interface_address("192.168.53.99/24"));
    EXPECT_THROW(netlink.remove_route(ifindex_, prefix("192.168.53.0/24")), std::system_error);
    EXPECT_TRUE(has(routes(ifindex_), "192.168.53.0/24 kernel"));
}

TEST_F(NetlinkTest, UnknownInterfaceIsNamedByIndex) {
    Netlink netlink;
    try {
        netlink.set_mtu(999999, 1400);
        ADD_FAILURE() << "set_mtu on a missing interface did not throw";
    } catch (const std::system_error& error) {
        EXPECT_EQ(error.code(), std::errc::no_such_device) << error.what();
        EXPECT_NE(std::string(error.what()).find("ifindex 999999"), std::string::npos)
            << error.what();
    }
}

}  // namespace
}  // namespace tunlab
