// The data plane's device I/O against a real TUN device with offloads, in a private network
// namespace: DeviceWriter's coalesced writes must all be taken and arrive at a local socket as
// the datagrams they were; DeviceReadBatch must hand over what a local socket sent through the
// device, in order, with io_uring and without.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/device_writer.hpp"
#include "net/ip_address.hpp"
#include "offload/virtio_net_hdr.hpp"
#include "offload_packets.hpp"
#include "private_network_namespace.hpp"
#include "system/device_read_batch.hpp"
#include "system/netlink.hpp"
#include "system/tun_device.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {
namespace {

using offload::test_support::build_packet;
using offload::test_support::FlowSpec;
using offload::test_support::pattern_payload;

constexpr uint16_t kPort = 5201;  // FlowSpec's destination port
constexpr size_t kSlotBytes = offload::kVirtioNetHdrSize + 65536;

class TunDeviceTest : public PrivateNetworkNamespaceTest {
  protected:
    void SetUp() override {
        PrivateNetworkNamespaceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) {
            return;
        }
        device_.emplace(DeviceMode::Tun, "tlio%d", /*offload=*/true);
        ASSERT_TRUE(device_->offloads().vnet_header);
        // FlowSpec's packets go from 192.168.53.5 to 192.168.60.5: the device's own address,
        // whose prefix routes the source back through the device (as rp_filter wants).
        Netlink netlink;
        netlink.add_address(device_->index(), *InterfaceAddress::parse("192.168.60.5/16"));
        netlink.set_link_up(device_->index(), true);

        receiver_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        ASSERT_TRUE(receiver_.valid());
        const int buffer = 8 << 20;
        ::setsockopt(receiver_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_port = htons(kPort);
        local.sin_addr.s_addr = htonl(0xc0a83c05);
        ASSERT_EQ(::bind(receiver_.get(), reinterpret_cast<sockaddr*>(&local), sizeof local), 0)
            << std::strerror(errno);
    }

    // The payloads that reach the socket, until `expected` did or a second passed without one.
    std::vector<std::vector<uint8_t>> receive(size_t expected) {
        std::vector<std::vector<uint8_t>> payloads;
        std::vector<uint8_t> buffer(65536);
        pollfd ready{receiver_.get(), POLLIN, 0};
        while (payloads.size() < expected && ::poll(&ready, 1, 1000) > 0) {
            ssize_t length;
            while ((length = ::recv(receiver_.get(), buffer.data(), buffer.size(), 0)) >= 0) {
                payloads.emplace_back(buffer.begin(), buffer.begin() + length);
            }
        }
        return payloads;
    }

