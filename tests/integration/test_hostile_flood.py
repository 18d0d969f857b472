"""A hostile network: floods of malformed, oversized, spoofed-source and unknown-endpoint
datagrams while U pings V through the server. The server keeps forwarding, its memory stays
flat, and every datagram is accounted for:

    datagrams the kernel handed to tunlabd's socket (Udp InDatagrams in the server's namespace)
      == rx_packets + rx_keepalives + the sum of the receive-side drop_* counters
    datagrams sent to the server == InDatagrams + InErrors (the kernel's own drops, e.g. a full
      socket buffer: never blamed on the daemon)

and by reason: each kind of datagram raises exactly its own counter, exactly as often as it was
sent when the kernel dropped nothing (normally so in the paced flood), and never more often
than it was sent when the kernel did drop some (the unpaced flood: which ones the kernel
dropped nobody can tell).

test_hostile_input.py checks each malformation once per round at a gentle rate; this file is
about volume, datagrams up to the UDP maximum, a thousand unknown source ports, memory, and the
kernel's side of the accounting.
"""

from __future__ import annotations

import collections
import dataclasses
import time

from harness.counters import (RECEIVE_DROP_REASONS, SEND_DROP_REASONS, counter_deltas,
                              datagrams_accounted)
from harness.dbus_wire import BusConnection
from harness.packets import RawUdpSender, ipv4, ipv6, paced_send
from harness.process import wait_until
from harness.procfs import KernelUdp, daemon_pid, kernel_udp, rss_kib, sanitized
from harness.seed import (SERVER_ADDRESS, SERVER_PORT, U2_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS,
                          client_config, server_config)

U_PORT = 41000                      # the client's fixed port: the server has U configured
U_ENDPOINT = f"10.9.0.5:{U_PORT}"
H_PORT = 7777                       # U2's socket that is a configured peer ("H") of the server
H_ADDRESS = "192.168.53.98"         # H's inner address
UNKNOWN_PORT = 7778                 # U2's socket the server has never heard of
RAW_PORTS = range(30000, 31000)     # more unknown endpoints, through one raw socket
FOREIGN_ADDRESS = "10.66.0.1"       # inside no peer's allowed IPs

WARM_UP_SECONDS = 1.0
PACED_RATE = 4000                   # datagrams/s: well below what a debug build keeps up with
PACED_SECONDS = 4.0
FLOOD_SECONDS = 3.0                 # as fast as one sender can go
PING_INTERVAL = 0.02
RSS_GROWTH_LIMIT_KIB = 512          # a leak of 8 bytes per datagram would exceed it
SETTLE_TIMEOUT = 15.0

# The counter each kind of datagram must raise.
COUNTER_OF = {"delivered": "rx_packets", "keepalive": "rx_keepalives",
              **{reason: f"drop_{reason}" for reason in RECEIVE_DROP_REASONS}}


@dataclasses.dataclass
class Senders:
    known: object                   # socket bound to U2:H_PORT
    unknown: object                 # socket bound to U2:UNKNOWN_PORT
    raw: RawUdpSender


