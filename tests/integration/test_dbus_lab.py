"""The whole lab driven over D-Bus only: both tunlabd start with NO configuration files, and
everything (tunnels, peer, route, counters, status) goes through the API on the private
system bus (shipped policy), first with tunlabctl, then with busctl alone (the API is the
product: everything tunlabctl can do can also be done with busctl alone)."""

import json
import subprocess

import pytest

from harness.counters import RECEIVE_DROP_REASONS, SEND_DROP_REASONS, counter_deltas
from harness.process import wait_until
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, SERVER_TUNNEL_ADDRESS,
                          TUNNEL_NETWORK, U_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS)
from harness.traffic import PING_PACKET_BYTES

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

PINGS = 25
PING_BYTES = PINGS * PING_PACKET_BYTES


def start_without_files(lab, role):
    daemon = lab.start_daemon(role)
    assert list(daemon.config_dir.iterdir()) == [], "the daemon must start without files"
    assert daemon.status()["tunnels"] == {}
    return daemon


def ping_passes(lab, count=PINGS, interval=0.02):
    result = lab.ping("u", V_ADDRESS, count, interval)
    assert (result.transmitted, result.received) == (count, count), result.output


def assert_exact_ping_counters(client_delta, server_delta):
    """`PINGS` requests U → server and as many replies back, nothing else (as in
    test_counters.py, but read over D-Bus)."""
    for delta in (client_delta, server_delta):
        assert delta["rx_keepalives"] == 0, delta
        for reason in RECEIVE_DROP_REASONS + SEND_DROP_REASONS:
            assert delta[f"drop_{reason}"] == 0, (reason, delta)
    assert client_delta["tx_packets"] == server_delta["rx_packets"] == PINGS, \
        (client_delta, server_delta)
    assert server_delta["tx_packets"] == client_delta["rx_packets"] == PINGS, \
        (client_delta, server_delta)
    assert client_delta["tx_bytes"] == server_delta["rx_bytes"] == PING_BYTES, \
        (client_delta, server_delta)
    assert server_delta["tx_bytes"] == client_delta["rx_bytes"] == PING_BYTES, \
        (client_delta, server_delta)


# ── tunlabctl ───────────────────────────────────────────────────────────────────────────


def test_lab_driven_by_tunlabctl_only(lab):
    server = start_without_files(lab, "s")
    client = start_without_files(lab, "u")

    server.create_server_tunnel()
    client.create_client_tunnel(U_TUNNEL_ADDRESS)
    client_tunnel = client.bus_status()["lab"]
    assert client_tunnel["routes"] == [PRIVATE_NETWORK]
    assert client_tunnel["addresses"] == [f"{U_TUNNEL_ADDRESS}/24"]
    assert lab.route_device("u", PRIVATE_NETWORK) == client_tunnel["interface"]

    # Warm-up: the server learns U; then both baselines are taken over the bus.
    ping_passes(lab, 1)
    client_before = client.wait_for_counters(lambda c: c["rx_packets"] == 1,
                                             "the warm-up reply in U's counters")
    server_before = server.wait_for_counters(lambda c: c["tx_packets"] == 1,
                                             "the warm-up reply in the server's counters")

    ping_passes(lab)
    client_after = client.wait_for_counters(
        lambda c: c["rx_packets"] >= client_before["rx_packets"] + PINGS, "U's rx_packets")
    server_after = server.wait_for_counters(
        lambda c: c["tx_packets"] >= server_before["tx_packets"] + PINGS,
        "the server's tx_packets")
    assert_exact_ping_counters(counter_deltas(client_before, client_after),
                               counter_deltas(server_before, server_after))

    # The server shows the client it learned (it was never configured with it).
    server_tunnel = server.bus_status()["lab"]
    (learned,) = server_tunnel["peers"]
    assert learned["learned"] is True, learned
    assert learned["endpoint"] == f"{U_ADDRESS}:{client_tunnel['listen_port']}", learned
    assert f"{U_TUNNEL_ADDRESS}/32" in learned["allowed_ips"], learned
    assert learned["counters"]["rx_packets"] == PINGS + 1, learned
    assert learned["counters"]["tx_packets"] == PINGS + 1, learned
    assert server_tunnel["listen_port"] == SERVER_PORT
    (configured,) = client.bus_status()["lab"]["peers"]
    assert configured["learned"] is False
    assert configured["endpoint"] == f"{SERVER_ADDRESS}:{SERVER_PORT}"

    # remove-peer: nothing leaves U through the tunnel any more (counted as no_peer drops).
    client.ctl("remove-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}")
    assert client.bus_status()["lab"]["peers"] == []
    before = client.counters()
    lab.ping_unanswered("u", V_ADDRESS, 3)
    after = client.wait_for_counters(lambda c: c["drop_no_peer"] >= before["drop_no_peer"] + 3,
                                     "U's no_peer drops")
    assert counter_deltas(before, after)["drop_no_peer"] == 3
    assert counter_deltas(before, after)["tx_packets"] == 0

    # Back with the peer, then del-route: the kernel no longer routes V into the tunnel.
    client.ctl("add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}",
               "--allowed-ips", f"{PRIVATE_NETWORK},{TUNNEL_NETWORK}")
    ping_passes(lab, 3)
    client.ctl("del-route", PRIVATE_NETWORK)
    assert client.bus_status()["lab"]["routes"] == []
    assert lab.route_device("u", PRIVATE_NETWORK) is None
    before = client.counters()
    lab.ping_unanswered("u", V_ADDRESS, 3)
    assert counter_deltas(before, client.counters())["tx_packets"] == 0


