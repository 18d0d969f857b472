"""Learned-peer exhaustion: a server that learns its clients (the lab's server) is flooded with
valid packets from thousands of source ports it has never seen, each with an inner source of its
own. It learns exactly max_learned_peers of them (default 1024, docs/dbus-api.md), counts every
further newcomer as drop_peer_limit, keeps its configured peer where it is (same endpoint, its
traffic flowing throughout), and its memory stops growing at the cap.

Also: learned peers that expire are replaced without memory creeping up, and one inner source
hopping across thousands of ports (a "roaming storm") moves one learned peer around instead of
creating peers.

The floods come from one raw socket in U2, which can send from any source port. Their packets
are ICMP echo replies to V, which V ignores, so whatever is delivered adds no traffic.
"""

from __future__ import annotations

import dataclasses
import time


from harness.counters import RECEIVE_DROP_REASONS, counter_deltas, datagrams_accounted
from harness.dbus_wire import BusConnection
from harness.packets import RawUdpSender, ipv4, paced_send
from harness.process import wait_until
from harness.procfs import KernelUdp, daemon_pid, kernel_udp, rss_kib, sanitized
from harness.seed import (SERVER_ADDRESS, SERVER_PORT, U2_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS,
                          client_config, server_config)

U_PORT = 41000
U_ENDPOINT = f"10.9.0.5:{U_PORT}"
DEFAULT_CAP = 1024                  # max_learned_peers when the configuration says nothing
FLOOD_RATE = 5000                   # datagrams/s
FIRST_PORT = 20000
PING_INTERVAL = 0.02
RSS_GROWTH_LIMIT_KIB = 512
PER_PEER_LIMIT_KIB = 16             # what one learned peer may cost (about 7 KiB measured)
SETTLE_TIMEOUT = 15.0
TUNNEL_PATH = "/org/tunlab1/tunnel/lab"
TUNNEL = "org.tunlab1.Tunnel"


def start_lab(lab, **server_options):
    server = lab.start_daemon("s", {"lab": server_config(
        peers=[{"endpoint": U_ENDPOINT, "allowed_ips": [f"{U_TUNNEL_ADDRESS}/32"]}],
        **server_options)})
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS, listen_port=U_PORT)})
    warm_up = lab.ping("u", V_ADDRESS, 3, interval=0.02)
    assert warm_up.received == 3, warm_up.output
    return server, client


def inner_source(number: int) -> str:
    """A distinct address for newcomer `number`, outside every configured peer's range."""
    return f"10.{100 + (number >> 16)}.{number >> 8 & 255}.{number & 255}"


def newcomers(raw: RawUdpSender, first: int, count: int, same_source: str | None = None):
    """Datagrams from ports FIRST_PORT+first.., each with inner source inner_source(n), or all
    with `same_source`."""
    server = (SERVER_ADDRESS, SERVER_PORT)
    items = []
    for number in range(first, first + count):
        packet = ipv4(same_source or inner_source(number), V_ADDRESS)
        items.append((raw.sock, raw.datagram(FIRST_PORT + number, server, packet),
                      (SERVER_ADDRESS, 0)))
    return items


def u_peer(tunnel):
    (peer,) = [peer for peer in tunnel["peers"] if not peer["learned"]]
    return peer


def learned(tunnel):
    return [peer for peer in tunnel["peers"] if peer["learned"]]


@dataclasses.dataclass
class Flood:
    sent: int
    kernel: KernelUdp
    delta: dict[str, int]           # the tunnel's counters
    u_delta: dict[str, int]         # the configured peer's counters
    pings_sent: int
    pings_answered: int
    tunnel: dict                    # status after it


