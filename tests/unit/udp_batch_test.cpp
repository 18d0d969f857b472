// The batched UDP paths against the real kernel, on the loopback of a private network
// namespace: what one sendmmsg with UDP segmentation offload puts on the wire, what one
// recvmmsg with UDP_GRO hands back, and the fallback when the kernel refuses to segment.
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <numeric>
#include <vector>

#include "private_network_namespace.hpp"
#include "system/netlink.hpp"
#include "system/udp_receive_batch.hpp"
#include "system/udp_send_queue.hpp"
#include "system/udp_socket.hpp"

namespace tunlab {
namespace {

class UdpBatchTest : public PrivateNetworkNamespaceTest {
  protected:
    void SetUp() override {
        PrivateNetworkNamespaceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) {
            return;
        }
        const unsigned loopback = if_nametoindex("lo");
        Netlink().set_link_up(loopback, true);
        Netlink().set_mtu(loopback, 65536);  // a test lowers it
    }

    // `count` datagrams of `size` bytes, the last `last` bytes, each filled with its index so
    // that the receiver can tell them apart and check their order.
    static std::vector<uint8_t> train(size_t size, size_t count, size_t last) {
        std::vector<uint8_t> bytes;
        for (size_t i = 0; i < count; ++i) {
            bytes.insert(bytes.end(), i + 1 == count ? last : size, static_cast<uint8_t>(i));
        }
        return bytes;
    }

    // Pushes `bytes` as one train and flushes; returns the one Message the report saw.
    static UdpSendQueue::Message send_train(UdpSendQueue& queue, const Endpoint& to,
                                            const std::vector<uint8_t>& bytes, size_t size) {
        std::memcpy(queue.tail(), bytes.data(), bytes.size());
        queue.push(to, bytes.size(), size, nullptr);
        UdpSendQueue::Message total{};
        queue.flush([&](const UdpSendQueue::Message& message) {
            total.length += message.length;
            total.sent_datagrams += message.sent_datagrams;
            total.sent_bytes += message.sent_bytes;
        });
        return total;
    }

    // Every datagram that arrives within a second of the first, split as the batch splits.
    static std::vector<std::vector<uint8_t>> receive_all(int fd, size_t expected) {
        UdpReceiveBatch batch(8, 65536);
        std::vector<std::vector<uint8_t>> datagrams;
        pollfd ready{fd, POLLIN, 0};
        while (datagrams.size() < expected && ::poll(&ready, 1, 1000) == 1) {
            const size_t count = batch.receive(fd);
            for (size_t i = 0; i < count; ++i) {
                const auto message = batch.message(i);
                EXPECT_FALSE(message.truncated);
                UdpReceiveBatch::for_each_datagram(message, [&](std::span<const uint8_t> bytes) {
                    datagrams.emplace_back(bytes.begin(), bytes.end());
                });
            }
        }
        return datagrams;
    }

    static void expect_train(const std::vector<std::vector<uint8_t>>& datagrams, size_t size,
                             size_t count, size_t last) {
        ASSERT_EQ(datagrams.size(), count);
        for (size_t i = 0; i < count; ++i) {
            const size_t expected_size = i + 1 == count ? last : size;
            ASSERT_EQ(datagrams[i].size(), expected_size) << "datagram " << i;
            EXPECT_EQ(datagrams[i], std::vector<uint8_t>(expected_size, static_cast<uint8_t>(i)))
                << "datagram " << i;
        }
    }
};

Endpoint loopback(uint16_t port) {
    return Endpoint(*IpAddress::parse("127.0.0.1"), port);
}

TEST_F(UdpBatchTest, OneSegmentedSendArrivesAsSeparateDatagrams) {
    UdpSocket sender(*IpAddress::parse("127.0.0.1"), 0);
    ASSERT_TRUE(sender.segmentation_offload()) << "this kernel has UDP_SEGMENT since 4.18";
    UdpSocket receiver(*IpAddress::parse("127.0.0.1"), 0);
    // A receiver that does not ask for GRO gets each datagram on its own, as a peer would.
    const int off = 0;
    ASSERT_EQ(setsockopt(receiver.fd(), SOL_UDP, UDP_GRO, &off, sizeof off), 0);
    UdpSendQueue queue(sender.fd(), true, 1 << 20, 16);
    const auto to = loopback(receiver.bound_port());

    const auto sent = send_train(queue, to, train(1400, 30, 123), 1400);
    EXPECT_EQ(sent.sent_datagrams, 30u);
    EXPECT_EQ(sent.sent_bytes, 29u * 1400 + 123);
    expect_train(receive_all(receiver.fd(), 30), 1400, 30, 123);
}

TEST_F(UdpBatchTest, TrainsLargerThanOneSendAreSplit) {
    UdpSocket sender(*IpAddress::parse("127.0.0.1"), 0);
    UdpSocket receiver(*IpAddress::parse("127.0.0.1"), 0);
    UdpSendQueue queue(sender.fd(), sender.segmentation_offload(), 1 << 20, 16);
    // 100 × 1000 bytes: more datagrams (64) and more bytes (65507) than one send carries.
    const auto sent =
        send_train(queue, loopback(receiver.bound_port()), train(1000, 100, 1000), 1000);
    EXPECT_EQ(sent.sent_datagrams, 100u);
    expect_train(receive_all(receiver.fd(), 100), 1000, 100, 1000);
}

TEST_F(UdpBatchTest, ReceiveOffloadIsSplitBackIntoTheSameDatagrams) {
    UdpSocket sender(*IpAddress::parse("127.0.0.1"), 0);
    UdpSocket receiver(*IpAddress::parse("127.0.0.1"), 0);
    ASSERT_TRUE(receiver.receive_offload());
    UdpSendQueue queue(sender.fd(), true, 1 << 20, 16);
    const auto to = loopback(receiver.bound_port());
    send_train(queue, to, train(1200, 40, 700), 1200);

    UdpReceiveBatch batch(8, 65536);
    pollfd ready{receiver.fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&ready, 1, 1000), 1);
    ASSERT_GE(batch.receive(receiver.fd()), 1u);
    // On loopback the segmented send reaches a GRO socket in one piece.
    const auto first = batch.message(0);
    EXPECT_EQ(first.segment_size, 1200u);
    EXPECT_EQ(first.data.size(), 39u * 1200 + 700);
    std::vector<std::vector<uint8_t>> datagrams;
    UdpReceiveBatch::for_each_datagram(first, [&](std::span<const uint8_t> bytes) {
        datagrams.emplace_back(bytes.begin(), bytes.end());
    });
    expect_train(datagrams, 1200, 40, 700);
}

