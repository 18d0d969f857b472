"""Lab task 9, TAP: the same tunnel in TAP mode carries Ethernet frames, not IP packets.

- Routed over TAP (the lab's task): U's and the server-router's tap devices form one Ethernet
  link, 192.168.53.0/24. ARP crosses it (arping answers with the far end's MAC, and a capture
  on the server's tap shows U's who-has), IP follows, and V, behind the server-router, is
  reached with a route via the far end's address, as on any Ethernet.
- Bridged (an L2 VPN): each site bridges its tap with its LAN, so both LANs become one
  Ethernet segment: a host at one site resolves a host at the other by ARP and reaches it with
  no router in between (TTL 64), full-size frames included, and the far site's bridge learns
  the host's MAC behind the tap.
"""

import re
import shutil

import pytest

from harness.process import wait_until
from harness.seed import (SERVER_ADDRESS, SERVER_PORT, SERVER_TUNNEL_ADDRESS, U_ADDRESS,
                          U_TUNNEL_ADDRESS, V_ADDRESS)

from labkit import TAP_TUNNEL, EthernetLab, counters, ctl, drops, ping_ok, reply_ttls, tunnel_status

pytestmark = pytest.mark.skipif(shutil.which("arping") is None,
                                reason="needs arping (Debian package iputils-arping)")

PINGS = 3
TAP_DEFAULT_MTU = 1500 - 28 - 14  # IPv4 + UDP outer headers, and the Ethernet header inside


def arping(lab, role, interface, destination, count=3):
    """arping's replies as [(address, MAC)], after checking it got exactly `count`."""
    result = lab.exec(role, ["arping", "-c", str(count), "-w", "5", "-I", interface,
                             destination], check=False)
    assert f"Received {count} response(s)" in result.stdout, result.stdout + result.stderr
    replies = re.findall(r"reply from (\S+) \[([0-9A-F:]{17})\]", result.stdout)
    assert len(replies) == count, result.stdout
    return [(address, mac.lower()) for address, mac in replies]


def neighbour_mac(lab, role, address):
    output = lab.ip(role, "neigh", "show", address).stdout
    match = re.search(r"lladdr (\S+)", output)
    return match.group(1) if match else None


def frames_match_across(u_counters, s_counters):
    """Every frame one end sent, the other delivered (and nothing was dropped)."""
    assert drops(u_counters) == drops(s_counters) == {}, (u_counters, s_counters)
    return (u_counters["tx_packets"], u_counters["tx_bytes"]) == \
        (s_counters["rx_packets"], s_counters["rx_bytes"]) and \
        (s_counters["tx_packets"], s_counters["tx_bytes"]) == \
        (u_counters["rx_packets"], u_counters["rx_bytes"])


def test_tap_tunnel_carries_ethernet_frames_and_arp_resolves_across_it(lab):
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    ctl(server, "create", TAP_TUNNEL, "--mode", "tap", "--address",
        f"{SERVER_TUNNEL_ADDRESS}/24", "--listen-port", str(SERVER_PORT))
    ctl(client, "create", TAP_TUNNEL, "--mode", "tap", "--address", f"{U_TUNNEL_ADDRESS}/24")
    ctl(client, "add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}")  # no allowed IPs: frames go by MAC
    u_tap = tunnel_status(client, TAP_TUNNEL)
    s_tap = tunnel_status(server, TAP_TUNNEL)
    assert u_tap["mode"] == s_tap["mode"] == "tap"
    assert u_tap["mtu"] == s_tap["mtu"] == TAP_DEFAULT_MTU
    u_interface, s_interface = u_tap["interface"], s_tap["interface"]
    assert lab.links_of_kind("u", "tap") == [u_interface]
    server_mac = lab.mac("s", s_interface)
    client_mac = lab.mac("u", u_interface)

    # ARP across the tunnel, seen where the lab looked: on the server's TAP device.
    capture = lab.capture("s", s_interface, "arp")
    assert arping(lab, "u", u_interface, SERVER_TUNNEL_ADDRESS) == \
        [(SERVER_TUNNEL_ADDRESS, server_mac)] * 3
    (request, *_) = capture.wait_for(
        rf"{client_mac} > ff:ff:ff:ff:ff:ff, .*Request who-has {SERVER_TUNNEL_ADDRESS} "
        rf".*tell {U_TUNNEL_ADDRESS}")
    capture.wait_for(rf"{server_mac} > {client_mac}, .*Reply {SERVER_TUNNEL_ADDRESS} "
                     rf"is-at {server_mac}", count=3)
    capture.stop()

    # IP over that Ethernet: the kernel resolves the far end itself, then pings pass.
    ping_ok(lab, "u", SERVER_TUNNEL_ADDRESS, PINGS)
    assert neighbour_mac(lab, "u", SERVER_TUNNEL_ADDRESS) == server_mac
    assert neighbour_mac(lab, "s", U_TUNNEL_ADDRESS) == client_mac

    # A host behind the far end: an Ethernet link needs the next hop named (a route "dev
    # tap0" alone would make U ARP for V itself, and nobody on the link answers for V).
    lab.ip("u", "route", "add", "192.168.60.0/24", "via", SERVER_TUNNEL_ADDRESS,
           "dev", u_interface)
    result = ping_ok(lab, "u", V_ADDRESS, PINGS)
    assert reply_ttls(result) == [63] * PINGS  # one router: the server-router

    # The server learned U from its frames: one learned peer, at U's address and port.
    (peer,) = tunnel_status(server, TAP_TUNNEL)["peers"]
    assert (peer["learned"], peer["endpoint"]) == \
        (True, f"10.9.0.5:{u_tap['listen_port']}"), peer
    # 3 ARP + 3 + 3 pings at least each way; every frame sent arrived at the other end.
    wait_until(lambda: frames_match_across(counters(client, TAP_TUNNEL),
                                           counters(server, TAP_TUNNEL)), 5,
               "both ends' frame counters to agree")
    u_counters = counters(client, TAP_TUNNEL)
    assert u_counters["tx_packets"] >= 3 * PINGS and u_counters["rx_packets"] >= 3 * PINGS
    # Frames carry their Ethernet header: a ping is 84 bytes of IP in a 98-byte frame.
    assert u_counters["tx_bytes"] >= 3 * 42 + 2 * PINGS * 98