def flood(lab, server, items, rate=FLOOD_RATE) -> Flood:
    """Sends `items` while U pings V, then waits until every datagram is accounted for."""
    pid = daemon_pid(server)
    before = server.tunnel()
    kernel_before = kernel_udp(pid)
    seconds = len(items) / rate if rate else 2.0
    pinging = lab.ping_in_background("u", V_ADDRESS, max(10, int(seconds / PING_INTERVAL)),
                                     PING_INTERVAL)
    sent = paced_send(items, rate)
    ping = pinging.result()

    def settled():
        kernel = kernel_udp(pid) - kernel_before
        if kernel.in_datagrams + kernel.in_errors < sent + ping.transmitted:
            return None
        tunnel = server.tunnel()
        if (datagrams_accounted(tunnel["counters"]) - datagrams_accounted(before["counters"])
                < kernel.in_datagrams):
            return None
        return tunnel, kernel_udp(pid) - kernel_before

    tunnel, kernel = wait_until(settled, SETTLE_TIMEOUT, f"{sent} datagrams to be accounted for",
                                interval=0.1)
    return Flood(sent, kernel, counter_deltas(before["counters"], tunnel["counters"]),
                 counter_deltas(u_peer(before)["counters"], u_peer(tunnel)["counters"]),
                 ping.transmitted, ping.received, tunnel)


def check_flood(result: Flood, delivered: int | None, what: str) -> None:
    """Every datagram the kernel handed over is accounted for: U's pings delivered, exactly
    `delivered` newcomers' datagrams delivered (None: all of them), every other one refused as
    peer_limit, nothing else; U lost no ping the kernel did not drop, and stayed where it is."""
    kernel, delta, u_delta = result.kernel, result.delta, result.u_delta
    assert kernel.in_datagrams + kernel.in_errors == result.sent + result.pings_sent, \
        (what, kernel, result.sent)
    assert kernel.reassembly_failures == 0 and kernel.no_ports == 0, (what, kernel)
    assert datagrams_accounted(delta) == kernel.in_datagrams, (what, kernel, delta)
    newcomers_read = kernel.in_datagrams - u_delta["rx_packets"]
    if delivered is None:
        delivered = newcomers_read
    assert delta["rx_packets"] - u_delta["rx_packets"] == delivered, (what, delta, u_delta)
    assert delta["drop_peer_limit"] == newcomers_read - delivered, (what, kernel, delta)
    for reason in RECEIVE_DROP_REASONS:
        if reason != "peer_limit":
            assert delta[f"drop_{reason}"] == 0, (what, reason, delta)
    # U's traffic kept flowing: each request the server read was answered.
    assert u_delta["tx_packets"] == u_delta["rx_packets"], (what, u_delta)
    lost = result.pings_sent - result.pings_answered
    assert lost <= kernel.in_errors, (what, f"{lost} pings lost", kernel)
    peer = u_peer(result.tunnel)
    assert (peer["endpoint"], peer["allowed_ips"]) == (U_ENDPOINT, [f"{U_TUNNEL_ADDRESS}/32"]), \
        (what, peer)


