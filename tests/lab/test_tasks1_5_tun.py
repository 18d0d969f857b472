"""Lab tasks 1-5 with tunlab, step by step as the lab report shows them: the network without a
VPN, a TUN interface made by tunlabd, packets read from it, carried to the server in UDP
datagrams, written into the server's TUN, answered by V, and the answers carried back.

The deeper checks of the same ground live in tests/integration: exact counters at both ends
(test_counters.py, test_dbus_lab.py), 20 MB over TCP (test_tcp_transfer.py), two clients at
once (test_two_clients.py), the lab's own Python programs against tunlabd on either end, byte
for byte (test_seed_interop.py).
"""

import re

from harness.counters import counter_deltas as deltas
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, U_ADDRESS, U_TUNNEL_ADDRESS,
                          V_ADDRESS)
from harness.traffic import PING_PACKET_BYTES

from labkit import (TUNNEL, counters, create_client_tunnel, create_server_tunnel, ctl, drops,
                    ping_fails, ping_ok, reply_ttls, traffic, tunnel_status, wait_for_counters)

PINGS = 5


def test_task1_network_setup(lab):
    """U reaches the server-router, the server-router reaches V, U does not reach V."""
    capture = lab.capture("sw", "br0", "icmp")  # the lab sniffs the 10.9.0.0/24 bridge
    result = ping_ok(lab, "u", SERVER_ADDRESS, PINGS)
    assert reply_ttls(result) == [64] * PINGS
    capture.wait_for(rf"{U_ADDRESS} > {SERVER_ADDRESS}: ICMP echo request", PINGS)
    capture.wait_for(rf"{SERVER_ADDRESS} > {U_ADDRESS}: ICMP echo reply", PINGS)
    ping_ok(lab, "s", V_ADDRESS, PINGS)
    assert "Network is unreachable" in ping_fails(lab, "u", V_ADDRESS)


def test_task2_tun_interface_made_and_read_by_tunlabd(lab):
    """2.a/b: `tunlabctl create` makes the TUN device, with the lab's address, up. 2.c: what
    the kernel routes into it, tunlabd reads; with no peer for it, every packet is counted as
    dropped (no_peer) instead of printed."""
    client = lab.start_daemon("u")
    ctl(client, "create", TUNNEL, "--address", f"{U_TUNNEL_ADDRESS}/24")
    tunnel = tunnel_status(client)
    assert (tunnel["mode"], tunnel["protocol"], tunnel["state"]) == ("tun", "plain", "up")
    interface = tunnel["interface"]
    assert interface == "tun0"  # the kernel's first free name, as in the lab
    link = lab.link("u", interface)
    assert link["linkinfo"]["info_data"]["type"] == "tun"
    assert {"POINTOPOINT", "NOARP", "UP"} <= set(link["flags"])
    assert link["mtu"] == tunnel["mtu"] == 1472  # 1500 - 20 (IPv4) - 8 (UDP): no fragments
    addresses = lab.ip("u", "-4", "addr", "show", "dev", interface).stdout
    assert f"inet {U_TUNNEL_ADDRESS}/24 " in addresses, addresses

    # The lab pings 192.168.53.9, an address on the tunnel's network: into the device.
    before = counters(client)
    ping_fails(lab, "u", "192.168.53.9", count=PINGS)
    after = wait_for_counters(client, lambda c: c["drop_no_peer"] >= PINGS, "drop_no_peer")
    delta = deltas(before, after)
    assert drops(delta) == {"drop_no_peer": PINGS}, delta
    assert traffic(delta) == {"tx_packets": 0, "tx_bytes": 0, "rx_packets": 0, "rx_bytes": 0}

    # The lab leaves the MTU at the kernel's 1500; tunlab does so when asked.
    ctl(client, "delete", TUNNEL)
    assert lab.links_of_kind("u", "tun") == []
    ctl(client, "create", TUNNEL, "--address", f"{U_TUNNEL_ADDRESS}/24", "--mtu", "1500")
    assert lab.link("u", tunnel_status(client)["interface"])["mtu"] == 1500


def test_tasks3_to_5_packets_cross_the_tunnel_and_v_answers(lab):
    """3: U's packets to V go into the TUN and out as UDP datagrams to the server's port 9090,
    one packet per datagram, nothing added (84-byte pings in 84-byte payloads). 4: the server
    writes them into its TUN, the kernel forwards them to V, V answers. 5: the answers go back
    the same way, and U's ping gets its replies."""
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    create_server_tunnel(server)
    create_client_tunnel(client)
    assert lab.route_device("u", PRIVATE_NETWORK) == tunnel_status(client)["interface"]

    outer = lab.capture("s", "eth0", "udp", "port", str(SERVER_PORT))
    inner = lab.capture("s", "eth1", "icmp")
    result = ping_ok(lab, "u", V_ADDRESS, PINGS, interval=0.05)
    assert reply_ttls(result) == [63] * PINGS  # V's 64, minus the server-router's hop

    # Task 3, as the lab's server printed it: "10.9.0.5:41440 --> 0.0.0.0:9090".
    requests = outer.wait_for(rf"{U_ADDRESS}\.\d+ > {SERVER_ADDRESS}\.{SERVER_PORT}: UDP, "
                              rf"length {PING_PACKET_BYTES}$", PINGS)
    ports = {re.search(rf"{U_ADDRESS}\.(\d+) >", line).group(1) for line in requests}
    assert ports == {str(tunnel_status(client)["listen_port"])}, requests
    # Task 5's way back: to the address and port U's datagrams came from.
    outer.wait_for(rf"{SERVER_ADDRESS}\.{SERVER_PORT} > {U_ADDRESS}\.{ports.pop()}: UDP, "
                   rf"length {PING_PACKET_BYTES}$", PINGS)
    # Task 4, as the lab's tcpdump on the server's eth1 showed it.
    inner.wait_for(rf"{U_TUNNEL_ADDRESS} > {V_ADDRESS}: ICMP echo request", PINGS)
    inner.wait_for(rf"{V_ADDRESS} > {U_TUNNEL_ADDRESS}: ICMP echo reply", PINGS)
    for capture in (outer, inner):
        lines = capture.stop()
        assert len(lines) == 2 * PINGS, "\n".join(lines)  # nothing else crossed

    # tunlabctl tells the same story on both ends.
    (peer,) = tunnel_status(server)["peers"]
    assert peer["learned"] and peer["allowed_ips"] == [f"{U_TUNNEL_ADDRESS}/32"]
    for daemon in (client, server):
        wait_for_counters(daemon, lambda c: c["rx_packets"] == c["tx_packets"] == PINGS,
                          f"{PINGS} packets each way")
