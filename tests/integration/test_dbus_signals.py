"""Signals, as `tunlabctl --json monitor` prints them (one JSON line per signal, as it comes):
TunnelAdded, PeerAdded (for a configured peer, and for a LEARNED one when a new client first
sends), EndpointChanged when the client comes back from a new source port (roaming),
PeerRemoved, TunnelRemoved. Every wait has a deadline; nothing sleeps."""

import json
import os
import select
import subprocess
import time

import pytest

from lab import (SERVER_PORT, SERVER_TUNNEL_ADDRESS, U_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS,
                 WaitTimeout, tunlabctl_path)

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

SIGNAL_TIMEOUT = 5.0
MANAGER_PATH = "/org/tunlab1"
TUNNEL_PATH = "/org/tunlab1/tunnel/lab"


class Monitor:
    """`tunlabctl --json monitor` on one daemon's bus, read line by line as it prints."""

    def __init__(self, lab, daemon):
        self.proc = lab.spawn("s", [str(tunlabctl_path()), "--json", "monitor"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0,
                              env=daemon.bus.env())
        self._partial = b""
        self.lines = []      # every signal printed so far, parsed
        self._cursor = 0     # lines before it were passed over or returned by expect()

    def _read(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        if not ready:
            return
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"tunlabctl monitor exited ({self.proc.wait()}): "
                                 f"{self._partial.decode(errors='replace')}")
        self._partial += chunk
        *complete, self._partial = self._partial.split(b"\n")
        self.lines += [json.loads(line) for line in complete if line.strip()]

    def expect(self, signal, path, arguments=None, timeout=SIGNAL_TIMEOUT):
        """The next signal `signal` from `path` (with `arguments` among its arguments) AFTER
        the one the previous expect() returned: tunlabd sends its signals in the order of
        the events, and the bus keeps one sender's order. Fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._cursor, len(self.lines)):
                line = self.lines[index]
                if (line["signal"] == signal and line["path"] == path
                        and (arguments or {}).items() <= line["arguments"].items()):
                    self._cursor = index + 1
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"no {signal} from {path} {arguments or ''} within "
                                  f"{timeout:g}s; saw: {json.dumps(self.lines, indent=1)}")
            self._read(remaining)

    def signals(self, name):
        return [line for line in self.lines if line["signal"] == name]


def subscribe(monitor, daemon):
    """Returns once the monitor provably receives signals. tunlabctl prints nothing when its
    match rule is in place, so create a throw-away tunnel until its TunnelAdded shows up (a
    signal sent before the rule existed is lost, hence the retry), then delete it: that also
    checks TunnelRemoved."""
    for _ in range(20):
        daemon.ctl("create", "probe")
        try:
            monitor.expect("TunnelAdded", MANAGER_PATH,
                           {"tunnel": "/org/tunlab1/tunnel/probe", "name": "probe"}, timeout=0.5)
            break
        except WaitTimeout:
            daemon.ctl("delete", "probe")
    else:
        raise AssertionError("tunlabctl monitor never saw a signal")
    daemon.ctl("delete", "probe")
    removed = monitor.expect("TunnelRemoved", MANAGER_PATH,
                             {"tunnel": "/org/tunlab1/tunnel/probe", "name": "probe"})
    assert removed["interface"] == "org.tunlab1.Manager", removed


def learned_peers(daemon):
    return [peer for peer in daemon.bus_status()["lab"]["peers"] if peer["learned"]]


def test_monitor_sees_every_signal(lab):
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    monitor = Monitor(lab, server)
    subscribe(monitor, server)

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
    from dbus_client import MANAGER, Client, options

    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    monitor = Monitor(lab, server)
    subscribe(monitor, server)
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
