#pragma once

// Receive side of TUN offloads: the IP packets of one receive batch from the network, before
// they are written into a TUN device opened with IFF_VNET_HDR. Consecutive TCP segments of one
// flow become one GSO super-packet (virtio_net_hdr NEEDS_CSUM + GSO_TCPV4/GSO_TCPV6, the TCP
// checksum field holding the pseudo-header sum), so that one write() carries up to 64 KB
// instead of one MSS, as Linux's GRO would build it. Everything else is written as it came,
// behind an all-zero header (GSO_NONE, flags 0), so the kernel judges it as without offloads.
//
// A segment joins a run only if the run stays lossless: cutting the super-packet again at
// gso_size (as the kernel does when it forwards it) gives back the original packets byte for
// byte. Hence, for segment B to join run A:
//  - both TCP with a verified TCP checksum (the originals are replaced by a partial checksum, so
//    a corrupt segment must not turn valid), IPv4 with a 20-byte header (verified header
//    checksum) and not a fragment, or IPv6 with TCP as next header. With `authenticated`
//    packets (a wire protocol whose authentication tag covers them: a packet corrupted on the
//    way never gets here) the checksums are taken as they are, as Linux's WireGuard marks its
//    decrypted packets CHECKSUM_UNNECESSARY;
//  - same addresses, ports, TOS/traffic class + flow label, TTL/hop limit, DF, TCP header
//    length, options bytes, urgent pointer, and the same ACK number and window: those fields
//    exist once in the super-packet, so a segment that changes them (a window update, a new
//    ACK) must not lose that change; in a bulk transfer they stay the same anyway;
//  - IPv4 id = previous id + 1 (what a Linux sender's TSO/GSO produces; re-segmenting numbers
//    the pieces the same way);
//  - flags ACK, or ACK|PSH on the segment that ends the run; never SYN/FIN/RST/URG/CWR/ECE;
//  - B.seq = end of A, B's payload non-empty and at most the first segment's (gso_size); a
//    shorter segment or a PSH ends the run;
//  - the super-packet stays within max_coalesced_size (at most 65535 bytes) and max_segments.
// With `udp` (a kernel that takes USO writes, Linux 6.2+), consecutive UDP datagrams of one
// flow coalesce the same way into a GSO_UDP_L4 super-packet: verified non-zero checksum (a
// zero IPv4 checksum would come back computed), same addresses, ports, TOS/TTL/DF (IPv4 id + 1)
// or traffic class/flow label/hop limit, every payload the first one's size but the last.
// Packets of one flow keep their order (a segment that cannot join closes its flow's run, and
// later segments start a new one after it); different flows may interleave.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "offload/virtio_net_hdr.hpp"
#include "offload/wire_format.hpp"

namespace tunlab::offload {

struct CoalescerLimits {
    size_t max_packets = 64;                   // held between flushes: add() refuses more
    size_t max_flows = 16;                     // runs that may still grow (then LRU closes)
    size_t max_coalesced_size = kMaxIpPacket;  // IP bytes of one super-packet, ≤ 65535
    // Packets in one super-packet. A USO write of more segments than the kernel's
    // UDP_MAX_SEGMENTS (64 on the kernels that first took USO writes, 128 on later ones) is
    // refused with EINVAL.
    size_t max_segments = 64;
    bool udp = false;            // coalesce UDP too (GSO_UDP_L4 writes)
    bool authenticated = false;  // the packets' checksums need no verifying (see above)
};

struct SegmentInfo;  // what the coalescer reads from one TCP or UDP packet (coalescer.cpp)

// One write() for the TUN device, as flush() hands it over.
struct CoalescedWrite {
    std::span<const uint8_t> bytes;  // virtio_net_hdr + IP packet: write exactly this
    size_t packets = 0;              // received packets in it
    size_t counted_bytes = 0;        // what counters count for them (add()'s), added up
    void* tag = nullptr;             // as given to add(): packets merge only with equal tags
};

class Coalescer {
  public:
    explicit Coalescer(CoalescerLimits limits = {});

    // Queues one IP packet (its IP version and length fields already checked by the caller,
    // although nothing here relies on that). The bytes are not copied: they must stay valid and
    // unchanged until flush(). `tag` is the caller's (e.g. the sending peer); `counted_bytes`
    // what its counters count for this packet (0: its size; a wire protocol may count its
    // message). Returns false, taking nothing, when max_packets are queued: flush() first.
    [[nodiscard]] bool add(std::span<const uint8_t> ip_packet, void* tag = nullptr,
                           size_t counted_bytes = 0);

    bool full() const { return packets_.size() >= limits_.max_packets; }
    bool empty() const { return packets_.empty(); }

    // Calls write_one(const CoalescedWrite&) once per write, in order, then forgets the batch.
    // The bytes live in a buffer of the coalescer until the next call to write_one.
    template <typename WriteOne>
    void flush(WriteOne&& write_one) {
        for (size_t run = 0; run < runs_.size(); ++run) {
            write_one(build_write(run));
        }
        clear();
    }

    // Forgets the batch without writing it.
    void clear();

  private:
    static constexpr uint32_t kNoPacket = UINT32_MAX;

    struct Packet {
        std::span<const uint8_t> bytes;
        uint32_t next = kNoPacket;  // the run's next packet
    };

    // Consecutive packets written as one; only TCP runs of verified segments can grow.
    struct Run {
        uint32_t first = 0;
        uint32_t last = 0;
        uint32_t count = 1;
        void* tag = nullptr;
        size_t counted_bytes = 0;  // the originals' counted bytes added up
        // For runs of TCP segments:
        bool ipv6 = false;
        uint8_t protocol = 0;  // kProtocolTcp or kProtocolUdp
        uint16_t ip_header_length = 0;
        uint16_t transport_header_length = 0;
        uint16_t segment_payload = 0;  // the first segment's payload: gso_size
        uint16_t last_payload = 0;
        uint32_t ip_size = 0;  // the super-packet's IP length
        uint32_t next_sequence = 0;
        uint16_t next_ipv4_id = 0;
        bool pushed = false;  // the last segment has PSH
    };

    bool can_join(const Run& run, const SegmentInfo& segment, std::span<const uint8_t> bytes,
                  void* tag) const;
    size_t find_open_run(const SegmentInfo& segment, std::span<const uint8_t> bytes,
                         void* tag) const;
    void close_open_run(size_t position);
    void open_run(uint32_t run);
    CoalescedWrite build_write(size_t run);

    CoalescerLimits limits_;
    std::vector<Packet> packets_;
    std::vector<Run> runs_;
    std::vector<uint32_t> open_runs_;  // runs that may still grow, least recently grown first
    std::vector<uint8_t> output_;      // one write: header + the largest IP packet
};

}  // namespace tunlab::offload
