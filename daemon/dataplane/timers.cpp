// The data plane's tick: once a second, learned peers that went quiet are forgotten and the
// protocol does what is due (keepalives, moves that had to wait).

#include "dataplane/data_plane.hpp"

namespace tunlab {

void DataPlane::on_timer() {
    const uint64_t now = now_microseconds();
    table_.expire_idle(now);
    protocol_->tick(now, *this);
}

}  // namespace tunlab
