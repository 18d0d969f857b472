#include "peers/forwarding.hpp"

#include <cstring>

#include "peers/inner_packet.hpp"

namespace tunlab {

namespace {

constexpr size_t kMacLength = 6;

bool is_unicast(const MacAddress& mac) {
    return (mac[0] & 1u) == 0;
}

MacAddress mac_at(const uint8_t* data) {
    MacAddress mac;
    std::memcpy(mac.data(), data, mac.size());
    return mac;
}

// TUN: IP packets, routed by destination over every peer's allowed IPs.
class IpForwarding final : public Forwarding {
  public:
    explicit IpForwarding(PeerTable& table) : table_(table) {}

    Destination destination(std::span<const uint8_t> packet) const override {
        const auto addresses = read_ip_addresses(packet);
        return {addresses ? table_.route(addresses->destination) : nullptr, false};
    }

    std::variant<InnerSource, DropReason> inspect(std::span<const uint8_t> inner,
                                                  size_t limit) const override {
        const auto checked = validate_ip_packet(inner, limit);
        if (const auto* reason = std::get_if<DropReason>(&checked)) {
            return *reason;
        }
        return InnerSource{std::get<IpHeaderInfo>(checked).source, {}};
    }

    Peer* owner(const InnerSource& source) const override { return table_.route(*source.ip); }

    bool accept(Peer& peer, const InnerSource& source, uint64_t) override {
        // A learned client sending from another of its addresses (its IPv6 after its IPv4)
        // learns that one too, if nobody else holds it.
        return PeerTable::allows_source(peer, *source.ip) || table_.learn_address(peer, *source.ip);
    }

  private:
    PeerTable& table_;
};

// TAP: Ethernet frames, switched by destination address; what is not known goes to everyone.
class EthernetSwitch final : public Forwarding {
  public:
    explicit EthernetSwitch(PeerTable& table) : table_(table) {}

    Destination destination(std::span<const uint8_t> frame) const override {
        if (frame.size() < kEthernetHeaderLength) {
            return {};
        }
        const MacAddress to = mac_at(frame.data());
        if (is_unicast(to)) {
            if (Peer* peer = table_.by_mac(to)) {
                return {peer, false};
            }
        }
        return {nullptr, true};
    }

    std::variant<InnerSource, DropReason> inspect(std::span<const uint8_t> inner,
                                                  size_t limit) const override {
        if (const auto reason = validate_ethernet_frame(inner, limit)) {
            return *reason;
        }
        return InnerSource{std::nullopt, mac_at(inner.data() + kMacLength)};
    }

    Peer* owner(const InnerSource& source) const override { return table_.by_mac(source.mac); }

    bool accept(Peer& peer, const InnerSource& source, uint64_t now_us) override {
        if (is_unicast(source.mac)) {
            table_.remember_mac(source.mac, peer, now_us);
        }
        return true;
    }

  private:
    PeerTable& table_;
};

}  // namespace

std::unique_ptr<Forwarding> make_forwarding(DeviceMode mode, PeerTable& table) {
    if (mode == DeviceMode::Tap) {
        return std::make_unique<EthernetSwitch>(table);
    }
    return std::make_unique<IpForwarding>(table);
}

}  // namespace tunlab
