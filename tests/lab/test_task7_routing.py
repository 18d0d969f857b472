"""Lab task 7, routing: routes, not the VPN, decide what enters the tunnel and what comes back.

- On U only 192.168.60.0/24 is routed into the tunnel: V goes through it, a host outside that
  network (U2, 10.9.0.6) is reached directly, and the counters of both tunnel ends prove it,
  packet for packet. Without the route nothing enters the tunnel; a route into the tunnel for
  a destination no peer allows is dropped there, counted as `no_peer`.
- On V (the lab's experiment): without a route back to 192.168.53.0/24 the requests reach V
  through the tunnel but no reply returns; one route via the server-router fixes it.

IPv6 is off in these namespaces (harness/netns.py), so the only packets are the test's own
and every counter can be compared exactly.
"""

from harness.counters import counter_deltas as deltas
from harness.seed import (PRIVATE_NETWORK, SERVER_PRIVATE_ADDRESS, TUNNEL_NETWORK, U2_ADDRESS,
                          V_ADDRESS)

from labkit import (counters, create_client_tunnel, create_server_tunnel, ctl, drops, exact_traffic,
                    ping_fails, ping_ok, traffic, tunnel_status, wait_for_counters)

PINGS = 10
OUTSIDE_HOST = U2_ADDRESS  # on U's own LAN, outside 192.168.60.0/24


def start_lab(lab):
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    create_server_tunnel(server)
    create_client_tunnel(client)
    # Warm-up: the server learns U; from here on both ends' counters move only for pings.
    ping_ok(lab, "u", V_ADDRESS, 1)
    wait_for_counters(server, lambda c: c["tx_packets"] == 1, "the warm-up reply at S")
    wait_for_counters(client, lambda c: c["rx_packets"] == 1, "the warm-up reply at U")
    return server, client


def route_via(lab, role, destination):
    """`ip route get`: the device (and gateway) the kernel would use."""
    return lab.ip(role, "route", "get", destination).stdout.split("\n")[0]


def test_only_routed_destinations_enter_the_tunnel(lab):
    server, client = start_lab(lab)
    interface = tunnel_status(client)["interface"]
    assert f"dev {interface}" in route_via(lab, "u", V_ADDRESS)
    assert "dev eth0" in route_via(lab, "u", OUTSIDE_HOST)

    # A host outside the private network: reached directly; neither tunnel end sees a packet.
    client_before, server_before = counters(client), counters(server)
    ping_ok(lab, "u", OUTSIDE_HOST, PINGS)
    ping_ok(lab, "u", V_ADDRESS, PINGS)  # the tunnel works meanwhile...
    client_after = wait_for_counters(client, lambda c: c["rx_packets"] >=
                                     client_before["rx_packets"] + PINGS, "U's rx_packets")
    server_after = wait_for_counters(server, lambda c: c["tx_packets"] >=
                                     server_before["tx_packets"] + PINGS, "S's tx_packets")
    # ...and carried exactly V's pings: the 10 to U2 never entered it.
    client_delta = deltas(client_before, client_after)
    server_delta = deltas(server_before, server_after)
    assert traffic(client_delta) == exact_traffic(tx=PINGS, rx=PINGS), client_delta
    assert traffic(server_delta) == exact_traffic(tx=PINGS, rx=PINGS), server_delta
    assert drops(client_delta) == drops(server_delta) == {}

    # Without the route, V is unreachable from U, and nothing enters the tunnel.
    ctl(client, "del-route", PRIVATE_NETWORK)
    assert lab.route_device("u", PRIVATE_NETWORK) is None
    before = counters(client)
    ping_fails(lab, "u", V_ADDRESS)
    assert deltas(before, counters(client)) == {key: 0 for key in before}

    # A route sends U2's traffic into the tunnel, but no peer's allowed IPs hold U2: the
    # daemon drops every packet as no_peer (the ping fails; U2 is no longer reached directly).
    ctl(client, "add-route", f"{OUTSIDE_HOST}/32")
    assert f"dev {interface}" in route_via(lab, "u", OUTSIDE_HOST)
    before = counters(client)
    ping_fails(lab, "u", OUTSIDE_HOST, count=PINGS)
    after = wait_for_counters(client, lambda c: c["drop_no_peer"] >=
                              before["drop_no_peer"] + PINGS, "U's drop_no_peer")
    delta = deltas(before, after)
    assert traffic(delta) == exact_traffic(tx=0, rx=0), delta
    assert drops(delta) == {"drop_no_peer": PINGS}, delta

    # Routes back as they were: V through the tunnel, U2 directly.
    ctl(client, "del-route", f"{OUTSIDE_HOST}/32")
    ctl(client, "add-route", PRIVATE_NETWORK)
    ping_ok(lab, "u", OUTSIDE_HOST, 2)
    ping_ok(lab, "u", V_ADDRESS, 2)
    assert tunnel_status(client)["routes"] == [PRIVATE_NETWORK]


def test_private_host_answers_only_with_a_route_back(lab):
    server, client = start_lab(lab)
    lab.ip("v", "route", "del", "default")
    icmp_before = lab.snmp("v", "Icmp")
    client_before, server_before = counters(client), counters(server)

    # The requests cross the tunnel and reach V; V has no route to 192.168.53.99.
    ping_fails(lab, "u", V_ADDRESS, count=PINGS)
    server_after = wait_for_counters(server, lambda c: c["rx_packets"] >=
                                     server_before["rx_packets"] + PINGS, "S's rx_packets")
    icmp_after = lab.snmp("v", "Icmp")
    assert icmp_after["InEchos"] - icmp_before["InEchos"] == PINGS
    assert icmp_after["OutEchoReps"] - icmp_before["OutEchoReps"] == 0
    server_delta = deltas(server_before, server_after)
    client_delta = deltas(client_before, counters(client))
    assert traffic(client_delta) == exact_traffic(tx=PINGS, rx=0), client_delta
    assert traffic(server_delta) == exact_traffic(tx=0, rx=PINGS), server_delta

    # The lab's fix: replies for the tunnel network go to the server-router.
    lab.ip("v", "route", "add", TUNNEL_NETWORK, "via", SERVER_PRIVATE_ADDRESS)
    client_before, server_before = counters(client), counters(server)
    ping_ok(lab, "u", V_ADDRESS, PINGS)
    client_after = wait_for_counters(client, lambda c: c["rx_packets"] >=
                                     client_before["rx_packets"] + PINGS, "U's rx_packets")
    server_after = counters(server)
    assert traffic(deltas(client_before, client_after)) == exact_traffic(tx=PINGS, rx=PINGS)
    assert traffic(deltas(server_before, server_after)) == exact_traffic(tx=PINGS, rx=PINGS)