def fixed_items(senders: Senders, limit: int) -> list[tuple]:
    """The part of a round sent from the two UDP sockets: (socket, bytes, address, the outcome
    it must have). `limit` is the largest datagram the server accepts (max(MTU, 1500))."""
    server = (SERVER_ADDRESS, SERVER_PORT)

    def from_known(payload, outcome):
        return (senders.known, payload, server, outcome)

    def from_unknown(payload, outcome):
        return (senders.unknown, payload, server, outcome)

    mine = H_ADDRESS
    return [
        # From H's endpoint: malformed...
        from_known(b"", "keepalive"),
        from_known(b"\x45", "truncated"),
        from_known(ipv4(mine, V_ADDRESS)[:19], "truncated"),
        from_known(ipv6("fd00::98", "fd00:60::5")[:39], "truncated"),
        from_known(b"\x00", "bad_version"),
        from_known(ipv4(mine, V_ADDRESS, version=5), "bad_version"),
        from_known(ipv4(mine, V_ADDRESS, ihl=4), "bad_header"),
        from_known(ipv4(mine, V_ADDRESS, 40, ihl=15), "bad_header"),
        from_known(ipv4(mine, V_ADDRESS, 60, total_length=61), "bad_length"),
        from_known(ipv6("fd00::98", "fd00:60::5", 60, payload_length=28), "bad_length"),
        from_known(ipv4(mine, V_ADDRESS, 9000, total_length=1000), "bad_length"),
        # ...oversized...
        from_known(ipv4(mine, V_ADDRESS, limit + 1), "too_big"),
        from_known(ipv4(mine, V_ADDRESS, 9000), "too_big"),
        from_known(ipv6("fd00::98", "fd00:60::5", 2000), "too_big"),
        # ...spoofed: an inner source that is not H's, U's above all...
        from_known(ipv4(U_TUNNEL_ADDRESS, V_ADDRESS), "bad_source"),
        from_known(ipv4(V_ADDRESS, V_ADDRESS), "bad_source"),
        from_known(ipv4(FOREIGN_ADDRESS, V_ADDRESS), "bad_source"),
        from_known(ipv6("fd00::66", "fd00:60::5"), "bad_source"),
        # ...and real: echo replies to V (which ignores them), up to the largest accepted.
        from_known(ipv4(mine, V_ADDRESS, 100), "delivered"),
        from_known(ipv4(mine, V_ADDRESS, 100), "delivered"),
        from_known(ipv4(mine, V_ADDRESS, limit), "delivered"),
        # From an endpoint the server does not know (it learns no peers).
        from_unknown(ipv4(FOREIGN_ADDRESS, V_ADDRESS, 9000), "too_big"),
        from_unknown(ipv4(FOREIGN_ADDRESS, V_ADDRESS, limit), "unknown_peer"),
    ]


# Sent through the raw socket from many unknown ports: validation first, then "unknown peer"
# for what is well-formed.
RAW_PAYLOADS = [
    (b"", "empty"),
    (ipv4(FOREIGN_ADDRESS, V_ADDRESS), "unknown_peer"),
    (ipv6("fd00::77", "fd00:60::5"), "unknown_peer"),
    (b"\x10", "bad_version"),
    (b"\x45\x00", "truncated"),
    (ipv4(FOREIGN_ADDRESS, V_ADDRESS, 60, total_length=1000), "bad_length"),
]


def raw_items(senders: Senders, port: int) -> list[tuple]:
    server = (SERVER_ADDRESS, SERVER_PORT)
    return [(senders.raw.sock, senders.raw.datagram(port, server, payload), (SERVER_ADDRESS, 0),
             outcome) for payload, outcome in RAW_PAYLOADS]


def giant_items(senders: Senders) -> list[tuple]:
    """65507 bytes, the UDP maximum over IPv4 (45 fragments each)."""
    server = (SERVER_ADDRESS, SERVER_PORT)
    return [(senders.known, ipv4(H_ADDRESS, V_ADDRESS, 65507), server, "too_big"),
            (senders.unknown, ipv4(FOREIGN_ADDRESS, V_ADDRESS, 65507), server, "too_big")]


def flood_items(senders: Senders, limit: int, count: int, giants: bool = False) -> list[tuple]:
    """Rounds of everything above, each from the next raw port, until `count` datagrams;
    with `giants`, every eighth round adds two 65507-byte datagrams."""
    fixed = fixed_items(senders, limit)
    big = giant_items(senders) if giants else []
    per_port = [raw_items(senders, port) for port in RAW_PORTS]
    items: list[tuple] = []
    round_number = 0
    while len(items) < count:
        items += fixed + per_port[round_number % len(per_port)]
        if round_number % 8 == 0:
            items += big
        round_number += 1
    return items