def test_newcomers_stop_at_the_cap_and_cannot_push_out_the_configured_peer(lab):
    server, _ = start_lab(lab)  # max_learned_peers: the default
    pid = daemon_pid(server)
    raw = RawUdpSender(lab.ns["u2"], U2_ADDRESS)
    try:
        rss_start = rss_kib(pid)
        # Three times the cap: the first DEFAULT_CAP that arrive are learned, the rest refused.
        first = flood(lab, server, newcomers(raw, 0, 3 * DEFAULT_CAP))
        rss_at_cap = rss_kib(pid)
        # Ten times the cap more, all new: every one refused, nothing replaced.
        second = flood(lab, server, newcomers(raw, 3 * DEFAULT_CAP, 10 * DEFAULT_CAP))
        rss_after = rss_kib(pid)
        # The learned peers still work: one datagram from each of a few of them is delivered.
        sample = learned(second.tunnel)[:50]
        items = []
        for peer in sample:
            port = int(peer["endpoint"].rsplit(":", 1)[1])
            source = peer["allowed_ips"][0].split("/")[0]
            items.append((raw.sock, raw.datagram(port, (SERVER_ADDRESS, SERVER_PORT),
                                                 ipv4(source, V_ADDRESS)), (SERVER_ADDRESS, 0)))
        third = flood(lab, server, items)
    finally:
        raw.close()

    print(f"\nnewcomers: {first.sent} then {second.sent}; learned {len(learned(first.tunnel))}, "
          f"peer_limit {first.delta['drop_peer_limit']} + {second.delta['drop_peer_limit']}, "
          f"kernel drops {first.kernel.in_errors} + {second.kernel.in_errors}; pings "
          f"{first.pings_answered}/{first.pings_sent}, {second.pings_answered}/"
          f"{second.pings_sent}; tunlabd RSS {rss_start} -> {rss_at_cap} KiB at the cap "
          f"({(rss_at_cap - rss_start) / DEFAULT_CAP:.1f} KiB per learned peer) -> "
          f"{rss_after} KiB after {second.sent} more")

    check_flood(first, DEFAULT_CAP, "first flood")
    assert len(learned(first.tunnel)) == DEFAULT_CAP
    check_flood(second, 0, "second flood")
    assert sorted(peer["endpoint"] for peer in learned(second.tunnel)) == \
        sorted(peer["endpoint"] for peer in learned(first.tunnel)), "learned peers were replaced"
    assert third.delta["rx_packets"] - third.u_delta["rx_packets"] == len(sample), third.delta
    assert third.delta["drop_peer_limit"] == 0, third.delta

    if not sanitized(pid):
        assert rss_at_cap - rss_start <= DEFAULT_CAP * PER_PEER_LIMIT_KIB, \
            (rss_start, rss_at_cap)
        assert rss_after - rss_at_cap <= RSS_GROWTH_LIMIT_KIB, \
            f"tunlabd RSS grew from {rss_at_cap} to {rss_after} KiB past the cap"

    # The bus shows the same: the cap's worth of learned peers, U where it was.
    with BusConnection(server.bus.address) as bus:
        peers = bus.get_property(TUNNEL_PATH, TUNNEL, "Peers")
        assert len(peers) == DEFAULT_CAP + 1
        configured = [path for path in peers
                      if not bus.get_property(path, "org.tunlab1.Peer", "Learned")]
        assert len(configured) == 1, configured
        assert bus.get_property(configured[0], "org.tunlab1.Peer", "Endpoint") == U_ENDPOINT
    assert server.alive()


def test_expired_learned_peers_are_replaced_without_memory_creeping_up(lab):
    cap, timeout_s, waves, per_wave = 64, 1, 4, 256
    server, _ = start_lab(lab, max_learned_peers=cap, learned_peer_timeout=timeout_s)
    pid = daemon_pid(server)
    raw = RawUdpSender(lab.ns["u2"], U2_ADDRESS)
    bus = BusConnection(server.bus.address)
    rss = []
    try:
        for wave in range(waves):
            result = flood(lab, server, newcomers(raw, wave * per_wave, per_wave))
            check_flood(result, cap, f"wave {wave}")
            now_learned = learned(result.tunnel)
            assert len(now_learned) == cap, (wave, len(now_learned))
            # Every peer of this wave is new: the previous wave's have all expired.
            sources = {peer["allowed_ips"][0] for peer in now_learned}
            wave_sources = {f"{inner_source(n)}/32" for n in range(wave * per_wave,
                                                                    (wave + 1) * per_wave)}
            assert sources <= wave_sources, f"wave {wave}: peers of an earlier wave remain"
            rss.append(rss_kib(pid))
            # Idle for the timeout: the expiry timer forgets them all (it ticks each second).
            # Watched on the bus: the control plane's own copy, with the PeerRemoved signals.
            wait_until(lambda: len(bus.get_property(TUNNEL_PATH, TUNNEL, "Peers")) == 1,
                       timeout_s + 5, f"the learned peers of wave {wave} to expire")
    finally:
        raw.close()
        bus.close()
    print(f"\ntunlabd RSS with {cap} learned peers, wave by wave: {rss} KiB")
    # The first two waves are the warm-up; afterwards the same load must cost the same memory.
    if not sanitized(pid):
        assert max(rss[2:]) - rss[1] <= RSS_GROWTH_LIMIT_KIB, rss


ROAMING_PORTS = 3000
ROAMING_SOURCE = "10.99.0.1"