    std::optional<TunDevice> device_;
    UniqueFd receiver_;
};

// Reads of what a local socket sends through the device; the parameter: through io_uring.
class TunReadTest : public TunDeviceTest, public ::testing::WithParamInterface<bool> {
  protected:
    void SetUp() override {
        TunDeviceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) {
            return;
        }
        sender_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        ASSERT_TRUE(sender_.valid());
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9999);
        to.sin_addr.s_addr = htonl(0xc0a86302);  // 192.168.99.2: through the device's /16
        ASSERT_EQ(::connect(sender_.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    }

    // The payloads of the UDP datagrams to port 9999 among `packets` (the kernel also sends
    // IPv6 router solicitations and the like through a new device).
    static void collect(const DeviceReadBatch& batch, size_t packets,
                        std::vector<std::string>& payloads) {
        for (size_t i = 0; i < packets; ++i) {
            const auto packet = batch.packet(i).subspan(offload::kVirtioNetHdrSize);
            if (packet.size() > 28 && packet[0] == 0x45 && packet[9] == 17 &&
                packet[22] == 9999 >> 8 && packet[23] == (9999 & 0xff)) {
                payloads.emplace_back(packet.begin() + 28, packet.end());
            }
        }
    }

    UniqueFd sender_;
};

INSTANTIATE_TEST_SUITE_P(IoUringOrNot, TunReadTest, ::testing::Bool(),
                         [](const auto& test) { return test.param ? "IoUring" : "ReadCalls"; });

TEST_P(TunReadTest, EveryPacketComesOutInOrderAndAnEmptyDeviceSaysSo) {
    DeviceReadBatch batch(device_->fd(), 16, kSlotBytes, GetParam());
    if (GetParam() && !batch.batched()) {
        GTEST_SKIP() << "io_uring is not available here (kernel.io_uring_disabled, seccomp)";
    }
    // More than one batch holds, so that reads continue where the previous batch stopped.
    std::vector<std::string> sent;
    for (int i = 0; i < 40; ++i) {
        sent.push_back("datagram " + std::to_string(i));
        ASSERT_EQ(::send(sender_.get(), sent.back().data(), sent.back().size(), 0),
                  static_cast<ssize_t>(sent.back().size()));
    }
    std::vector<std::string> received;
    DeviceReadBatch::Result result;
    std::vector<size_t> batch_sizes;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    do {
        result = batch.read();
        EXPECT_LE(result.packets, 16u);
        batch_sizes.push_back(result.packets);
        collect(batch, result.packets, received);
    } while (!(result.drained && received.size() >= sent.size()) &&
             std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(received, sent);
    EXPECT_TRUE(result.drained);
    // The first two packets come one read() each; a stream then goes through the ring.
    ASSERT_GE(batch_sizes.size(), 3u);
    EXPECT_EQ(batch_sizes[0], 1u);
    EXPECT_EQ(batch_sizes[1], 1u);
    if (GetParam()) {
        EXPECT_GT(*std::max_element(batch_sizes.begin(), batch_sizes.end()), 1u)
            << "40 queued packets never went through the ring";
    } else {
        EXPECT_EQ(*std::max_element(batch_sizes.begin(), batch_sizes.end()), 1u);
    }

    // Nothing queued: no packet, drained, and no waiting for one.
    result = batch.read();
    EXPECT_EQ(result.packets, 0u);
    EXPECT_TRUE(result.drained);
}

TEST_F(TunDeviceTest, AFloodOfSmallDatagramsIsTakenWholeAndArrivesInOrder) {
    // One receive batch's worth of equal datagrams of one flow, the case that coalesces most:
    // far more than one USO write may hold.
    if (!device_->offloads().uso) {
        GTEST_SKIP() << "this kernel takes no UDP segmentation offload writes (Linux < 6.2)";
    }
    constexpr size_t kDatagrams = 300;
    constexpr size_t kPayload = 64;
    std::vector<std::vector<uint8_t>> packets;
    std::vector<std::vector<uint8_t>> payloads;
    for (size_t i = 0; i < kDatagrams; ++i) {
        FlowSpec datagram;
        datagram.protocol = 17;
        datagram.ipv4_id = static_cast<uint16_t>(100 + i);
        payloads.push_back(pattern_payload(kPayload, static_cast<uint32_t>(i)));
        packets.push_back(build_packet(datagram, payloads.back()));
    }
    DeviceWriter writer(device_->fd(), /*vnet_header=*/true,
                        offload::CoalescerLimits{.max_packets = kDatagrams, .udp = true});
    Peer peer;
    for (const auto& packet : packets) {
        writer.add(packet, peer);
    }
    size_t writes = 0, written = 0, failed = 0;
    writer.flush([&](Peer&, size_t count, size_t, bool ok) {
        ++writes;
        (ok ? written : failed) += count;
    });
    EXPECT_EQ(failed, 0u);
    EXPECT_EQ(written, kDatagrams);
    EXPECT_TRUE(writer.coalescing()) << "a coalesced write was refused";
    EXPECT_LT(writes, kDatagrams / 10) << "the datagrams were not coalesced";

    EXPECT_EQ(receive(kDatagrams), payloads);
}

}  // namespace
}  // namespace tunlab
