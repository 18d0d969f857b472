#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "model/drop_reason.hpp"

namespace tunlab {

// Counters are written by exactly one data-plane thread and read by anyone. With a single
// writer, a relaxed load + store is enough (no read-modify-write, no lock) and readers see
// each value whole.
class Counter {
  public:
    void add(uint64_t amount) {
        value_.store(value_.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
    }
    void set(uint64_t value) { value_.store(value, std::memory_order_relaxed); }
    uint64_t read() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> value_{0};
};

using CounterMap = std::map<std::string, uint64_t>;

struct TrafficCounters {
    Counter rx_packets;
    Counter rx_bytes;
    Counter tx_packets;
    Counter tx_bytes;
    Counter last_receive_us;  // µs since the epoch; 0 = never
    Counter last_send_us;

    void add_rx(size_t bytes, uint64_t now_us, uint64_t packets = 1) {
        rx_packets.add(packets);
        rx_bytes.add(bytes);
        last_receive_us.set(now_us);
    }
    void add_tx(size_t bytes, uint64_t now_us, uint64_t packets = 1) {
        tx_packets.add(packets);
        tx_bytes.add(bytes);
        last_send_us.set(now_us);
    }
    void add_to(CounterMap& map) const;
    // Only from the writing thread, like every other change.
    void reset();
};

// A protocol with handshakes (WireGuard) counts them; the names are API (counter keys).
enum class HandshakeCounter : size_t {
    InitiationsSent,
    InitiationsReceived,  // consumed: authenticated and answered
    ResponsesSent,
    ResponsesReceived,  // consumed
    CookiesSent,        // cookie replies to initiations while under load
    CookiesReceived,    // consumed
    Completed,          // sessions that began (either side)
    Count,
};
inline constexpr std::array<std::string_view, static_cast<size_t>(HandshakeCounter::Count)>
    kHandshakeCounterNames = {
        "handshake_initiations_sent", "handshake_initiations_received",
        "handshake_responses_sent",   "handshake_responses_received",
        "handshake_cookies_sent",     "handshake_cookies_received",
        "handshakes_completed",
};

struct TunnelCounters : TrafficCounters {
    Counter rx_keepalives;
    Counter rx_handshakes;  // handshake messages and cookie replies taken (not dropped)
    std::array<Counter, kDropReasonCount> drops;
    std::array<Counter, static_cast<size_t>(HandshakeCounter::Count)> handshakes;
    // Set before the data plane starts by a protocol with handshakes: they are then shown.
    bool counts_handshakes = false;

    void handshake(HandshakeCounter counter) { handshakes[static_cast<size_t>(counter)].add(1); }

    void drop(DropReason reason, uint64_t packets = 1) {
        drops[static_cast<size_t>(reason)].add(packets);
    }
    void reset();
    CounterMap snapshot() const;
};

// Wall-clock µs since the epoch (what counters and the bus show).
uint64_t now_microseconds();
// Monotonic µs (what timers run on: the wall clock may jump).
uint64_t monotonic_microseconds();

}  // namespace tunlab
