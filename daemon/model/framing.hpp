#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace tunlab {

// How a wire protocol puts one inner packet into its datagram: `header` bytes before it, the
// packet zero-padded to a multiple of `pad_to` (never past `pad_limit`, and never shorter than
// itself), then `trailer` bytes. The data plane lays packets out this way, so that a protocol
// seals them where they are; datagrams of equal packets are equal, as one UDP GSO send needs.
// The default is the plain protocol's: the datagram is the packet.
struct Framing {
    size_t header = 0;
    size_t trailer = 0;
    size_t pad_to = 1;
    size_t pad_limit = SIZE_MAX;

    size_t padded(size_t packet) const {
        const size_t rounded = (packet + pad_to - 1) / pad_to * pad_to;
        return std::max(packet, std::min(rounded, pad_limit));
    }
    size_t datagram_size(size_t packet) const { return header + padded(packet) + trailer; }
    bool none() const { return header == 0 && trailer == 0 && pad_to == 1; }
};

}  // namespace tunlab
