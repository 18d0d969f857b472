"""Signals, as `tunlabctl --json monitor` prints them (one JSON line per signal, as it comes):
TunnelAdded, PeerAdded (for a configured peer, and for a LEARNED one when a new client first
sends), EndpointChanged when the client comes back from a new source port (roaming),
PeerRemoved, TunnelRemoved. Every wait has a deadline; nothing sleeps."""

import pytest

from harness.monitor import subscribed_monitor
from harness.seed import SERVER_PORT, SERVER_TUNNEL_ADDRESS, U_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

MANAGER_PATH = "/org/tunlab1"
TUNNEL_PATH = "/org/tunlab1/tunnel/lab"


def learned_peers(daemon):
    return [peer for peer in daemon.bus_status()["lab"]["peers"] if peer["learned"]]


def test_monitor_sees_every_signal(lab):
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    monitor = subscribed_monitor(lab, server)

    server.create_server_tunnel()
    added = monitor.expect("TunnelAdded", MANAGER_PATH, {"tunnel": TUNNEL_PATH, "name": "lab"})
    assert added["interface"] == "org.tunlab1.Manager"
    monitor.expect("PropertiesChanged", MANAGER_PATH)  # Tunnels

    # A configured peer comes and goes.
    server.ctl("add-peer", "10.9.0.77:9090", "--allowed-ips", "10.77.0.0/16")
    (configured,) = server.bus_status()["lab"]["peers"]
    added = monitor.expect("PeerAdded", TUNNEL_PATH, {"peer": configured["path"]})
    assert added["interface"] == "org.tunlab1.Tunnel"
    server.ctl("remove-peer", "10.9.0.77:9090")
    monitor.expect("PeerRemoved", TUNNEL_PATH, {"peer": configured["path"]})

    # A client the server never heard of sends: the server learns it and says so.
    client.create_client_tunnel(U_TUNNEL_ADDRESS, listen_port=40001)
    assert lab.ping("u", V_ADDRESS, 1).received == 1
    (learned,) = learned_peers(server)
    assert learned["endpoint"] == f"{U_ADDRESS}:40001"
    monitor.expect("PeerAdded", TUNNEL_PATH, {"peer": learned["path"]})

    # The client's tunnel restarts from a new source port: the same peer roams.
    client.ctl("delete", "lab")
    client.create_client_tunnel(U_TUNNEL_ADDRESS, listen_port=40002)
    assert lab.ping("u", V_ADDRESS, 1).received == 1
    changed = monitor.expect("EndpointChanged", learned["path"], {"endpoint": f"{U_ADDRESS}:40002"})
    assert changed["interface"] == "org.tunlab1.Peer"
    assert [peer["path"] for peer in learned_peers(server)] == [learned["path"]]
    # One learned peer, announced once.
    assert [s["arguments"]["peer"] for s in monitor.signals("PeerAdded")] == \
        [configured["path"], learned["path"]]

    server.ctl("remove-peer", learned["path"])
    monitor.expect("PeerRemoved", TUNNEL_PATH, {"peer": learned["path"]})

    server.ctl("delete", "lab")
    monitor.expect("TunnelRemoved", MANAGER_PATH, {"tunnel": TUNNEL_PATH, "name": "lab"})


def test_expiry_of_a_learned_peer_is_signalled(lab):
    """PeerRemoved also comes when a learned peer expires (docs/dbus-api.md). tunlabctl has
    no option for the timeout, so the server tunnel is made with python3-dbus."""
    from harness.dbus_client import MANAGER, Client, options

    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    monitor = subscribed_monitor(lab, server)
    with Client(server.bus.address) as bus:
        bus.call(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "lab", options({
            "addresses": ("as", [f"{SERVER_TUNNEL_ADDRESS}/24"]),
            "listen_port": ("q", SERVER_PORT),
            "learned_peer_timeout": ("u", 1),
        }))
    client.create_client_tunnel(U_TUNNEL_ADDRESS)
    assert lab.ping("u", V_ADDRESS, 1).received == 1
    (learned,) = learned_peers(server)
    monitor.expect("PeerAdded", TUNNEL_PATH, {"peer": learned["path"]})
    # Nothing more is sent: after about a second the server forgets the client.
    removed = monitor.expect("PeerRemoved", TUNNEL_PATH, {"peer": learned["path"]},
                             timeout=10)
    assert removed["interface"] == "org.tunlab1.Tunnel"
    assert learned_peers(server) == []
