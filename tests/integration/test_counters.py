"""Counters are exact: every ping is one packet out of one daemon and into the other.

The namespaces have IPv6 disabled (harness/netns.py), so no background traffic (router
solicitations, MLD) crosses the tunnel and the only packets are the pings themselves.
"""

from harness.counters import (RECEIVE_DROP_REASONS, SEND_DROP_REASONS, counter_deltas,
                              only_peer_with_allowed_ip)
from harness.seed import U_TUNNEL_ADDRESS, V_ADDRESS, client_config, server_config
from harness.traffic import PING_PACKET_BYTES

PINGS = 25
U_PREFIX = f"{U_TUNNEL_ADDRESS}/32"


def client_peer(tunnel):
    (peer,) = tunnel["peers"]
    return peer


def server_peer(tunnel):
    return only_peer_with_allowed_ip(tunnel, U_PREFIX)


def test_counters_match_pings_exactly(lab):
    server = lab.start_daemon("s", {"lab": server_config()})
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS)})

    # One ping first, so that the server has learned U and both per-peer baselines exist.
    warm_up = lab.ping("u", V_ADDRESS, 1)
    assert warm_up.received == 1, warm_up.output
    client_before = client.wait_for_tunnel(
        lambda t: t["counters"]["rx_packets"] == 1, "the warm-up reply in U's counters")
    server_before = server.wait_for_tunnel(
        lambda t: t["counters"]["tx_packets"] == 1, "the warm-up reply in the server's counters")

    result = lab.ping("u", V_ADDRESS, PINGS, interval=0.02)
    assert (result.transmitted, result.received) == (PINGS, PINGS), result.output

    # ping has its replies, but each daemon bumps a counter just after it moved the packet:
    # poll until the totals arrive, then compare exactly (an overshoot fails below).
    expected_client_rx = client_before["counters"]["rx_packets"] + PINGS
    client_after = client.wait_for_tunnel(
        lambda t: t["counters"]["rx_packets"] >= expected_client_rx, "U's rx_packets")
    expected_server_tx = server_before["counters"]["tx_packets"] + PINGS
    server_after = server.wait_for_tunnel(
        lambda t: t["counters"]["tx_packets"] >= expected_server_tx, "the server's tx_packets")

    client_delta = counter_deltas(client_before["counters"], client_after["counters"])
    server_delta = counter_deltas(server_before["counters"], server_after["counters"])
    pings_bytes = PINGS * PING_PACKET_BYTES

    # Requests: U's device → U's daemon → server's daemon → server's device.
    assert client_delta["tx_packets"] == server_delta["rx_packets"] == PINGS, \
        (client_delta, server_delta)
    assert client_delta["tx_bytes"] == server_delta["rx_bytes"] == pings_bytes, \
        (client_delta, server_delta)
    # Replies: the other way round.
    assert server_delta["tx_packets"] == client_delta["rx_packets"] == PINGS, \
        (client_delta, server_delta)
    assert server_delta["tx_bytes"] == client_delta["rx_bytes"] == pings_bytes, \
        (client_delta, server_delta)
    for delta in (client_delta, server_delta):
        assert delta["rx_keepalives"] == 0, delta
        for reason in RECEIVE_DROP_REASONS + SEND_DROP_REASONS:
            assert delta[f"drop_{reason}"] == 0, (reason, delta)

    # The per-peer counters tell the same story.
    for peer_of, before, after in ((client_peer, client_before, client_after),
                                   (server_peer, server_before, server_after)):
        peer_delta = counter_deltas(peer_of(before)["counters"], peer_of(after)["counters"])
        traffic = {key: peer_delta[key]
                   for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")}
        assert traffic == {"rx_packets": PINGS, "rx_bytes": pings_bytes,
                              "tx_packets": PINGS, "tx_bytes": pings_bytes}, peer_delta
        assert peer_of(after)["last_receive"] > peer_of(before)["last_receive"] > 0
        assert peer_of(after)["last_send"] > peer_of(before)["last_send"] > 0
