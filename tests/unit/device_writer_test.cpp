// DeviceWriter's accounting and its run-time fallback, against real file descriptors.
#include "dataplane/device_writer.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

#include "offload_packets.hpp"
#include "util/unique_fd.hpp"

namespace tunlab {
namespace {

using offload::test_support::build_packet;
using offload::test_support::FlowSpec;
using offload::test_support::pattern_payload;

// `count` consecutive TCP segments of one flow (what the coalescer merges).
std::vector<std::vector<uint8_t>> segments(size_t count) {
    std::vector<std::vector<uint8_t>> packets;
    for (size_t i = 0; i < count; ++i) {
        FlowSpec flow;
        flow.sequence = static_cast<uint32_t>(1000 + i * 1000);
        flow.ipv4_id = static_cast<uint16_t>(10 + i);
        packets.push_back(build_packet(flow, pattern_payload(1000, static_cast<uint32_t>(i))));
    }
    return packets;
}

struct Report {
    size_t writes = 0;
    size_t written_packets = 0;
    size_t failed_packets = 0;
};

Report flush(DeviceWriter& writer) {
    Report report;
    writer.flush([&](Peer&, size_t packets, size_t, bool written) {
        ++report.writes;
        (written ? report.written_packets : report.failed_packets) += packets;
    });
    return report;
}

TEST(DeviceWriter, CoalescedRunIsOneWriteCountingEveryPacket) {
    int ends[2];
    ASSERT_EQ(pipe(ends), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    DeviceWriter writer(write_end.get(), /*vnet_header=*/true, {.max_packets = 64});
    Peer peer;
    const auto packets = segments(5);
    for (const auto& packet : packets) {
        writer.add(packet, peer);
    }
    const Report report = flush(writer);
    EXPECT_EQ(report.writes, 1u);
    EXPECT_EQ(report.written_packets, 5u);
    EXPECT_TRUE(writer.coalescing());
}

TEST(DeviceWriter, AKernelThatRefusesCoalescedWritesTurnsCoalescingOff) {
    // An eventfd takes only 8-byte writes and answers EINVAL to anything else: the answer a
    // kernel with broken GSO writes gave wireguard-go.
    UniqueFd refusing(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    ASSERT_TRUE(refusing.valid());
    DeviceWriter writer(refusing.get(), true, {.max_packets = 64});
    Peer peer;
    const auto packets = segments(5);
    for (const auto& packet : packets) {
        writer.add(packet, peer);
    }
    const Report refused = flush(writer);
    EXPECT_EQ(refused.failed_packets, 5u) << "the refused write's packets are lost, and counted";
    EXPECT_FALSE(writer.coalescing());

    // From now on every packet is its own write (here refused too, one by one).
    for (const auto& packet : packets) {
        writer.add(packet, peer);
    }
    const Report after = flush(writer);
    EXPECT_EQ(after.writes, 5u);
    EXPECT_EQ(after.failed_packets, 5u);
}

}  // namespace
}  // namespace tunlab