TEST_F(UdpBatchTest, SegmentsLargerThanThePathMtuFallBackToSingleDatagrams) {
    // The kernel refuses (EINVAL) to segment into datagrams larger than the path MTU; each
    // datagram must then go out on its own, fragmented, rather than the train being lost.
    Netlink().set_mtu(if_nametoindex("lo"), 1280);
    UdpSocket sender(*IpAddress::parse("127.0.0.1"), 0);
    UdpSocket receiver(*IpAddress::parse("127.0.0.1"), 0);
    UdpSendQueue queue(sender.fd(), true, 1 << 20, 16);
    const auto sent =
        send_train(queue, loopback(receiver.bound_port()), train(1400, 5, 1400), 1400);
    EXPECT_EQ(sent.sent_datagrams, 5u);
    expect_train(receive_all(receiver.fd(), 5), 1400, 5, 1400);
    // EINVAL is about this train, not the device: later trains still use the offload.
    EXPECT_TRUE(queue.segmentation_offload());
}

TEST_F(UdpBatchTest, WithoutOffloadEveryDatagramIsItsOwnMessage) {
    UdpSocket sender(*IpAddress::parse("127.0.0.1"), 0);
    UdpSocket receiver(*IpAddress::parse("127.0.0.1"), 0);
    UdpSendQueue queue(sender.fd(), false, 1 << 20, 16);
    const auto sent = send_train(queue, loopback(receiver.bound_port()), train(1000, 10, 10), 1000);
    EXPECT_EQ(sent.sent_datagrams, 10u);
    expect_train(receive_all(receiver.fd(), 10), 1000, 10, 10);
}

TEST_F(UdpBatchTest, AFailedDestinationDoesNotStopTheOthers) {
    UdpSocket sender(*IpAddress::parse("127.0.0.1"), 0);
    UdpSocket receiver(*IpAddress::parse("127.0.0.1"), 0);
    UdpSendQueue queue(sender.fd(), true, 1 << 20, 16);
    // No route to this address in the namespace: sendmmsg fails on that message only.
    const Endpoint unreachable(*IpAddress::parse("203.0.113.1"), 9);
    const auto good = loopback(receiver.bound_port());
    std::memset(queue.tail(), 7, 100);
    queue.push(unreachable, 100, 100, nullptr);
    std::memset(queue.tail(), 0, 100);
    queue.push(good, 100, 100, nullptr);
    std::vector<size_t> sent;
    queue.flush(
        [&](const UdpSendQueue::Message& message) { sent.push_back(message.sent_datagrams); });
    EXPECT_EQ(sent, (std::vector<size_t>{0, 1}));
    expect_train(receive_all(receiver.fd(), 1), 100, 1, 100);
}

TEST_F(UdpBatchTest, LoneDatagramsToOneEndpointLeaveAsOneTrain) {
    UdpSocket sender(*IpAddress::parse("127.0.0.1"), 0);
    UdpSocket receiver(*IpAddress::parse("127.0.0.1"), 0);
    UdpSocket other(*IpAddress::parse("127.0.0.1"), 0);
    const int off = 0;
    ASSERT_EQ(setsockopt(receiver.fd(), SOL_UDP, UDP_GRO, &off, sizeof off), 0);
    UdpSendQueue queue(sender.fd(), true, 1 << 20, 64);
    const auto to = loopback(receiver.bound_port());
    const auto elsewhere = loopback(other.bound_port());
    // Ten 100-byte datagrams, one 60-byte one (ends the train), one more, and one for
    // another endpoint in between: three messages for the first endpoint, one for the other.
    const auto push = [&](const Endpoint& where, size_t size, uint8_t fill) {
        std::memset(queue.tail(), fill, size);
        queue.push(where, size, size, nullptr);
    };
    for (uint8_t i = 0; i < 10; ++i) {
        push(to, 100, i);
    }
    push(to, 60, 10);
    push(to, 100, 11);
    push(elsewhere, 100, 99);
    push(to, 100, 12);
    std::vector<size_t> datagrams;
    queue.flush([&](const UdpSendQueue::Message& message) {
        EXPECT_EQ(message.sent_datagrams, message.datagrams());
        datagrams.push_back(message.datagrams());
    });
    EXPECT_EQ(datagrams, (std::vector<size_t>{11, 1, 1, 1}));
    const auto received = receive_all(receiver.fd(), 13);
    ASSERT_EQ(received.size(), 13u);
    for (size_t i = 0; i < 13; ++i) {
        EXPECT_EQ(received[i], std::vector<uint8_t>(i == 10 ? 60 : 100, static_cast<uint8_t>(i)))
            << "datagram " << i;
    }
    const auto to_other = receive_all(other.fd(), 1);
    ASSERT_EQ(to_other.size(), 1u);
    EXPECT_EQ(to_other[0], std::vector<uint8_t>(100, 99));
}

}  // namespace
}  // namespace tunlab
