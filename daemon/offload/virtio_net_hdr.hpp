#pragma once

// The header that a TUN device opened with IFF_VNET_HDR puts before every packet it hands out,
// and expects before every packet written to it (struct virtio_net_hdr, 10 bytes: the device's
// default vnet header size; TUNSETVNETHDRSZ must not change it). It says whether the packet
// is a GSO super-packet (to be cut into gso_size pieces) and whether a checksum is left to
// complete (NEEDS_CSUM: the field at csum_start + csum_offset holds only the pseudo-header sum).

#include <endian.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace tunlab::offload {

// The values of <linux/virtio_net.h>, which C++ cannot include (a struct in it has a member
// named `class`).
inline constexpr size_t kVirtioNetHdrSize = 10;

inline constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr uint8_t kDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID

inline constexpr uint8_t kGsoNone = 0;   // VIRTIO_NET_HDR_GSO_NONE
inline constexpr uint8_t kGsoTcpV4 = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr uint8_t kGsoTcpV6 = 4;  // VIRTIO_NET_HDR_GSO_TCPV6
inline constexpr uint8_t kGsoUdpL4 = 5;  // VIRTIO_NET_HDR_GSO_UDP_L4 (Linux 6.2, USO)
// Or'ed into gso_type: the TCP super-packet carries CWR (only its first segment may keep it).
inline constexpr uint8_t kGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN

// The fields in host byte order. On the wire they are little-endian: TUN uses the legacy
// virtio layout, which is native endian, and tunlab targets little-endian hosts (the
// conversion below keeps it right on a big-endian host that sets TUNSETVNETLE).
struct VirtioNetHeader {
    uint8_t flags = 0;     // kNeedsCsum, kDataValid
    uint8_t gso_type = 0;  // kGso*, possibly | kGsoEcn
    uint16_t hdr_len = 0;  // IP + transport header length (informational: see segmenter)
    uint16_t gso_size = 0;
    uint16_t csum_start = 0;   // from the start of the IP header
    uint16_t csum_offset = 0;  // from csum_start: 16 for TCP, 6 for UDP

    uint8_t gso_kind() const { return static_cast<uint8_t>(gso_type & ~kGsoEcn); }
    friend bool operator==(const VirtioNetHeader&, const VirtioNetHeader&) = default;
};

inline uint16_t load_le16(const uint8_t* bytes) {
    uint16_t value;
    std::memcpy(&value, bytes, sizeof value);
    return le16toh(value);
}

inline void store_le16(uint8_t* bytes, uint16_t value) {
    const uint16_t little = htole16(value);
    std::memcpy(bytes, &little, sizeof little);
}

// nullopt when `bytes` is shorter than the header.
inline std::optional<VirtioNetHeader> read_virtio_net_header(std::span<const uint8_t> bytes) {
    if (bytes.size() < kVirtioNetHdrSize) {
        return std::nullopt;
    }
    VirtioNetHeader header;
    header.flags = bytes[0];
    header.gso_type = bytes[1];
    header.hdr_len = load_le16(&bytes[2]);
    header.gso_size = load_le16(&bytes[4]);
    header.csum_start = load_le16(&bytes[6]);
    header.csum_offset = load_le16(&bytes[8]);
    return header;
}

inline void write_virtio_net_header(const VirtioNetHeader& header,
                                    std::span<uint8_t, kVirtioNetHdrSize> bytes) {
    bytes[0] = header.flags;
    bytes[1] = header.gso_type;
    store_le16(&bytes[2], header.hdr_len);
    store_le16(&bytes[4], header.gso_size);
    store_le16(&bytes[6], header.csum_start);
    store_le16(&bytes[8], header.csum_offset);
}

}  // namespace tunlab::offload
