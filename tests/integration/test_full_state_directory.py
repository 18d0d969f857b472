"""An error means nothing changed; a success survives a restart.

tunlabd's state directory lives on a small tmpfs here, filled to the last byte. Every change
over the bus then fails with org.tunlab1.Error.Failed (the state cannot be saved), and leaves
the running tunnel (its properties on the bus, its routes and addresses in the kernel), the
saved state and the directory exactly as they were. Once there is room again, the same change
succeeds, and is still there after a restart.
"""

from __future__ import annotations

import contextlib
import errno

import pytest

from harness.dbus_client import Client, options
from harness.process import run

pytestmark = pytest.mark.usefixtures("tunlabctl")

MANAGER_PATH = "/org/tunlab1"
TUNNEL_PATH = "/org/tunlab1/tunnel/lab"
MANAGER = "org.tunlab1.Manager"
TUNNEL = "org.tunlab1.Tunnel"
PEER = "org.tunlab1.Peer"
FAILED = "org.tunlab1.Error.Failed"


@contextlib.contextmanager
def small_filesystem(path):
    run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(path)])
    try:
        yield path
    finally:
        run(["umount", "-l", str(path)], check=False)


def fill(directory):
    """Writes a file until the file system is full, to the last byte; returns its path."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        for block in (b"\0" * 4096, b"\0"):
            try:
                while out.write(block):
                    pass
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def everything(lab, server) -> dict:
    """What a refused change must leave as it was: the bus's view, the kernel's, the files."""
    with Client(server.bus.address) as client:
        view = client.snapshot()
    state = server.state_dir / "tunnels"
    return {
        "bus": view,
        "kernel": (lab.ip("s", "-o", "addr").stdout, lab.ip("s", "route").stdout),
        "files": {path.name: path.read_bytes() for path in sorted(state.iterdir())},
    }


def test_a_change_that_cannot_be_saved_changes_nothing(lab):
    server = lab.start_daemon("s", start=False)
    with small_filesystem(server.state_dir):
        server.start()
        server.ctl("create", "lab", "--address", "192.168.53.11/24", "--listen-port", "9090")
        server.ctl("add-peer", "10.9.0.5:41000", "--allowed-ips", "192.168.53.99/32")
        with Client(server.bus.address) as client:
            (peer,) = client.get(TUNNEL_PATH, TUNNEL, "Peers")
        filler = fill(server.state_dir)
        before = everything(lab, server)

        attempts = [
            ("AddRoute", TUNNEL_PATH, TUNNEL, "AddRoute", "sa{sv}", "10.1.0.0/16", options()),
            ("RemoveAddress", TUNNEL_PATH, TUNNEL, "RemoveAddress", "s", "192.168.53.11/24"),
            ("AddAddress", TUNNEL_PATH, TUNNEL, "AddAddress", "s", "192.168.54.11/24"),
            ("AddPeer", TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", "10.9.0.6:41000",
             options({"allowed_ips": ("as", ["192.168.53.98/32"])})),
            ("RemovePeer", TUNNEL_PATH, TUNNEL, "RemovePeer", "o", peer),
            ("SetEndpoint", peer, PEER, "SetEndpoint", "s", "10.9.0.7:41000"),
            ("SetAllowedIPs", peer, PEER, "SetAllowedIPs", "as", ["192.168.53.97/32"]),
            ("CreateTunnel", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "lab2",
             options({"listen_port": ("q", 9091)})),
        ]
        with Client(server.bus.address) as client:
            for what, path, interface, method, signature, *args in attempts:
                name, message = client.error(path, interface, method, signature, *args)
                assert name == FAILED, (what, name, message)
                assert "No space left on device" in message, (what, message)
                assert everything(lab, server) == before, f"{what} changed something"
        assert server.alive()

        # Room again: the same change succeeds, and is there after a restart.
        filler.unlink()
        server.ctl("add-route", "10.1.0.0/16")
        server.stop()
        server.start()
        with Client(server.bus.address) as client:
            assert "10.1.0.0/16" in client.get(TUNNEL_PATH, TUNNEL, "Routes")
        assert "10.1.0.0/16" in lab.ip("s", "route").stdout
        server.stop()
