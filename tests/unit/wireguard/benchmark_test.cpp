// Not a pass/fail test: prints what the per-packet crypto costs on this machine (ns per call,
// single thread), so that a regression is visible in the test log. Meaningful in a release
// build; under ASan the figures are the sanitizer's.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "crypto/aead.hpp"
#include "crypto/secret_key.hpp"
#include "protocols/wireguard/transport.hpp"
#include "test_support.hpp"

namespace tunlab::wireguard {
namespace {

using Clock = std::chrono::steady_clock;

double nanoseconds_per(Clock::duration elapsed, size_t iterations) {
    return static_cast<double>(
               std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()) /
           static_cast<double>(iterations);
}

TEST(Benchmark, AeadInPlaceNanosecondsPerPacket) {
    crypto::SecretKey key;
    test_support::SeededRandom(9).fill(key.bytes());
    for (const size_t size : {64u, 1420u}) {
        const size_t iterations = size > 512 ? 20000 : 100000;
        std::vector<uint8_t> buffer(size + crypto::kAeadTagSize, 0x5a);
        const auto data = std::span(buffer).first(size);
        const auto tag = std::span(buffer).subspan(size).first<crypto::kAeadTagSize>();
        ASSERT_TRUE(crypto::seal_in_place(key.bytes(), 0, data, tag));  // warm the context

        auto start = Clock::now();
        for (size_t i = 0; i < iterations; ++i) {
            if (!crypto::seal_in_place(key.bytes(), i, data, tag)) {
                FAIL();
            }
        }
        const double seal_ns = nanoseconds_per(Clock::now() - start, iterations);

        // Open what was sealed last, restored before each call (the copy is timed separately).
        const std::vector<uint8_t> sealed = buffer;
        const uint64_t counter = iterations - 1;
        start = Clock::now();
        for (size_t i = 0; i < iterations; ++i) {
            std::copy(sealed.begin(), sealed.end(), buffer.begin());
        }
        const double copy_ns = nanoseconds_per(Clock::now() - start, iterations);
        start = Clock::now();
        for (size_t i = 0; i < iterations; ++i) {
            std::copy(sealed.begin(), sealed.end(), buffer.begin());
            if (!crypto::open_in_place(key.bytes(), counter, buffer)) {
                FAIL();
            }
        }
        const double open_ns = nanoseconds_per(Clock::now() - start, iterations) - copy_ns;
        std::printf(
            "[ benchmark ] %4zu bytes: seal_in_place %7.0f ns (%.2f GB/s), "
            "open_in_place %7.0f ns (%.2f GB/s)\n",
            size, seal_ns, static_cast<double>(size) / seal_ns, open_ns,
            static_cast<double>(size) / open_ns);
        RecordProperty("seal_ns_" + std::to_string(size), static_cast<int>(seal_ns));
        RecordProperty("open_ns_" + std::to_string(size), static_cast<int>(open_ns));
    }
}

TEST(Benchmark, TransportMessageNanosecondsPerPacket) {
    // seal_transport/open_transport: header, padding, AEAD and the replay window together.
    Keypair sender;
    Keypair receiver;
    test_support::SeededRandom(10).fill(sender.send_key.bytes());
    receiver.receive_key.assign(sender.send_key.bytes());
    sender.remote_index = receiver.local_index = 7;
    constexpr size_t kPacket = 1420 - kTransportOverhead;  // a full datagram at MTU 1420
    constexpr size_t kIterations = 20000;
    const size_t buffer_size = kTransportHeaderSize + kPacket + kMaxPadding + kTagSize;
    std::vector<std::vector<uint8_t>> datagrams(kIterations,
                                                std::vector<uint8_t>(buffer_size, 0x45));
    std::vector<size_t> sizes(kIterations);
    const auto start = Clock::now();
    for (size_t i = 0; i < kIterations; ++i) {
        const auto sealed = seal_transport(sender, datagrams[i], kPacket, 1420, 0);
        if (sealed.status != TransportStatus::Ok) {
            FAIL();
        }
        sizes[i] = sealed.size;
    }
    const double seal_ns = nanoseconds_per(Clock::now() - start, kIterations);
    for (size_t i = 0; i < kIterations; ++i) {
        datagrams[i].resize(sizes[i]);
    }
    const auto open_start = Clock::now();
    for (auto& datagram : datagrams) {
        if (open_transport(receiver, datagram, 0).status != TransportStatus::Ok) {
            FAIL();
        }
    }
    const double open_ns = nanoseconds_per(Clock::now() - open_start, kIterations);
    std::printf("[ benchmark ] %zu-byte packet: seal_transport %.0f ns, open_transport %.0f ns\n",
                kPacket, seal_ns, open_ns);
}

}  // namespace
}  // namespace tunlab::wireguard
