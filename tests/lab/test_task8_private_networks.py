"""Lab task 8, a VPN between two private networks: a client-router (10.9.0.12, with
192.168.50.0/24 behind it) and the server-router (10.9.0.11, with 192.168.60.0/24) join their
networks with one tunnel; every host on one side reaches every host on the other, in both
directions, with its own address (no NAT), and only through the tunnel (SiteToSiteLab).

Both gateways are configured symmetrically with tunlabctl: each listens on 9090, knows the
other as a peer that holds the other private network, and routes that network into the
tunnel. So either side may speak first: the server needs to learn nothing.
"""

from harness.counters import counter_deltas as deltas
from harness.seed import SERVER_ADDRESS, SERVER_PORT

from labkit import (TUNNEL, SiteToSiteLab, counters, ctl, drops, exact_traffic, ping_ok, reply_ttls,
                    traffic, tunnel_status, wait_for_counters)

PINGS = 3
CLIENT_SIDE = ("a", "b")   # 192.168.50.5, .6
SERVER_SIDE = ("v", "w")   # 192.168.60.5, .6
CLIENT_NETWORK = SiteToSiteLab.CLIENT_PRIVATE_NETWORK
SERVER_NETWORK = "192.168.60.0/24"
CLIENT_ROUTER = SiteToSiteLab.CLIENT_ROUTER_ADDRESS


def test_hosts_on_both_private_networks_reach_each_other_both_ways(make_lab):
    lab = make_lab(SiteToSiteLab)
    server = lab.start_daemon("s")
    client_router = lab.start_daemon("cr")

    ctl(server, "create", TUNNEL, "--address", "192.168.53.11/24",
        "--listen-port", str(SERVER_PORT))
    ctl(server, "add-peer", f"{CLIENT_ROUTER}:{SERVER_PORT}",
        "--allowed-ips", f"{CLIENT_NETWORK},192.168.53.12/32")
    ctl(server, "add-route", CLIENT_NETWORK)

    ctl(client_router, "create", TUNNEL, "--address", "192.168.53.12/24",
        "--listen-port", str(SERVER_PORT))
    ctl(client_router, "add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}",
        "--allowed-ips", f"{SERVER_NETWORK},192.168.53.0/24")
    ctl(client_router, "add-route", SERVER_NETWORK)

    for role, daemon, network in (("cr", client_router, SERVER_NETWORK),
                                  ("s", server, CLIENT_NETWORK)):
        assert lab.route_device(role, network) == tunnel_status(daemon)["interface"]

    # The server side speaks first: nothing has come from the client-router yet.
    for source in SERVER_SIDE:
        for destination in CLIENT_SIDE:
            result = ping_ok(lab, source, lab.HOSTS[destination], PINGS)
            # Two routers on the way, each one hop: 64 - 2.
            assert reply_ttls(result) == [62] * PINGS, result.output
    for source in CLIENT_SIDE:
        for destination in SERVER_SIDE:
            ping_ok(lab, source, lab.HOSTS[destination], PINGS)

    # 8 pairs x 3 pings: every request and every reply crossed the tunnel once.
    crossings = len(CLIENT_SIDE) * len(SERVER_SIDE) * 2 * PINGS
    client_counters = wait_for_counters(client_router, lambda c: c["rx_packets"] >= crossings,
                                        "the client-router's rx_packets")
    server_counters = wait_for_counters(server, lambda c: c["rx_packets"] >= crossings,
                                        "the server-router's rx_packets")
    for name, values in (("client-router", client_counters), ("server-router", server_counters)):
        assert traffic(values) == exact_traffic(tx=crossings, rx=crossings), (name, values)
        assert drops(values) == {}, (name, values)

    # The server's one peer is the configured one (nothing learned), at the client-router.
    (peer,) = tunnel_status(server)["peers"]
    assert (peer["learned"], peer["endpoint"]) == (False, f"{CLIENT_ROUTER}:{SERVER_PORT}")

    # Hosts see each other's own addresses: a TCP connection each way.
    forward = lab.tcp_transfer("a", "v", lab.HOSTS["v"], b"x" * 100_000, port=5001)
    assert (forward.sender_address, forward.received_bytes) == (lab.HOSTS["a"], 100_000)
    backward = lab.tcp_transfer("w", "b", lab.HOSTS["b"], b"y" * 100_000, port=5002)
    assert (backward.sender_address, backward.received_bytes) == (lab.HOSTS["w"], 100_000)

    # Without the tunnel there is no way across: delete it on the client-router.
    ctl(client_router, "delete", TUNNEL)
    before = counters(server)
    result = lab.ping("v", lab.HOSTS["a"], PINGS)
    assert result.received == 0, result.output
    after = wait_for_counters(server, lambda c: c["tx_packets"] >= before["tx_packets"] + PINGS,
                              "the server's tx_packets (sent into the void)")
    assert deltas(before, after)["rx_packets"] == 0
