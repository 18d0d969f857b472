"""Peer objects registered on demand (dbus/service/peer_objects.hpp): a tunnel with more than
256 peers registers a peer's object only when a call arrives for its path or when it must
signal, and keeps at most about 256 of them registered. None of that may show: every path in
`Peers` answers (Get, GetAll, Introspect, SetEndpoint) as if it had always been there,
EndpointChanged comes for a peer nobody has touched, and unknown paths still fail with
UnknownObject. A tunnel with at most 256 peers registers all of them (`busctl tree` complete).
Each test checks, by introspecting the tunnel, that the peer it uses really was unregistered
before (or registered, for the small tunnel), so that the path it means to test is the one
taken."""

import subprocess
import xml.etree.ElementTree as ElementTree

import dbus
import pytest

from harness.dbus_client import PEER, TUNNEL, Client, options
from harness.monitor import subscribed_monitor
from harness.seed import U_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS, server_config

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

TUNNEL_PATH = "/org/tunlab1/tunnel/lab"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
RESIDENT_OBJECTS = 256   # PeerObjects::kResidentObjects
MANY = RESIDENT_OBJECTS + 44


def configured_peers(count):
    """`count` unreachable peers, none of them the lab's client U."""
    return [{"endpoint": f"10.100.{i // 250}.{i % 250 + 1}:9090",
             "allowed_ips": [f"172.16.{i // 250}.{i % 250 + 1}/32"]} for i in range(count)]


def children(client, path):
    """The child nodes sd-bus lists for `path`: its registered objects (and the nodes above
    them)."""
    try:
        xml = client.call(path, INTROSPECTABLE, "Introspect")
    except dbus.exceptions.DBusException as error:
        if error.get_dbus_name() == "org.freedesktop.DBus.Error.UnknownObject":
            return []
        raise
    return [node.get("name") for node in ElementTree.fromstring(xml).findall("node")]


def registered_peers(client):
    """The paths of the peers whose objects are registered now."""
    if "peer" not in children(client, TUNNEL_PATH):
        return set()
    return {f"{TUNNEL_PATH}/peer/{name}" for name in children(client, f"{TUNNEL_PATH}/peer")}


def error_name(client, path, interface, method, signature="", *args):
    return client.error(path, interface, method, signature, *args)[0]


def test_untouched_peers_of_a_large_tunnel_answer(lab):
    server = lab.start_daemon("s", {"lab": server_config(peers=configured_peers(MANY))})
    with Client(server.bus.address) as client:
        paths = client.get(TUNNEL_PATH, TUNNEL, "Peers")
        assert len(paths) == MANY
        assert registered_peers(client) == set()  # nothing was registered up front

        # A configured peer nobody has asked about: Get, then GetAll, by path.
        first = paths[150]
        assert client.get(first, PEER, "Endpoint") == "10.100.0.151:9090"
        assert client.get_all(first, PEER)["AllowedIPs"] == ["172.16.0.151/32"]
        assert registered_peers(client) == {first}

        # Introspect as the first call to a peer.
        second = paths[151]
        xml = client.call(second, INTROSPECTABLE, "Introspect")
        assert PEER in [node.get("name") for node in ElementTree.fromstring(xml).iter("interface")]

        # busctl, as a user would.
        third = paths[152]
        shown = subprocess.run(
            ["busctl", f"--address={server.bus.address}", "get-property", "org.tunlab1", third,
             PEER, "Endpoint"], check=True, capture_output=True, text=True, timeout=30).stdout
        assert shown.strip() == 's "10.100.0.153:9090"'

        # SetEndpoint as the first call to a peer; the change shows and survives.
        fourth = paths[153]
        assert fourth not in registered_peers(client)
        client.call(fourth, PEER, "SetEndpoint", "s", "10.200.0.1:4000")
        assert client.get(fourth, PEER, "Endpoint") == "10.200.0.1:4000"

        # A peer added now answers at once.
        added = client.call(TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", "10.201.0.1:9090",
                            options({"allowed_ips": ("as", ["172.31.0.1/32"])}))
        assert client.get(added, PEER, "AllowedIPs") == ["172.31.0.1/32"]
        assert len(client.get(TUNNEL_PATH, TUNNEL, "Peers")) == MANY + 1

        # Paths that name no peer fail as before, registered or not.
        unknown = "org.freedesktop.DBus.Error.UnknownObject"
        assert error_name(client, f"{TUNNEL_PATH}/peer/999999", PEER, "SetEndpoint", "s",
                          "10.9.0.1:1") == unknown
        assert error_name(client, f"{TUNNEL_PATH}/peer/0151", PEER, "SetEndpoint", "s",
                          "10.9.0.1:1") == unknown
        client.call(TUNNEL_PATH, TUNNEL, "RemovePeer", "o", first)
        assert error_name(client, first, "org.freedesktop.DBus.Properties", "Get", "ss",
                          PEER, "Endpoint") == unknown
        untouched = paths[200]
        client.call(TUNNEL_PATH, TUNNEL, "RemovePeer", "o", untouched)
        assert error_name(client, untouched, "org.freedesktop.DBus.Properties", "Get", "ss",
                          PEER, "Endpoint") == unknown

        # Reading every peer works and leaves a bounded number of objects registered.
        remaining = client.get(TUNNEL_PATH, TUNNEL, "Peers")
        for path in remaining:
            assert client.get_all(path, PEER)["Endpoint"]
        assert len(registered_peers(client)) <= RESIDENT_OBJECTS
        # ... and the first of them, unregistered again by now, still answers.
        assert remaining[0] not in registered_peers(client)
        assert client.get(remaining[0], PEER, "Endpoint") == "10.100.0.1:9090"

        # tunlabctl sees the same.
        (tunnel,) = server.ctl_json("status")["tunnels"]
        assert sorted(peer["path"] for peer in tunnel["peers"]) == sorted(remaining)
    assert server.alive()


