#include "protocols/protocol.hpp"

#include "protocols/plain/plain_protocol.hpp"

namespace tunlab {

std::unique_ptr<Protocol> make_protocol(ProtocolKind kind, PeerTable& table,
                                        const Forwarding& forwarding) {
    switch (kind) {
        case ProtocolKind::Plain:
            break;
    }
    return std::make_unique<PlainProtocol>(table, forwarding);
}

}  // namespace tunlab
