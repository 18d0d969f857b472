#include "peers/counters.hpp"

#include <chrono>

namespace tunlab {

void TrafficCounters::add_to(CounterMap& map) const {
    map["rx_packets"] = rx_packets.read();
    map["rx_bytes"] = rx_bytes.read();
    map["tx_packets"] = tx_packets.read();
    map["tx_bytes"] = tx_bytes.read();
}

void TrafficCounters::reset() {
    for (Counter* counter : {&rx_packets, &rx_bytes, &tx_packets, &tx_bytes}) {
        counter->set(0);
    }
}

void TunnelCounters::reset() {
    TrafficCounters::reset();
    rx_keepalives.set(0);
    rx_handshakes.set(0);
    for (Counter& counter : drops) {
        counter.set(0);
    }
    for (Counter& counter : handshakes) {
        counter.set(0);
    }
}

CounterMap TunnelCounters::snapshot() const {
    CounterMap map;
    add_to(map);
    map["rx_keepalives"] = rx_keepalives.read();
    for (size_t i = 0; i < kDropReasonCount; ++i) {
        map["drop_" + std::string(kDropReasonNames[i])] = drops[i].read();
    }
    if (counts_handshakes) {
        map["rx_handshakes"] = rx_handshakes.read();
        for (size_t i = 0; i < handshakes.size(); ++i) {
            map[std::string(kHandshakeCounterNames[i])] = handshakes[i].read();
        }
    }
    return map;
}

uint64_t monotonic_microseconds() {
    using namespace std::chrono;
    return static_cast<uint64_t>(
        duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

uint64_t now_microseconds() {
    using namespace std::chrono;
    return static_cast<uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace tunlab
