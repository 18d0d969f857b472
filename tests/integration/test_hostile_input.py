"""Malformed and hostile datagrams are dropped, each counted under its exact reason, while
real traffic flows undisturbed."""

import collections
import socket
import time

from harness import packets
from harness.counters import (RECEIVE_DROP_REASONS, SEND_DROP_REASONS, counter_deltas,
                              only_peer_with_allowed_ip)
from harness.seed import (SERVER_ADDRESS, SERVER_PORT, U2_ADDRESS, U_ADDRESS, U_TUNNEL_ADDRESS,
                          V_ADDRESS, client_config, server_config)

PINGS = 50
ROUNDS = 150
# A short pause after each round keeps the blast below what the kernel's socket buffer
# absorbs, so every datagram reaches the daemon and the counts can be exact. (The test
# checks the kernel's own drop counter to tell such a loss apart from a daemon bug.)
ROUND_PAUSE = 0.004

KNOWN_PORT = 7777     # U2's socket that the server has as a configured peer
UNKNOWN_PORT = 7778   # U2's socket that the server has never heard of
KNOWN_PEER_ADDRESS = "192.168.53.98"
FOREIGN_ADDRESS = "10.1.2.3"  # inside no peer's allowed IPs


# ── packet builders ─────────────────────────────────────────────────────────────────────

def ipv4(source: str, total_size: int = 60, **falsified: int) -> bytes:
    """An IPv4 packet of `total_size` bytes to V; the keywords falsify header fields."""
    return packets.ipv4(source, V_ADDRESS, total_size, **falsified)


def ipv6(source: str, total_size: int = 60, **falsified: int) -> bytes:
    return packets.ipv6(source, "fd00:60::5", total_size, **falsified)


def hostile_round(mtu: int) -> list[tuple[int, str, bytes]]:
    """One round of the blast: (sending port, expected outcome, payload). The outcome is the
    counter that must go up by one: a drop reason, or "keepalive"/"delivered"."""
    spoofed = ipv4(U_TUNNEL_ADDRESS)  # U's inner address from the wrong peer
    # The MTU is local: a peer may send up to 1500 bytes (the kernel default the lab's programs
    # keep) even when ours is smaller, so "too big" starts past the larger of the two.
    limit = max(mtu, 1500)
    return [
        # From a configured peer's endpoint: validation first, then its allowed IPs.
        (KNOWN_PORT, "keepalive", b""),
        (KNOWN_PORT, "truncated", b"\x45"),
        (KNOWN_PORT, "truncated", ipv4(KNOWN_PEER_ADDRESS)[:19]),
        (KNOWN_PORT, "truncated", ipv6("fd00::98")[:39]),
        (KNOWN_PORT, "bad_version", b"\x00"),
        (KNOWN_PORT, "bad_version", ipv4(KNOWN_PEER_ADDRESS, version=5)),
        (KNOWN_PORT, "bad_version", ipv4(KNOWN_PEER_ADDRESS, version=15)),
        (KNOWN_PORT, "bad_header", ipv4(KNOWN_PEER_ADDRESS, ihl=4)),
        (KNOWN_PORT, "bad_header", ipv4(KNOWN_PEER_ADDRESS, ihl=0)),
        (KNOWN_PORT, "bad_header", ipv4(KNOWN_PEER_ADDRESS, 40, ihl=15)),  # 60 > 40 bytes
        (KNOWN_PORT, "bad_length", ipv4(KNOWN_PEER_ADDRESS, 60, total_length=61)),
        (KNOWN_PORT, "bad_length", ipv4(KNOWN_PEER_ADDRESS, 60, total_length=56)),
        (KNOWN_PORT, "bad_length", ipv4(KNOWN_PEER_ADDRESS, 60, total_length=0)),
        (KNOWN_PORT, "bad_length", ipv6("fd00::98", 60, payload_length=28)),
        (KNOWN_PORT, "too_big", ipv4(KNOWN_PEER_ADDRESS, limit + 1)),
        (KNOWN_PORT, "too_big", ipv4(KNOWN_PEER_ADDRESS, 9000)),
        (KNOWN_PORT, "too_big", ipv6("fd00::98", limit + 1)),
        (KNOWN_PORT, "bad_source", spoofed),
        (KNOWN_PORT, "bad_source", ipv4(V_ADDRESS)),
        (KNOWN_PORT, "bad_source", ipv6("fd00::98")),
        # The boundaries: our MTU, and the 1500 bytes a peer with the default MTU sends.
        (KNOWN_PORT, "delivered", ipv4(KNOWN_PEER_ADDRESS, mtu)),
        (KNOWN_PORT, "delivered", ipv4(KNOWN_PEER_ADDRESS, limit)),
        # From an endpoint the server does not know (and it does not learn peers).
        (UNKNOWN_PORT, "empty", b""),
        (UNKNOWN_PORT, "unknown_peer", ipv4(FOREIGN_ADDRESS)),
        (UNKNOWN_PORT, "unknown_peer", ipv6("fd00::77")),
        (UNKNOWN_PORT, "bad_version", b"\x10"),
        (UNKNOWN_PORT, "truncated", b"\x45\x00"),
        (UNKNOWN_PORT, "bad_length", ipv4(FOREIGN_ADDRESS, 60, total_length=1000)),
    ]