@dataclasses.dataclass
class Phase:
    sent: collections.Counter       # by outcome, the client's pings counted as "delivered"
    kernel: KernelUdp               # the server namespace's UDP counters, change
    delta: dict[str, int]           # the server's tunnel counters, change
    pings_sent: int
    pings_answered: int
    seconds: float
    datagrams: int                  # what the flood itself sent

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())


def run_phase(lab, server, client, items, rate, seconds) -> Phase:
    pid = daemon_pid(server)
    before = server.tunnel()["counters"]
    client_before = client.tunnel()["counters"]
    kernel_before = kernel_udp(pid)
    pinging = lab.ping_in_background("u", V_ADDRESS, max(1, int(seconds / PING_INTERVAL)),
                                     PING_INTERVAL)
    began = time.monotonic()
    count = paced_send([item[:3] for item in items], rate, deadline=began + seconds)
    elapsed = time.monotonic() - began
    ping = pinging.result()
    sent = collections.Counter(outcome for *_, outcome in items[:count])
    # Every request the ping sent crossed the client daemon and went to the server.
    client_after = client.wait_for_tunnel(
        lambda t: t["counters"]["tx_packets"] - client_before["tx_packets"] >= ping.transmitted,
        "the client to count the pings")
    sent["delivered"] += client_after["counters"]["tx_packets"] - client_before["tx_packets"]
    total = sum(sent.values())

    # Wait until the kernel has disposed of every datagram (read by tunlabd or dropped) and
    # tunlabd has counted all it read.
    def settled():
        kernel = kernel_udp(pid) - kernel_before
        if kernel.in_datagrams + kernel.in_errors < total:
            return None
        counters = server.tunnel()["counters"]
        if datagrams_accounted(counters) - datagrams_accounted(before) < kernel.in_datagrams:
            return None
        return counters, kernel_udp(pid) - kernel_before

    counters, kernel = wait_until(settled, SETTLE_TIMEOUT,
                                  f"the server's kernel and tunlabd to account for {total} "
                                  f"datagrams", interval=0.1)
    return Phase(sent, kernel, counter_deltas(before, counters), ping.transmitted,
                 ping.received, elapsed, count)


def check_accounting(phase: Phase, what: str) -> None:
    kernel, delta = phase.kernel, phase.delta
    received = datagrams_accounted(delta)
    # The kernel disposed of everything that was sent, and nothing in another way.
    assert kernel.reassembly_failures == 0 and kernel.no_ports == 0, (what, kernel)
    assert kernel.in_datagrams + kernel.in_errors == phase.total_sent, (what, kernel, phase.sent)
    # tunlabd accounts for every datagram it read, each exactly once.
    assert received == kernel.in_datagrams, (what, received, kernel, delta)
    # By reason: exact when the kernel dropped nothing, else never more than was sent.
    for outcome, counter in COUNTER_OF.items():
        if kernel.in_errors == 0:
            assert delta[counter] == phase.sent[outcome], (what, counter, phase.sent, delta)
        else:
            assert delta[counter] <= phase.sent[outcome], (what, counter, phase.sent, delta)
    # Nothing the server sent was dropped: every ping request that arrived was answered.
    for reason in SEND_DROP_REASONS:
        assert delta[f"drop_{reason}"] == 0, (what, reason, delta)
    assert phase.pings_answered <= delta["tx_packets"], (what, phase, delta)


def endpoints(server) -> dict[str, str]:
    tunnel = server.tunnel()
    assert not [peer for peer in tunnel["peers"] if peer["learned"]], tunnel["peers"]
    return {peer["allowed_ips"][0]: peer["endpoint"] for peer in tunnel["peers"]}