def test_tap_bridged_with_lans_extends_the_lan(make_lab):
    lab = make_lab(EthernetLab)
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    # MTU 1500: the LAN's own; a full frame then takes two outer IPv4 fragments on the way.
    ctl(server, "create", TAP_TUNNEL, "--mode", "tap", "--listen-port", str(SERVER_PORT),
        "--mtu", "1500")
    ctl(client, "create", TAP_TUNNEL, "--mode", "tap", "--listen-port", str(SERVER_PORT),
        "--mtu", "1500")
    ctl(client, "add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}")
    # Broadcasts from S's LAN go to configured peers only (never to learned ones, whose
    # endpoint anyone can forge): each end is the other's configured peer.
    ctl(server, "add-peer", f"{U_ADDRESS}:{SERVER_PORT}")
    for role, daemon in (("u", client), ("s", server)):
        interface = tunnel_status(daemon, TAP_TUNNEL)["interface"]
        lab.ip(role, "link", "set", interface, "master", "br-lan")
        assert tunnel_status(daemon, TAP_TUNNEL)["addresses"] == []
    h1_address, h2_address = EthernetLab.HOSTS["h1"][1], EthernetLab.HOSTS["h2"][1]
    h1_mac, h2_mac = lab.mac("h1", "eth0"), lab.mac("h2", "eth0")

    # H1's broadcast who-has reaches H2 at the other site; H2 itself answers.
    capture = lab.capture("h2", "eth0", "arp")
    assert arping(lab, "h1", "eth0", h2_address) == [(h2_address, h2_mac)] * 3
    capture.wait_for(rf"{h1_mac} > ff:ff:ff:ff:ff:ff, .*Request who-has {h2_address} "
                     rf".*tell {h1_address}")
    capture.stop()

    # One segment: no router between H1 and H2 (TTL stays 64), and full-size frames pass.
    result = ping_ok(lab, "h1", h2_address, PINGS)
    assert reply_ttls(result) == [64] * PINGS, result.output
    assert neighbour_mac(lab, "h1", h2_address) == h2_mac
    ping_ok(lab, "h1", h2_address, PINGS, size=1500 - 28)  # -M do: a 1514-byte frame
    ping_ok(lab, "h2", h1_address, PINGS)

    # Each site's bridge learned the other site's host behind its tap.
    for site, remote_mac in (("s", h1_mac), ("u", h2_mac)):
        interface = tunnel_status(server if site == "s" else client, TAP_TUNNEL)["interface"]
        fdb = lab.exec(site, ["bridge", "fdb", "show", "br", "br-lan"]).stdout
        assert re.search(rf"^{remote_mac} dev {interface} master br-lan", fdb, re.M), fdb

    wait_until(lambda: frames_match_across(counters(client, TAP_TUNNEL),
                                           counters(server, TAP_TUNNEL)), 5,
               "both ends' frame counters to agree")
    # The full-size pings crossed as 1514-byte frames, each outer datagram fragmented in two.
    assert counters(client, TAP_TUNNEL)["tx_bytes"] >= PINGS * 1514
    assert lab.snmp("u", "Ip")["FragCreates"] >= 2 * PINGS
