"""A TAP server under attack: spoofed learned peers must not turn its broadcasts into a flood at
someone else's address, its flooding is paced, and filling its MAC table does not steal a real
peer's frames.

The server-router runs a TAP tunnel that learns peers (as the lab's does), with two configured
peers: U (a tunlabd client) and W, a plain UDP socket in U2 that only counts what arrives. The
attacker is U with a raw socket: it can put any source address on its datagrams, here U2's
(10.9.0.6), the victim.
"""

from __future__ import annotations

import socket
import struct
import time

from harness.counters import counter_deltas
from harness.netns import socket_in_namespace
from harness.packets import RawUdpSender
from harness.process import wait_until
from harness.seed import SERVER_ADDRESS, SERVER_PORT, SERVER_TUNNEL_ADDRESS, U2_ADDRESS, U_ADDRESS

U_PORT = 41000
W_PORT = 42000
VICTIM = U2_ADDRESS
SPOOFED_PEERS = 300
ATTACKER_TUNNEL_ADDRESS = "192.168.53.200"
# What the data plane floods per second and in one burst (daemon/dataplane/data_plane.cpp).
FLOODS_PER_SECOND = 1000
FLOOD_BURST = 1000
BROADCAST = b"\xff" * 6
SO_RCVBUFFORCE = 33
LOCAL_EXPERIMENTAL = 0x88B5  # an EtherType nobody handles: frames the kernel just ignores


def mac(number: int) -> bytes:
    return bytes([0x02, 0xAA]) + number.to_bytes(4, "big")


def frame(destination: bytes, source: bytes, ethertype: int = LOCAL_EXPERIMENTAL,
          payload: bytes = bytes(46)) -> bytes:
    return destination + source + struct.pack("!H", ethertype) + payload


def checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request_frame(destination_mac: bytes, source_mac: bytes, source: str,
                       destination: str) -> bytes:
    """An ICMP echo request in an Ethernet frame: the server answers it, and to answer it
    must first resolve `source` by ARP, which it broadcasts."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x7e57, 1) + bytes(56)
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, socket.IPPROTO_ICMP,
                         0, socket.inet_aton(source), socket.inet_aton(destination))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return frame(destination_mac, source_mac, 0x0800, header + icmp)


def start_lab(lab):
    server = lab.start_daemon("s", {"lab": {
        "mode": "tap", "addresses": [f"{SERVER_TUNNEL_ADDRESS}/24"], "listen_port": SERVER_PORT,
        "peers": [{"endpoint": f"{U_ADDRESS}:{U_PORT}"}, {"endpoint": f"{U2_ADDRESS}:{W_PORT}"}],
    }})
    client = lab.start_daemon("u", {"lab": {
        "mode": "tap", "addresses": ["192.168.53.99/24"], "listen_port": U_PORT,
        "peers": [{"endpoint": f"{SERVER_ADDRESS}:{SERVER_PORT}"}],
    }})
    w = lab.socket("u2")
    w.bind((U2_ADDRESS, W_PORT))
    w.setblocking(False)
    # Room for every frame a test sends it (root may exceed rmem_max).
    w.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    return server, client, w


def drain(sock: socket.socket) -> list[bytes]:
    frames = []
    while True:
        try:
            frames.append(sock.recv(65536))
        except BlockingIOError:
            return frames


def no_ports(lab, role: str) -> int:
    """Datagrams host `role`'s kernel received for a port nobody listens on."""
    lines = [line.split() for line in lab.exec(role, ["cat", "/proc/net/snmp"]).stdout
             .splitlines() if line.startswith("Udp:")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))["NoPorts"])