def blast(sockets: dict[int, socket.socket], mtu: int) -> collections.Counter:
    sent: collections.Counter = collections.Counter()
    destination = (SERVER_ADDRESS, SERVER_PORT)
    datagrams = hostile_round(mtu)
    for _ in range(ROUNDS):
        for port, outcome, payload in datagrams:
            sockets[port].sendto(payload, destination)
            sent[outcome] += 1
        time.sleep(ROUND_PAUSE)
    return sent


def datagrams_received(counters) -> int:
    """Every datagram the daemon read ends up in exactly one of these."""
    return (counters["rx_packets"] + counters["rx_keepalives"]
            + sum(counters[f"drop_{reason}"] for reason in RECEIVE_DROP_REASONS))


def test_hostile_datagrams_are_counted_and_do_not_disturb_traffic(lab):
    server = lab.start_daemon("s", {"lab": server_config(
        learn_peers=False,
        peers=[
            # U: known by its inner address only; its first datagram tells the endpoint.
            {"allowed_ips": [f"{U_TUNNEL_ADDRESS}/32"]},
            # The hostile sender, as a configured peer with a different inner address.
            {"endpoint": f"{U2_ADDRESS}:{KNOWN_PORT}",
             "allowed_ips": [f"{KNOWN_PEER_ADDRESS}/32"]},
        ])})
    lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS)})

    sockets = {}
    for port in (KNOWN_PORT, UNKNOWN_PORT):
        sockets[port] = lab.socket("u2")
        sockets[port].bind((U2_ADDRESS, port))

    before = server.tunnel()
    kernel_drops_before = lab.udp_receive_errors("s")

    pinging = lab.ping_in_background("u", V_ADDRESS, PINGS)
    sent = blast(sockets, before["mtu"])
    result = pinging.result()
    assert (result.transmitted, result.received) == (PINGS, PINGS), result.output

    expected_total = datagrams_received(before["counters"]) + PINGS + sum(sent.values())
    after = server.wait_for_tunnel(
        lambda t: datagrams_received(t["counters"]) >= expected_total,
        f"the server to account for all {expected_total} datagrams", timeout=10)
    assert server.alive()
    assert lab.udp_receive_errors("s") == kernel_drops_before, \
        "the kernel dropped datagrams before tunlabd read them: blast too fast for this host"

    delta = counter_deltas(before["counters"], after["counters"])
    assert delta["rx_packets"] == PINGS + sent["delivered"], delta
    assert delta["tx_packets"] == PINGS, delta
    assert delta["rx_keepalives"] == sent["keepalive"], delta
    for reason in RECEIVE_DROP_REASONS + SEND_DROP_REASONS:
        assert delta[f"drop_{reason}"] == sent[reason], (reason, sent[reason], delta)

    # The spoofed packets did not move U's peer to the hostile endpoint.
    u_peer = only_peer_with_allowed_ip(after, f"{U_TUNNEL_ADDRESS}/32")
    assert u_peer["endpoint"].startswith(f"{U_ADDRESS}:"), u_peer
    assert len(after["peers"]) == 2, after["peers"]


def test_learned_peers_stop_at_the_limit(lab):
    """Beyond max_learned_peers, new senders are dropped as peer_limit, not learned."""
    limit = 2
    server = lab.start_daemon("s", {"lab": server_config(max_learned_peers=limit)})
    lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS)})
    result = lab.ping("u", V_ADDRESS, 3)
    assert result.received == 3, result.output  # U is learned peer number one

    # Each new endpoint with a new inner source asks for a new learned peer.
    newcomers = [(7001, "192.168.53.71"), (7002, "192.168.53.72"), (7003, "192.168.53.73")]
    repeats = 20
    before = server.tunnel()
    for port, inner_source in newcomers:
        sender = lab.socket("u2")
        sender.bind((U2_ADDRESS, port))
        for _ in range(repeats):
            sender.sendto(ipv4(inner_source), (SERVER_ADDRESS, SERVER_PORT))

    # The first newcomer fits under the limit; the other two are refused every time.
    expected_refusals = (len(newcomers) - 1) * repeats
    after = server.wait_for_tunnel(
        lambda t: t["counters"]["drop_peer_limit"] - before["counters"]["drop_peer_limit"]
        >= expected_refusals and t["counters"]["rx_packets"] - before["counters"]["rx_packets"]
        >= repeats,
        "the newcomers' datagrams to be counted")
    delta = counter_deltas(before["counters"], after["counters"])
    assert delta["drop_peer_limit"] == expected_refusals, delta
    assert delta["rx_packets"] == repeats, delta
    learned = [peer for peer in after["peers"] if peer["learned"]]
    assert len(learned) == limit, after["peers"]
    only_peer_with_allowed_ip(after, "192.168.53.71/32")
    assert not [peer for peer in after["peers"]
                if {"192.168.53.72/32", "192.168.53.73/32"} & set(peer["allowed_ips"])]

    result = lab.ping("u", V_ADDRESS, 3)
    assert result.received == 3, result.output
