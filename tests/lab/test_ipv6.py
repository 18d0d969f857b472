"""IPv6 in the lab: inside the tunnel (U reaches V over IPv6 and IPv4 through one tunnel), and
as the outer transport (the tunnel's UDP datagrams travel over IPv6 between U and the
server-router, the lab's IPv4 traffic inside them).

Addresses added to the lab's topology (docs/lab.md): LAN fd00:9::/64 (U ::5, server-router ::11), private
network fd00:60::/64 (server-router ::11, V ::5, V's default route via ::11), tunnel network
fd00:53::/64 (U ::99, server-router ::11). IPv6 is on in these namespaces, so the tunnel
devices send their own router solicitations and MLD reports; those go to multicast addresses
no peer holds and are dropped as no_peer, so the traffic counters still count only pings.
"""


from harness.counters import counter_deltas as deltas
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, SERVER_TUNNEL_ADDRESS,
                          TUNNEL_NETWORK, U_TUNNEL_ADDRESS, V_ADDRESS)

from labkit import TaskLab, counters, ctl, ping_ok, traffic, tunnel_status, wait_for_counters

PINGS = 5
PING4_BYTES = 20 + 8 + 56
PING6_BYTES = 40 + 8 + 56
V6_ADDRESS = "fd00:60::5"
V6_NETWORK = "fd00:60::/64"
TUNNEL6_NETWORK = "fd00:53::/64"
U_TUNNEL6_ADDRESS = "fd00:53::99"
U_LAN6_ADDRESS = "fd00:9::5"
SERVER_LAN6_ADDRESS = "fd00:9::11"


def ipv6_lab(make_lab):
    lab = make_lab(TaskLab, ipv6=True)
    lab.add_address6("u", "eth0", f"{U_LAN6_ADDRESS}/64")
    lab.add_address6("s", "eth0", f"{SERVER_LAN6_ADDRESS}/64")
    lab.add_address6("s", "eth1", "fd00:60::11/64")
    lab.add_address6("v", "eth0", f"{V6_ADDRESS}/64")
    lab.ip("v", "-6", "route", "add", "default", "via", "fd00:60::11")
    lab.sysctl("s", "net.ipv6.conf.all.forwarding=1")
    return lab


def create_dual_stack_client(client, *extra):
    ctl(client, "create", "tun0", "--address", f"{U_TUNNEL_ADDRESS}/24",
        "--address", f"{U_TUNNEL6_ADDRESS}/64", *extra)
    ctl(client, "add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}", "--allowed-ips",
        f"{PRIVATE_NETWORK},{TUNNEL_NETWORK},{V6_NETWORK},{TUNNEL6_NETWORK}")
    ctl(client, "add-route", PRIVATE_NETWORK)
    ctl(client, "add-route", V6_NETWORK)


def create_dual_stack_server(server):
    ctl(server, "create", "tun0", "--address", f"{SERVER_TUNNEL_ADDRESS}/24",
        "--address", "fd00:53::11/64", "--listen-port", str(SERVER_PORT))


def test_ipv6_and_ipv4_inside_one_tunnel(make_lab):
    lab = ipv6_lab(make_lab)
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    create_dual_stack_server(server)
    # A configured peer for U, both inner addresses, endpoint unknown (""): the server
    # finds U when U first sends and follows it from then on, as with any roaming peer. (The
    # next test leaves it to learning instead.)
    ctl(server, "add-peer", "", "--allowed-ips",
        f"{U_TUNNEL_ADDRESS}/32,{U_TUNNEL6_ADDRESS}/128")
    create_dual_stack_client(client)
    assert lab.route_device("u", V6_NETWORK) == tunnel_status(client)["interface"]

    client_before, server_before = counters(client), counters(server)
    result = ping_ok(lab, "u", V6_ADDRESS, PINGS)
    assert "ttl=63" in result.output or "hlim=63" in result.output, result.output
    ping_ok(lab, "u", V_ADDRESS, PINGS)

    expected = {"tx_packets": 2 * PINGS, "tx_bytes": PINGS * (PING4_BYTES + PING6_BYTES),
                "rx_packets": 2 * PINGS, "rx_bytes": PINGS * (PING4_BYTES + PING6_BYTES)}
    client_after = wait_for_counters(client, lambda c: c["rx_packets"] >=
                                     client_before["rx_packets"] + 2 * PINGS, "U's rx_packets")
    server_after = wait_for_counters(server, lambda c: c["tx_packets"] >=
                                     server_before["tx_packets"] + 2 * PINGS, "S's tx_packets")
    assert traffic(deltas(client_before, client_after)) == expected
    assert traffic(deltas(server_before, server_after)) == expected
    for delta in (deltas(client_before, client_after), deltas(server_before, server_after)):
        assert delta["drop_bad_source"] == 0, delta

    (peer,) = tunnel_status(server)["peers"]
    assert peer["learned"] is False
    assert peer["endpoint"] == f"10.9.0.5:{tunnel_status(client)['listen_port']}", peer