def test_floods_are_accounted_for_and_cost_no_memory(lab):
    server = lab.start_daemon("s", {"lab": server_config(learn_peers=False, peers=[
        {"endpoint": U_ENDPOINT, "allowed_ips": [f"{U_TUNNEL_ADDRESS}/32"]},
        {"endpoint": f"{U2_ADDRESS}:{H_PORT}", "allowed_ips": [f"{H_ADDRESS}/32"]},
    ])})
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS, listen_port=U_PORT)})
    pid = daemon_pid(server)
    expected_endpoints = {f"{U_TUNNEL_ADDRESS}/32": U_ENDPOINT,
                          f"{H_ADDRESS}/32": f"{U2_ADDRESS}:{H_PORT}"}
    assert endpoints(server) == expected_endpoints

    senders = Senders(lab.socket("u2"), lab.socket("u2"), RawUdpSender(lab.ns["u2"], U2_ADDRESS))
    try:
        senders.known.bind((U2_ADDRESS, H_PORT))
        senders.unknown.bind((U2_ADDRESS, UNKNOWN_PORT))
        limit = max(server.tunnel()["mtu"], 1500)

        warm_up = run_phase(lab, server, client,
                            flood_items(senders, limit, int(PACED_RATE * WARM_UP_SECONDS)),
                            PACED_RATE, WARM_UP_SECONDS)
        check_accounting(warm_up, "warm-up")
        rss_before = rss_kib(pid)
        log_before = server.log_path.stat().st_size

        paced = run_phase(lab, server, client,
                          flood_items(senders, limit, int(PACED_RATE * PACED_SECONDS)),
                          PACED_RATE, PACED_SECONDS)
        flood = run_phase(lab, server, client,
                          flood_items(senders, limit, 400_000, giants=True),
                          None, FLOOD_SECONDS)
        rss_after = rss_kib(pid)
    finally:
        senders.raw.close()

    for name, phase in (("paced", paced), ("flood", flood)):
        print(f"\n{name}: {phase.datagrams} datagrams in {phase.seconds:.2f} s "
              f"({phase.datagrams / phase.seconds:.0f}/s) + {phase.pings_sent} pings "
              f"({phase.pings_answered} answered); kernel: {phase.kernel.in_datagrams} read "
              f"by tunlabd, {phase.kernel.in_errors} dropped "
              f"({phase.kernel.rcvbuf_errors} for a full buffer); tunlabd accounted "
              f"{datagrams_accounted(phase.delta)}: "
              + ", ".join(f"{key} {value}" for key, value in sorted(phase.delta.items())
                          if value and key != "rx_bytes" and key != "tx_bytes"))
    print(f"tunlabd RSS {rss_before} KiB after the warm-up, {rss_after} KiB after "
          f"{paced.datagrams + flood.datagrams} more datagrams")

    check_accounting(paced, "paced")
    check_accounting(flood, "flood")
    assert flood.kernel.in_datagrams > paced.kernel.in_datagrams / 2, \
        "the unpaced flood was read more slowly than the paced one"
    # The pings: none lost while the kernel dropped nothing; during the unpaced flood, only
    # what the kernel may have dropped (it drops ping requests too when the buffer is full).
    for name, phase in (("paced", paced), ("flood", flood)):
        lost = phase.pings_sent - phase.pings_answered
        assert lost <= phase.kernel.in_errors, (name, lost, phase.kernel)
        assert phase.pings_answered > 0, f"no ping got through the {name} flood"

    # Still serving, as before: pings, the bus, the peers where they were.
    after = lab.ping("u", V_ADDRESS, 20, interval=0.01)
    assert after.received == 20, after.output
    assert server.alive()
    assert endpoints(server) == expected_endpoints
    with BusConnection(server.bus.address) as bus:
        counters = bus.get_property("/org/tunlab1/tunnel/lab", "org.tunlab1.Tunnel",
                                    "Counters")
    assert counters == server.tunnel()["counters"]
    if not sanitized(pid):
        assert rss_after - rss_before <= RSS_GROWTH_LIMIT_KIB, \
            f"tunlabd RSS grew from {rss_before} to {rss_after} KiB"
    log_growth = server.log_path.stat().st_size - log_before
    assert log_growth < 4096, f"the log grew by {log_growth} bytes during the floods"