def test_untouched_learned_peer_signals_when_it_roams(lab):
    server = lab.start_daemon("s", {"lab": server_config(peers=configured_peers(MANY))})
    client_host = lab.start_daemon("u")
    monitor = subscribed_monitor(lab, server)

    client_host.create_client_tunnel(U_TUNNEL_ADDRESS, listen_port=40001)
    assert lab.ping("u", V_ADDRESS, 1).received == 1
    learned = monitor.expect("PeerAdded", TUNNEL_PATH)["arguments"]["peer"]
    with Client(server.bus.address) as client:
        assert learned not in registered_peers(client)

    # The client comes back from a new source port: EndpointChanged (and PropertiesChanged)
    # from a peer whose object was not registered.
    client_host.ctl("delete", "lab")
    client_host.create_client_tunnel(U_TUNNEL_ADDRESS, listen_port=40002)
    assert lab.ping("u", V_ADDRESS, 1).received == 1
    changed = monitor.expect("EndpointChanged", learned, {"endpoint": f"{U_ADDRESS}:40002"})
    assert changed["interface"] == PEER
    with Client(server.bus.address) as client:
        assert client.get(learned, PEER, "Endpoint") == f"{U_ADDRESS}:40002"
        assert client.get(learned, PEER, "Learned") is True


def test_set_endpoint_on_an_untouched_peer_signals(lab):
    server = lab.start_daemon("s", {"lab": server_config(peers=configured_peers(MANY))})
    monitor = subscribed_monitor(lab, server)
    with Client(server.bus.address) as client:
        peer = client.get(TUNNEL_PATH, TUNNEL, "Peers")[42]
        assert peer not in registered_peers(client)
        client.call(peer, PEER, "SetEndpoint", "s", "10.202.0.1:5000")
    monitor.expect("EndpointChanged", peer, {"endpoint": "10.202.0.1:5000"})


def test_small_tunnel_registers_every_peer(lab):
    """Up to 256 peers all objects are registered: `busctl tree` shows every peer without any
    call to it, also for peers added later."""
    count = 5
    server = lab.start_daemon("s", {"lab": server_config(peers=configured_peers(count))})
    with Client(server.bus.address) as client:
        paths = client.get(TUNNEL_PATH, TUNNEL, "Peers")
        assert registered_peers(client) == set(paths)
        added = client.call(TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", "10.201.0.1:9090",
                            options())
        assert registered_peers(client) == set(paths) | {added}
    tree = subprocess.run(["busctl", f"--address={server.bus.address}", "tree", "--list",
                           "org.tunlab1"], check=True, capture_output=True, text=True,
                          timeout=30).stdout.split()
    assert set(paths) | {added} <= set(tree)