# ── busctl ──────────────────────────────────────────────────────────────────────────────


def busctl(daemon, *args):
    """busctl on the daemon's private bus (--system honours DBUS_SYSTEM_BUS_ADDRESS), with
    JSON output; returns the "data" of the reply (None for an empty reply)."""
    result = subprocess.run(["busctl", "--system", "--json=short", *args],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env=daemon.bus.env(), timeout=30)
    assert result.returncode == 0, \
        (f"busctl {' '.join(args)}: {result.stderr.strip()}\n"
         f"tunlabd {'runs' if daemon.alive() else 'is dead'}; {daemon.describe()}")
    if not result.stdout.strip():
        return None
    return json.loads(result.stdout)["data"]


def bus_call(daemon, path, interface, method, signature="", *args):
    data = busctl(daemon, "call", "org.tunlab1", path, f"org.tunlab1.{interface}", method,
                  *([signature] if signature else []), *map(str, args))
    return data[0] if data else None


def bus_property(daemon, path, interface, name):
    return busctl(daemon, "get-property", "org.tunlab1", path, f"org.tunlab1.{interface}", name)


def bus_counters(daemon, path="/org/tunlab1/tunnel/lab"):
    return bus_property(daemon, path, "Tunnel", "Counters")


def wait_for_bus_counters(daemon, condition, what):
    def counters_if_condition_holds():
        counters = bus_counters(daemon)
        return counters if condition(counters) else None

    return wait_until(counters_if_condition_holds, 5.0, what, interval=0.05)


def test_lab_driven_by_busctl_only(lab):
    server = start_without_files(lab, "s")
    client = start_without_files(lab, "u")

    # The examples of docs/dbus-api.md, literally.
    server_path = bus_call(server, "/org/tunlab1", "Manager", "CreateTunnel", "sa{sv}", "lab",
                           2, "addresses", "as", 1, f"{SERVER_TUNNEL_ADDRESS}/24",
                           "listen_port", "q", SERVER_PORT)
    assert server_path == "/org/tunlab1/tunnel/lab"
    client_path = bus_call(client, "/org/tunlab1", "Manager", "CreateTunnel", "sa{sv}", "lab",
                           1, "addresses", "as", 1, f"{U_TUNNEL_ADDRESS}/24")
    assert bus_call(client, "/org/tunlab1", "Manager", "GetTunnel", "s", "lab") == client_path
    peer_path = bus_call(client, client_path, "Tunnel", "AddPeer", "sa{sv}",
                         f"{SERVER_ADDRESS}:{SERVER_PORT}", 1, "allowed_ips", "as", 2,
                         PRIVATE_NETWORK, TUNNEL_NETWORK)
    assert peer_path.startswith(client_path + "/peer/"), peer_path
    bus_call(client, client_path, "Tunnel", "AddRoute", "sa{sv}", PRIVATE_NETWORK, 0)
    assert bus_property(client, client_path, "Tunnel", "Routes") == [PRIVATE_NETWORK]
    assert bus_property(client, "/org/tunlab1", "Manager", "Tunnels") == [client_path]
    interface = bus_property(client, client_path, "Tunnel", "Interface")
    assert lab.route_device("u", PRIVATE_NETWORK) == interface

    ping_passes(lab, 1)
    client_before = wait_for_bus_counters(client, lambda c: c["rx_packets"] == 1,
                                          "the warm-up reply in U's counters")
    server_before = wait_for_bus_counters(server, lambda c: c["tx_packets"] == 1,
                                          "the warm-up reply in the server's counters")
    ping_passes(lab)
    client_after = wait_for_bus_counters(
        client, lambda c: c["rx_packets"] >= client_before["rx_packets"] + PINGS,
        "U's rx_packets")
    server_after = wait_for_bus_counters(
        server, lambda c: c["tx_packets"] >= server_before["tx_packets"] + PINGS,
        "the server's tx_packets")
    assert_exact_ping_counters(counter_deltas(client_before, client_after),
                               counter_deltas(server_before, server_after))

    # The learned peer, property by property.
    (learned_path,) = bus_property(server, server_path, "Tunnel", "Peers")
    assert bus_property(server, learned_path, "Peer", "Learned") is True
    client_port = bus_property(client, client_path, "Tunnel", "ListenPort")
    assert bus_property(server, learned_path, "Peer", "Endpoint") == f"{U_ADDRESS}:{client_port}"
    assert bus_property(server, learned_path, "Peer", "Counters")["rx_packets"] == PINGS + 1
    assert bus_property(server, learned_path, "Peer", "LastReceive") > 0

    bus_call(client, client_path, "Tunnel", "RemovePeer", "o", peer_path)
    assert bus_property(client, client_path, "Tunnel", "Peers") == []
    lab.ping_unanswered("u", V_ADDRESS, 3)

    bus_call(client, client_path, "Tunnel", "AddPeer", "sa{sv}", f"{SERVER_ADDRESS}:{SERVER_PORT}",
             1, "allowed_ips", "as", 1, PRIVATE_NETWORK)
    ping_passes(lab, 3)
    bus_call(client, client_path, "Tunnel", "RemoveRoute", "s", PRIVATE_NETWORK)
    assert bus_property(client, client_path, "Tunnel", "Routes") == []
    assert lab.route_device("u", PRIVATE_NETWORK) is None
    lab.ping_unanswered("u", V_ADDRESS, 3)

    bus_call(client, "/org/tunlab1", "Manager", "DeleteTunnel", "s", "lab")
    assert bus_property(client, "/org/tunlab1", "Manager", "Tunnels") == []