def test_learning_server_carries_both_families_of_a_dual_stack_client(make_lab):
    """The README's server set-up (nothing but `create`), with a dual-stack client: the
    learned peer starts with the first inner source it sees and learns the other family's
    address when it comes from the same endpoint."""
    lab = ipv6_lab(make_lab)
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    create_dual_stack_server(server)  # and nothing else: it learns its clients
    create_dual_stack_client(client)
    ping_ok(lab, "u", V6_ADDRESS, 2)
    result = lab.ping("u", V_ADDRESS, 2)
    assert result.received == 2, f"{result.output}\n{ctl(server, 'status')}"
    ping_ok(lab, "u", V6_ADDRESS, 2)
    (peer,) = tunnel_status(server)["peers"]
    assert peer["learned"] is True
    assert sorted(peer["allowed_ips"]) == [f"{U_TUNNEL_ADDRESS}/32", f"{U_TUNNEL6_ADDRESS}/128"]
    assert counters(server)["drop_bad_source"] == 0


def test_ipv6_as_the_outer_transport(make_lab):
    lab = ipv6_lab(make_lab)
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    ctl(server, "create", "tun0", "--address", f"{SERVER_TUNNEL_ADDRESS}/24",
        "--listen-port", str(SERVER_PORT))  # listens on :: (both families)
    # 1452 = 1500 - 40 (IPv6) - 8 (UDP): the largest inner packet that needs no fragment.
    ctl(client, "create", "tun0", "--address", f"{U_TUNNEL_ADDRESS}/24", "--mtu", "1452")
    ctl(client, "add-peer", f"[{SERVER_LAN6_ADDRESS}]:{SERVER_PORT}",
        "--allowed-ips", f"{PRIVATE_NETWORK},{TUNNEL_NETWORK}")
    ctl(client, "add-route", PRIVATE_NETWORK)

    ping_ok(lab, "u", V_ADDRESS, 1)  # the server learns U
    client_before, server_before = counters(client), counters(server)
    udp_before = {role: (lab.snmp(role, "Udp")["OutDatagrams"],
                         lab.snmp(role, "Udp6", ipv6=True)["OutDatagrams"])
                  for role in ("u", "s")}
    frag_before = {role: lab.snmp(role, "Ip6", ipv6=True)["FragCreates"] for role in ("u", "s")}

    ping_ok(lab, "u", V_ADDRESS, PINGS)
    full_size = 1452 - 28  # ping -s: the IPv4 packet is exactly the tunnel MTU (-M do)
    ping_ok(lab, "u", V_ADDRESS, PINGS, size=full_size)

    client_after = wait_for_counters(client, lambda c: c["rx_packets"] >=
                                     client_before["rx_packets"] + 2 * PINGS, "U's rx_packets")
    server_after = wait_for_counters(server, lambda c: c["tx_packets"] >=
                                     server_before["tx_packets"] + 2 * PINGS, "S's tx_packets")
    bytes_each_way = PINGS * (PING4_BYTES + 1452)
    expected = {"tx_packets": 2 * PINGS, "tx_bytes": bytes_each_way,
                "rx_packets": 2 * PINGS, "rx_bytes": bytes_each_way}
    assert traffic(deltas(client_before, client_after)) == expected
    assert traffic(deltas(server_before, server_after)) == expected

    # Every datagram went out over IPv6, none over IPv4, and none needed fragmenting.
    for role in ("u", "s"):
        udp4 = lab.snmp(role, "Udp")["OutDatagrams"] - udp_before[role][0]
        udp6 = lab.snmp(role, "Udp6", ipv6=True)["OutDatagrams"] - udp_before[role][1]
        assert (udp4, udp6) == (0, 2 * PINGS), (role, udp4, udp6)
        assert lab.snmp(role, "Ip6", ipv6=True)["FragCreates"] == frag_before[role], role

    # The server learned U at its IPv6 address.
    (peer,) = tunnel_status(server)["peers"]
    assert peer["endpoint"] == f"[{U_LAN6_ADDRESS}]:{tunnel_status(client)['listen_port']}"


def test_default_mtu_does_not_fragment_over_ipv6(make_lab):
    """By default no fragments: 1500 - 48 over IPv6."""
    lab = ipv6_lab(make_lab)
    client = lab.start_daemon("u")
    ctl(client, "create", "tun0", "--address", f"{U_TUNNEL_ADDRESS}/24")
    ctl(client, "add-peer", f"[{SERVER_LAN6_ADDRESS}]:{SERVER_PORT}",
        "--allowed-ips", PRIVATE_NETWORK)
    mtu = tunnel_status(client)["mtu"]
    # The default follows the peers: the IPv6 endpoint lowers it, whenever it is added.
    assert mtu == 1452
