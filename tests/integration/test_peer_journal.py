"""Peer changes at scale are journaled (daemon/config/state_store.hpp): each AddPeer, RemovePeer
or SetAllowedIPs appends one record beside the tunnel's state file instead of rewriting the
state of every peer, and is on disk before its reply. This checks that at a few thousand peers
every change answered survives kill -9 exactly, with a torn last record (a crash in the middle
of an append) dropped, logged, and never fatal. The journal's framing, torn records at every
byte and compaction are unit-tested (tests/unit/state_journal_test.cpp)."""

import os
import stat

import dbus
import pytest

from harness.seed import U_ADDRESS, server_config

pytestmark = pytest.mark.usefixtures("tunlabctl")

PEERS = 3_000
TUNNEL_PATH = "/org/tunlab1/tunnel/lab"


def file_peers(count):
    """`count` peers, each with an endpoint and a /32 of its own, none of them reachable."""
    peers = []
    for i in range(count):
        high, low = divmod(i, 250)
        peers.append({"endpoint": f"10.100.{high}.{low + 1}:9090",
                      "allowed_ips": [f"172.16.{high}.{low + 1}/32"]})
    return peers


def shown_peers(daemon):
    (tunnel,) = daemon.ctl_json("status")["tunnels"]
    return {peer["endpoint"]: sorted(peer["allowed_ips"]) for peer in tunnel["peers"]}


def strings(values):
    return dbus.Array(values, signature="s")


def test_every_answered_change_survives_kill_9(lab):
    server = lab.start_daemon("s", {"lab": server_config(peers=file_peers(PEERS))})
    expected = {peer["endpoint"]: peer["allowed_ips"] for peer in file_peers(PEERS)}
    connection = dbus.bus.BusConnection(server.bus.address)
    tunnel = dbus.Interface(connection.get_object("org.tunlab1", TUNNEL_PATH),
                            "org.tunlab1.Tunnel")
    properties = dbus.Interface(connection.get_object("org.tunlab1", TUNNEL_PATH),
                                "org.freedesktop.DBus.Properties")

    # Added over the bus, some removed again, one changed; and some of the file's peers removed.
    added = []
    for i in range(20):
        endpoint, prefix = f"10.250.0.{i + 1}:9090", f"172.31.0.{i + 1}/32"
        added.append(tunnel.AddPeer(endpoint, dbus.Dictionary(
            {"allowed_ips": strings([prefix])}, signature="sv")))
        expected[endpoint] = [prefix]
    for path in added[:5]:
        tunnel.RemovePeer(path)
    for i in range(5):
        del expected[f"10.250.0.{i + 1}:9090"]
    changed = dbus.Interface(connection.get_object("org.tunlab1", added[10]), "org.tunlab1.Peer")
    changed.SetAllowedIPs(strings(["172.31.1.0/24", "172.31.0.11/32"]))
    expected["10.250.0.11:9090"] = ["172.31.0.11/32", "172.31.1.0/24"]
    for path in properties.Get("org.tunlab1.Tunnel", "Peers")[100:110]:
        peer = dbus.Interface(connection.get_object("org.tunlab1", path),
                              "org.freedesktop.DBus.Properties")
        del expected[str(peer.Get("org.tunlab1.Peer", "Endpoint"))]
        tunnel.RemovePeer(path)
    connection.close()
    assert shown_peers(server) == expected

    # The changes are in the journal, which holds keys like the state file: the daemon's alone.
    journal = server.state_dir / "tunnels" / "lab.journal"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    journal_size = journal.stat().st_size
    assert 0 < journal_size < (server.state_dir / "tunnels" / "lab.json").stat().st_size

    # kill -9 in the middle of the next append: the record is half on disk.
    server.crash()
    with open(journal, "ab") as torn:
        torn.write((200).to_bytes(4, "little") + os.urandom(30))
    server.start()
    assert shown_peers(server) == expected
    log = server.log_path.read_text(errors="replace")
    assert "was cut short by a crash" in log

    # And once more without the tear: the start saved everything anew (a new base), and the
    # changes after it journal and survive as well.
    connection = dbus.bus.BusConnection(server.bus.address)
    tunnel = dbus.Interface(connection.get_object("org.tunlab1", TUNNEL_PATH),
                            "org.tunlab1.Tunnel")
    tunnel.AddPeer(f"{U_ADDRESS}:40009", dbus.Dictionary(
        {"allowed_ips": strings(["172.30.0.0/16"])}, signature="sv"))
    expected[f"{U_ADDRESS}:40009"] = ["172.30.0.0/16"]
    connection.close()
    server.crash()
    server.start()
    assert shown_peers(server) == expected
