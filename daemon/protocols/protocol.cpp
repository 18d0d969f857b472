#include "protocols/protocol.hpp"

#include "protocols/plain/plain_protocol.hpp"
#include "protocols/wireguard_protocol.hpp"

namespace tunlab {

std::unique_ptr<Protocol> make_protocol(const ProtocolSettings& settings, PeerTable& table,
                                        const Forwarding& forwarding, Wire& wire,
                                        TunnelCounters& counters) {
    switch (settings.kind) {
        case ProtocolKind::WireGuard:
            return std::make_unique<WireGuardProtocol>(settings, table, wire, counters);
        case ProtocolKind::Plain:
            break;
    }
    return std::make_unique<PlainProtocol>(table, forwarding, wire);
}

}  // namespace tunlab
