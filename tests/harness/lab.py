"""The SEED VPN lab (docs/lab.md) rebuilt in network namespaces, with the tunlabd daemons started
in it. Used by both suites (tests/lab subclasses Lab for its other topologies) and bench/.

One namespace per host:

    U  10.9.0.5  ─┐
    U2 10.9.0.6  ─┼─ br0 (in its own "switch" namespace)
    S  10.9.0.11 ─┘   S 192.168.60.11 ── V 192.168.60.5 (default route via .60.11)

S is the server-router (ip_forward=1). Each tunlabd gets its own private dbus-daemon
(daemon.py).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness.daemon import Daemon, PrivateBus
from harness.process import wait_until
from harness.seed import (SERVER_ADDRESS, SERVER_PRIVATE_ADDRESS, U2_ADDRESS, U_ADDRESS,
                          V_ADDRESS)
from harness.traffic import IPERF_PORT, BusLatency, Traffic


class Lab(Traffic):
    """The topology plus everything started in it; close() removes all of it."""

    ROLES = ("u", "u2", "s", "v", "sw")

    def __init__(self, workdir: Path, ipv6: bool = False, debug_daemons: bool = False):
        super().__init__(workdir, ipv6=ipv6)
        self.debug_daemons = debug_daemons
        # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="tln-"))
        # Unprivileged clients must reach the bus sockets inside (not list the directory).
        self._socket_dir.chmod(0o711)
        self._daemons: list[Daemon] = []
        self._buses: list[PrivateBus] = []
        self._daemon_sequence = itertools.count(1)
        self._bus_sequence = itertools.count(1)

    # topology

    def build(self) -> None:
        self.build_lan({"u": U_ADDRESS, "u2": U2_ADDRESS, "s": SERVER_ADDRESS})
        self._veth(self.ns["s"], "eth1", self.ns["v"], "eth0")
        self._address(self.ns["s"], "eth1", f"{SERVER_PRIVATE_ADDRESS}/24")
        self._address(self.ns["v"], "eth0", f"{V_ADDRESS}/24")
        self.ip("v", "route", "add", "default", "via", SERVER_PRIVATE_ADDRESS)
        self.sysctl("s", "net.ipv4.ip_forward=1")

    def build_lan(self, members: dict[str, str]) -> None:
        """Creates every namespace of ROLES, then the lab's 10.9.0.0/24 LAN: a bridge in the
        switch namespace "sw" with each member's eth0 (role → address) on it."""
        for role in self.ROLES:
            self._add_namespace(self.ns[role])
        self.ip("sw", "link", "add", "br0", "type", "bridge")
        self.ip("sw", "link", "set", "br0", "up")
        for role, address in members.items():
            self._veth(self.ns[role], "eth0", self.ns["sw"], f"p-{role}")
            self.ip("sw", "link", "set", f"p-{role}", "master", "br0", "up")
            self._address(self.ns[role], "eth0", f"{address}/24")

    def close(self) -> None:
        for daemon in self._daemons:
            daemon.kill()
        for bus in self._buses:
            bus.stop()
        super().close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    # daemons

    def start_bus(self, workdir: Path, policy: str = "shipped") -> PrivateBus:
        """A private system bus (see PrivateBus), stopped at close()."""
        bus = PrivateBus(self._socket_dir / f"bus-{next(self._bus_sequence)}", workdir, policy)
        self._buses.append(bus)
        return bus.start()

    def start_daemon(self, role: str, tunnels: dict[str, dict[str, Any]] | None = None,
                     start: bool = True, bus_policy: str = "shipped",
                     args: tuple[str, ...] = ()) -> Daemon:
        """A tunlabd in host `role` with its own bus. tunnels=None or {}: no configuration
        files at all, everything is then done over D-Bus."""
        number = next(self._daemon_sequence)
        workdir = self.workdir / f"tunlabd-{role}-{number}"
        workdir.mkdir(parents=True)
        bus = self.start_bus(workdir, bus_policy)
        daemon = Daemon(self.ns[role], workdir, self._socket_dir / f"notify-{number}.sock", bus,
                        tunnels or {}, self.debug_daemons, args)
        self._daemons.append(daemon)
        return daemon.start() if start else daemon

    def stop_daemons(self) -> None:
        """Clean shutdown of every daemon still running, with Daemon.stop()'s checks."""
        for daemon in self._daemons:
            if daemon.alive():
                daemon.stop()

    def kill_daemons(self) -> None:
        """SIGKILL for every daemon still running (after a failed stop_daemons())."""
        for daemon in self._daemons:
            daemon.kill()

    # iperf3 from U to V

    def start_iperf_server(self, port: int = IPERF_PORT) -> None:
        """iperf3 --server in V (once; it lives until close())."""
        if not self.tcp_port_listening("v", port):
            self.spawn("v", ["iperf3", "--server", "--port", str(port)],
                       log_name=f"iperf3-server-{port}.log")
            wait_until(lambda: self.tcp_port_listening("v", port), 10, "iperf3 to listen in V")

    def bus_latency(self, daemons: list[Daemon], tunnel_path: str = "/org/tunlab1/tunnel/lab",
                    calls: int = 200, interval: float = 0.01) -> list[BusLatency]:
        """D-Bus reply latency of each of `daemons` (the bus is served by the control
        loop, never blocked by the packet path): `calls` Get(Counters), one every `interval`
        seconds, first idle, then while iperf3 sends U → V through the tunnel at full rate
        (one daemon after the other, in one iperf3 run). The tunnel must carry U → V already.
        Needs python3-dbus."""
        # Only this needs python3-dbus.
        from harness.dbus_client import TUNNEL, Client, get_latencies

        def traffic(daemon: Daemon) -> int:
            with Client(daemon.bus.address) as client:
                counters = client.get(tunnel_path, TUNNEL, "Counters")
            return counters["rx_packets"] + counters["tx_packets"]

        def measure(daemon: Daemon) -> list[float]:
            times = get_latencies(daemon.bus.address, tunnel_path, TUNNEL, "Counters", calls,
                                  interval)
            return [seconds * 1e3 for seconds in times]

        idle = [measure(daemon) for daemon in daemons]
        self.start_iperf_server()
        # Long enough to outlast the measurements with a wide margin.
        seconds = max(4, round(calls * interval * len(daemons) * 1.5) + 3)
        before = traffic(daemons[0])
        iperf = self.spawn("u", ["iperf3", "--client", V_ADDRESS, "--port", str(IPERF_PORT),
                                 "--time", str(seconds), "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Measure once the flow is in full swing, not during connection set-up.
        wait_until(lambda: traffic(daemons[0]) >= before + 2000, 10,
                   "iperf3 traffic through the tunnel")
        loaded = [measure(daemon) for daemon in daemons]
        assert iperf.poll() is None, \
            "iperf3 ended before the measurement did: it was not measured under load"
        output, _ = iperf.communicate(timeout=seconds + 30)
        assert iperf.returncode == 0, output
        throughput = json.loads(output)["end"]["sum_received"]["bits_per_second"]
        return [BusLatency(idle_ms, loaded_ms, throughput)
                for idle_ms, loaded_ms in zip(idle, loaded)]