def tap_device_sender(lab, server):
    """A packet socket on the server's TAP device: what it sends goes out of the device, i.e.
    to tunlabd, as if the server's kernel had sent it."""
    interface = server.tunnel("lab")["interface"]
    sock = socket_in_namespace(lab.ns["s"], socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((interface, 0))
    return sock, interface


def device_statistic(lab, interface: str, name: str) -> int:
    return int(lab.exec("s", ["cat", f"/sys/class/net/{interface}/statistics/{name}"]).stdout)


def device_mac(lab, role: str, interface: str) -> bytes:
    text = lab.exec(role, ["cat", f"/sys/class/net/{interface}/address"]).stdout.strip()
    return bytes.fromhex(text.replace(":", ""))


def test_spoofed_learned_peers_get_no_broadcasts(lab):
    server, _client, w = start_lab(lab)
    raw = RawUdpSender(lab.ns["u"], VICTIM)
    try:
        # 300 "peers" at the victim's address, each announced by one frame from a MAC of its own.
        for number in range(SPOOFED_PEERS):
            raw.sock.sendto(raw.datagram(30000 + number, (SERVER_ADDRESS, SERVER_PORT),
                                         frame(BROADCAST, mac(number))), (SERVER_ADDRESS, 0))
        server.wait_for_tunnel(
            lambda t: sum(peer["learned"] for peer in t["peers"]) == SPOOFED_PEERS,
            f"the server to learn {SPOOFED_PEERS} peers", timeout=10)
        drain(w)
        before = server.tunnel("lab")["counters"]
        victim_before = no_ports(lab, "u2")
        # One datagram that makes the server ARP (three times, unanswered).
        raw.sock.sendto(raw.datagram(30000, (SERVER_ADDRESS, SERVER_PORT), echo_request_frame(
            BROADCAST, mac(0), ATTACKER_TUNNEL_ADDRESS, SERVER_TUNNEL_ADDRESS)),
            (SERVER_ADDRESS, 0))
        # The ARP requests reach the configured peers: W sees each.
        arps = wait_until(lambda: [f for f in drain(w) if f[12:14] == b"\x08\x06"], 5,
                          "W to get the server's ARP request")
        deadline = time.monotonic() + 4  # the kernel's last of three tries comes after 2 s
        while time.monotonic() < deadline:
            arps += [f for f in drain(w) if f[12:14] == b"\x08\x06"]
            time.sleep(0.1)
    finally:
        raw.close()
    delta = counter_deltas(before, server.tunnel("lab")["counters"])
    # Each ARP went to U and to W, and to none of the 300: the victim got nothing.
    assert 1 <= len(arps) <= 3, len(arps)
    assert delta["tx_packets"] == 2 * len(arps), delta
    assert no_ports(lab, "u2") - victim_before == 0


def test_flooding_is_paced(lab):
    server, _client, w = start_lab(lab)
    sender, interface = tap_device_sender(lab, server)
    count = 3 * FLOOD_BURST
    try:
        before = server.tunnel("lab")["counters"]
        dropped_before = device_statistic(lab, interface, "tx_dropped")
        started = time.monotonic()
        for number in range(count):
            sender.send(frame(BROADCAST, mac(1_000_000 + number)))
        elapsed = time.monotonic() - started
    finally:
        sender.close()
    # Every frame the device did not drop itself (its queue full) reaches tunlabd, which
    # either floods it (to U and W: two datagrams) or counts it over the rate.
    handed_over = count - (device_statistic(lab, interface, "tx_dropped") - dropped_before)

    def accounted():
        delta = counter_deltas(before, server.tunnel("lab")["counters"])
        done = delta["tx_packets"] // 2 + delta["drop_flood_limit"] == handed_over
        return delta if done else None
    delta = wait_until(accounted, 10, f"tunlabd to account for the {handed_over} frames")
    flooded = delta["tx_packets"] // 2
    print(f"\n{count} broadcasts sent in {elapsed:.3f} s, {handed_over} reached tunlabd: "
          f"{flooded} flooded, {delta['drop_flood_limit']} dropped over the flooding rate")
    assert delta["tx_packets"] % 2 == 0
    assert flooded <= FLOOD_BURST + FLOODS_PER_SECOND * (elapsed + 0.5), flooded
    assert delta["drop_flood_limit"] > 0
    assert len(drain(w)) == flooded


def test_a_full_mac_table_does_not_steal_a_real_peers_frames(lab):
    server, client, w = start_lab(lab)
    # The attacker: one endpoint (a learned peer) with 5,000 source addresses.
    attacker = lab.socket("u2")
    attacker.bind((U2_ADDRESS, 43000))
    attacker.setblocking(False)
    for number in range(5000):
        attacker.sendto(frame(BROADCAST, mac(number)), (SERVER_ADDRESS, SERVER_PORT))
    server.wait_for_tunnel(
        lambda t: t["counters"]["rx_packets"] >= 5000, "the server to take the 5,000 frames",
        timeout=15)
    # U speaks: the server learns its MAC, behind U.
    u_interface = client.tunnel("lab")["interface"]
    u_mac = device_mac(lab, "u", u_interface)
    result = lab.exec("u", ["arping", "-c", "1", "-w", "3", "-I", u_interface,
                            SERVER_TUNNEL_ADDRESS], check=False)
    assert "Received 1 response" in result.stdout, result.stdout
    drain(w)
    drain(attacker)
    sender, _ = tap_device_sender(lab, server)
    before = server.tunnel("lab")
    try:
        for number in range(5):
            sender.send(frame(u_mac, bytes.fromhex("02bb00000001"), payload=bytes([number]) * 46))
        after = server.wait_for_tunnel(
            lambda t: t["counters"]["tx_packets"] >= before["counters"]["tx_packets"] + 5,
            "the server to send the five frames")
    finally:
        sender.close()

    def u_peer(tunnel):
        (peer,) = [p for p in tunnel["peers"] if p["endpoint"] == f"{U_ADDRESS}:{U_PORT}"]
        return peer
    # All five went to U alone, as unicast: none flooded to W, none to the attacker.
    assert after["counters"]["tx_packets"] - before["counters"]["tx_packets"] == 5
    assert u_peer(after)["counters"]["tx_packets"] - \
        u_peer(before)["counters"]["tx_packets"] == 5
    assert drain(w) == []
    assert drain(attacker) == []
