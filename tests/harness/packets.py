"""Packets for hostile input: IPv4/IPv6 packets with any header field falsified, whole
IPv4+UDP datagrams for a raw socket, RawUdpSender (UDP from any source port of one address in
a lab host), and paced_send (many datagrams at a given rate)."""

from __future__ import annotations

import errno
import socket
import struct
import time
from typing import Any, Sequence

from harness.netns import socket_in_namespace

def internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_reply(size: int, identifier: int = 0x7e57) -> bytes:
    """An ICMP echo reply of `size` bytes: delivered to a host, it is silently ignored, so a
    hostile packet that gets through adds no traffic of its own."""
    body = struct.pack("!BBHHH", 0, 0, 0, identifier, 1) + bytes(size - 8)
    return body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]


def ipv4(source: str, destination: str, total_size: int = 60, *, version: int = 4,
         ihl: int = 5, total_length: int | None = None) -> bytes:
    """An IPv4 packet (ICMP echo reply inside) of `total_size` bytes; the keywords falsify
    header fields."""
    header = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0,
                         total_size if total_length is None else total_length,
                         0x1234, 0, 64, socket.IPPROTO_ICMP, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    return header + echo_reply(total_size - 20)


def ipv6(source: str, destination: str, total_size: int = 60, *,
         payload_length: int | None = None) -> bytes:
    header = struct.pack("!IHBB16s16s", 6 << 28,
                         total_size - 40 if payload_length is None else payload_length,
                         59, 64,  # 59: no next header
                         socket.inet_pton(socket.AF_INET6, source),
                         socket.inet_pton(socket.AF_INET6, destination))
    return header + bytes(total_size - 40)


def udp_over_ipv4(source: str, source_port: int, destination: str, destination_port: int,
                  payload: bytes) -> bytes:
    """A whole IPv4+UDP datagram for a raw socket (IPPROTO_RAW), so that one socket can send
    from any source port. UDP checksum 0: none, which IPv4 allows. The kernel fills in the IP
    checksum."""
    udp = struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64,
                         socket.IPPROTO_UDP, 0, socket.inet_aton(source),
                         socket.inet_aton(destination))
    return header + udp


class RawUdpSender:
    """Sends UDP from any source port of one address, through one raw socket in a lab host."""

    def __init__(self, ns: str, source: str):
        self.source = source
        self.sock = socket_in_namespace(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)

    def datagram(self, source_port: int, destination: tuple[str, int], payload: bytes) -> bytes:
        return udp_over_ipv4(self.source, source_port, destination[0], destination[1], payload)

    def close(self) -> None:
        self.sock.close()


def paced_send(items: Sequence[tuple[Any, bytes, Any]], rate: float | None,
               burst: int = 32, deadline: float | None = None) -> int:
    """Sends (socket, bytes, address) items in order, `rate` per second in bursts (None: as
    fast as possible). Returns how many went out; stops early at `deadline` (monotonic).
    A send that fails with ENOBUFS/EAGAIN is retried after a short wait, so that the count
    returned is what the network was handed."""
    sent = 0
    start = time.monotonic()
    for sock, payload, address in items:
        while True:
            try:
                sock.sendto(payload, address)
                break
            except (BlockingIOError, OSError) as error:
                if isinstance(error, BlockingIOError) or error.errno == errno.ENOBUFS:
                    time.sleep(0.0005)
                    continue
                raise
        sent += 1
        if rate is not None and sent % burst == 0:
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if deadline is not None and sent % burst == 0 and time.monotonic() > deadline:
            break
    return sent