def roaming_storm(lab):
    server, _ = start_lab(lab)
    pid = daemon_pid(server)
    raw = RawUdpSender(lab.ns["u2"], U2_ADDRESS)
    try:
        # The first datagram creates the peer, so warm up with a few ports before measuring.
        warm_up = flood(lab, server, newcomers(raw, 0, 100, same_source=ROAMING_SOURCE))
        check_flood(warm_up, None, "warm-up")
        rss_before = rss_kib(pid)
        log_before = server.log_path.stat().st_size
        result = flood(lab, server, newcomers(raw, 100, ROAMING_PORTS,
                                              same_source=ROAMING_SOURCE))
        rss_after = rss_kib(pid)
        log_growth = server.log_path.stat().st_size - log_before
    finally:
        raw.close()
    return server, result, rss_before, rss_after, log_growth


def test_a_roaming_storm_moves_one_learned_peer_and_costs_no_memory(lab):
    """One inner source from thousands of ports: it is one client moving (roaming), so one
    learned peer follows it, every datagram is delivered, and no peer is created."""
    server, result, rss_before, rss_after, _ = roaming_storm(lab)
    pid = daemon_pid(server)
    print(f"\nroaming storm: {result.sent} ports; tunlabd RSS {rss_before} -> {rss_after} KiB")
    check_flood(result, None, "roaming storm")  # every datagram delivered, none refused
    (peer,) = learned(result.tunnel)
    assert peer["allowed_ips"] == [f"{ROAMING_SOURCE}/32"], peer
    last_port = FIRST_PORT + 100 + ROAMING_PORTS - 1
    if result.kernel.in_errors == 0:
        # A peer moves at most once a second, to where it last sent from: the endpoint
        # arrives at the last port within about two timer ticks of the storm's end.
        tunnel = server.wait_for_tunnel(
            lambda t: learned(t)[0]["endpoint"] == f"{U2_ADDRESS}:{last_port}",
            "the learned peer's endpoint to settle on the last port", timeout=5)
        (peer,) = learned(tunnel)
        assert peer["endpoint"] == f"{U2_ADDRESS}:{last_port}", peer
    if not sanitized(pid):
        assert rss_after - rss_before <= RSS_GROWTH_LIMIT_KIB, (rss_before, rss_after)
    assert server.alive()


def test_a_roaming_storm_does_not_flood_the_log(lab):
    _, result, _, _, log_growth = roaming_storm(lab)
    assert log_growth < 16 * 1024, \
        f"{result.sent} roaming datagrams added {log_growth} bytes to the log"


def test_reading_peers_while_a_flood_changes_them_is_safe(lab):
    """With the cap's worth of learned peers, a roaming storm makes the data plane publish new
    peer views continuously; meanwhile status.json is written and RemovePeer looks a peer up,
    both reading those views. Nothing may crash."""
    server, _ = start_lab(lab)
    raw = RawUdpSender(lab.ns["u2"], U2_ADDRESS)
    try:
        first = flood(lab, server, newcomers(raw, 0, DEFAULT_CAP))
        # Every newcomer the kernel delivered became a learned peer (on a loaded machine the
        # socket buffer may overflow; those datagrams never reached tunlabd).
        dropped = first.kernel.rcvbuf_errors
        assert DEFAULT_CAP - dropped <= len(learned(first.tunnel)) <= DEFAULT_CAP, dropped
        storm_items = newcomers(raw, DEFAULT_CAP, 20000, same_source=inner_source(0))
        with BusConnection(server.bus.address) as bus:
            deadline = time.monotonic() + 4
            sent = 0
            statuses = 0
            while time.monotonic() < deadline and server.alive():
                sent += paced_send(storm_items[sent % 15000:][:2000], None)
                if not server.alive():
                    break
                server.status()
                statuses += 1
                reply = bus.call("org.tunlab1", TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
                                 [f"{TUNNEL_PATH}/peer/999999"])
                assert reply.outcome == "org.tunlab1.Error.NotFound", reply.error_message
    finally:
        raw.close()
    assert server.alive(), f"tunlabd died (exit {server.proc.returncode}) after {statuses} " \
                           f"status reads during a roaming storm\n{server.describe()}"
