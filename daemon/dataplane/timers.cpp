// The data plane's tick: once a second, learned peers that went quiet are forgotten and the
// protocol does what is due (keepalives, moves that had to wait).

#include "dataplane/data_plane.hpp"
#include "dataplane/sizes.hpp"

namespace tunlab {

using namespace dataplane;

void DataPlane::on_timer() {
    const uint64_t now = now_microseconds();
    timer_due_us_ = monotonic_microseconds() + kTickSeconds * 1'000'000;
    table_.expire_idle(now);
    protocol_->tick(now);
}

}  // namespace tunlab
