"""Helpers for the lab-task scenarios (tests/lab): tunlabctl on a daemon's host, packet
captures, a TCP session standing in for the lab's telnet, kernel counters, and the extra
topologies of tasks 8 and 9.

Everything else comes from the harness package (tests/harness): namespaces, a private
dbus-daemon per tunlabd, Daemon start/stop/status, the SEED lab's addresses, wait_until. This
module only adds to it, so that both suites stay on one harness.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from harness.counters import RECEIVE_DROP_REASONS, SEND_DROP_REASONS
from harness.daemon import Daemon
from harness.lab import Lab
from harness.netns import in_netns
from harness.prerequisites import tunlabctl_path
from harness.process import run, wait_until
from harness.procfs import snmp_table
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, SERVER_PRIVATE_ADDRESS,
                          SERVER_TUNNEL_ADDRESS, TUNNEL_NETWORK, U_ADDRESS, U_TUNNEL_ADDRESS)
from harness.traffic import PING_PACKET_BYTES, PingResult, ping_argv

# Names used throughout docs/lab.md: the tunnel is called like the lab's interface, and in a
# fresh namespace the kernel gives the device the same name.
TUNNEL = "tun0"
TAP_TUNNEL = "tap0"

ALL_DROPS = tuple(f"drop_{reason}" for reason in RECEIVE_DROP_REASONS + SEND_DROP_REASONS)


# ── tunlabctl ───────────────────────────────────────────────────────────────────────────


def tunlabctl(daemon: Daemon, *args: str, timeout: float = 30.0
              ) -> subprocess.CompletedProcess[str]:
    """`tunlabctl ARGS` as root on the daemon's host (its namespace and its system bus), as a
    student types it there. Returns the finished process whatever its exit code."""
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=daemon.bus.address)
    return subprocess.run(in_netns(daemon.ns, [str(tunlabctl_path()), *args]),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                          timeout=timeout)


def ctl(daemon: Daemon, *args: str) -> str:
    """tunlabctl that must succeed; its standard output."""
    result = tunlabctl(daemon, *args)
    assert result.returncode == 0, (f"tunlabctl {' '.join(args)} exited {result.returncode}: "
                                    f"{result.stderr.strip()}\n{daemon.describe()}")
    return result.stdout


def ctl_json(daemon: Daemon, *args: str) -> Any:
    return json.loads(ctl(daemon, "--json", *args))


def tunnel_status(daemon: Daemon, name: str = TUNNEL) -> dict[str, Any]:
    """One tunnel as `tunlabctl --json status` shows it."""
    tunnels = {t["name"]: t for t in ctl_json(daemon, "status")["tunnels"]}
    assert name in tunnels, f"no tunnel {name} in {sorted(tunnels)}"
    return tunnels[name]


def tunnel_names(daemon: Daemon) -> list[str]:
    return sorted(t["name"] for t in ctl_json(daemon, "status")["tunnels"])


def counters(daemon: Daemon, name: str = TUNNEL) -> dict[str, int]:
    return ctl_json(daemon, "--tunnel", name, "stats")["counters"]


def wait_for_counters(daemon: Daemon, condition, what: str, name: str = TUNNEL,
                      timeout: float = 5.0) -> dict[str, int]:
    """Polls `tunlabctl stats` until condition(counters): a packet can reach its destination a
    moment before the daemon bumps the counter."""
    def counters_if_condition_holds():
        current = counters(daemon, name)
        return current if condition(current) else None

    return wait_until(counters_if_condition_holds, timeout, what, interval=0.05)


def traffic(delta: dict[str, int]) -> dict[str, int]:
    """The four traffic counters of a delta, for one exact comparison."""
    return {key: delta[key] for key in ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes")}


def exact_traffic(tx: int, rx: int, packet_bytes: int = PING_PACKET_BYTES) -> dict[str, int]:
    return {"tx_packets": tx, "tx_bytes": tx * packet_bytes,
            "rx_packets": rx, "rx_bytes": rx * packet_bytes}


def drops(delta: dict[str, int]) -> dict[str, int]:
    """The drop counters of a delta that are not zero."""
    return {key: delta[key] for key in ALL_DROPS if delta.get(key)}


# The lab's two ends, configured with tunlabctl only.

def create_server_tunnel(daemon: Daemon, *extra: str) -> None:
    """The lab's server-router: listens on 9090, learns its clients."""
    ctl(daemon, "create", TUNNEL, "--address", f"{SERVER_TUNNEL_ADDRESS}/24",
        "--listen-port", str(SERVER_PORT), *extra)


def create_client_tunnel(daemon: Daemon) -> None:
    """The lab's client U: one peer (the server), the private network routed into it."""
    ctl(daemon, "create", TUNNEL, "--address", f"{U_TUNNEL_ADDRESS}/24")
    ctl(daemon, "add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}",
        "--allowed-ips", f"{PRIVATE_NETWORK},{TUNNEL_NETWORK}")
    ctl(daemon, "add-route", PRIVATE_NETWORK)


# ── pings ───────────────────────────────────────────────────────────────────────────────


def ping_ok(lab: Lab, role: str, destination: str, count: int = 5, interval: float = 0.02,
            size: int | None = None) -> PingResult:
    result = lab.ping(role, destination, count, interval, size)
    assert (result.transmitted, result.received) == (count, count), result.output
    return result


def reply_ttls(result: PingResult) -> list[int]:
    return [int(ttl) for ttl in re.findall(r"ttl=(\d+)", result.output)]


def ping_fails(lab: Lab, role: str, destination: str, count: int = 3) -> str:
    """Asserts that no echo reply comes back; returns ping's output (with stderr)."""
    result = lab.exec(role, ping_argv(destination, count, 0.05) + [], check=False)
    output = result.stdout + result.stderr
    assert " 0 received" in output or "unreachable" in output, output
    assert "bytes from" not in output, output
    return output


# ── the lab topologies ─────────────────────────────────────────────────────────────────


class TaskLab(Lab):
    """The lab's topology (harness.lab.Lab, docs/lab.md), plus what the task scenarios need:
    programs with a stdin, packet captures, kernel counters, IPv6 addresses."""

    def __init__(self, workdir: Path, ipv6: bool = False, debug_daemons: bool = False):
        super().__init__(workdir, ipv6=ipv6, debug_daemons=debug_daemons)
        self._own_processes: list[subprocess.Popen] = []
        self._threads: list[threading.Thread] = []

    def close(self) -> None:
        for proc in self._own_processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        super().close()

    def _add_namespace(self, ns: str) -> None:
        super()._add_namespace(ns)
        if self.ipv6:
            # No duplicate address detection on the lab's links, so that link-local addresses
            # (which neighbour discovery needs) work at once instead of after a second or two.
            run(in_netns(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0",
                              "net.ipv6.conf.default.accept_dad=0"]))

    def popen(self, role: str, argv: list[str], **popen_args: Any) -> subprocess.Popen:
        """A program inside host `role` (any Popen arguments); killed at close()."""
        popen_args.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(in_netns(self.ns[role], argv), **popen_args)
        self._own_processes.append(proc)
        return proc

    def route_device(self, role: str, prefix: str) -> str | None:
        """The device of the route to `prefix` (IPv4 or IPv6) in host `role`, or None."""
        family = ["-6"] if ":" in prefix else []
        output = self.ip(role, *family, "route", "show", prefix).stdout
        match = re.search(r"\bdev (\S+)", output)
        return match.group(1) if match else None

    def link(self, role: str, interface: str) -> dict[str, Any]:
        (info,) = json.loads(self.ip(role, "-j", "-d", "link", "show", "dev", interface).stdout)
        return info

    def links_of_kind(self, role: str, kind: str) -> list[str]:
        """Names of the tun (kind 'tun') or tap devices in host `role`."""
        names = []
        for info in json.loads(self.ip(role, "-j", "-d", "link", "show").stdout):
            linkinfo = info.get("linkinfo", {})
            if linkinfo.get("info_kind") == "tun" and \
                    linkinfo.get("info_data", {}).get("type") == kind:
                names.append(info["ifname"])
        return names

    def mac(self, role: str, interface: str) -> str:
        return self.link(role, interface)["address"]

    def snmp(self, role: str, protocol: str, ipv6: bool = False) -> dict[str, int]:
        """One protocol's line of the host's /proc/net/snmp (or snmp6), e.g. Tcp, Icmp."""
        if ipv6:
            text = self.exec(role, ["cat", "/proc/net/snmp6"]).stdout
            return {name[len(protocol):]: int(value)
                    for name, value in (line.split() for line in text.splitlines())
                    if name.startswith(protocol)}
        return snmp_table(self.exec(role, ["cat", "/proc/net/snmp"]).stdout, protocol)

    def capture(self, role: str, interface: str, *filter_words: str) -> "Capture":
        return Capture(self, role, interface, list(filter_words)).start()

    def add_address6(self, role: str, interface: str, cidr: str) -> None:
        # nodad: usable at once, no waiting for duplicate address detection.
        self.ip(role, "addr", "add", cidr, "dev", interface, "nodad")


class SiteToSiteLab(TaskLab):
    """Task 8: two private networks joined by two VPN gateways.

        A 192.168.50.5 ─┐                                                 ┌─ V 192.168.60.5
        B 192.168.50.6 ─┴ br0 ─ CR (client-router)   LAN 10.9.0.0/24   S ─┴ br0 ─ W 192.168.60.6
                                192.168.50.12 | 10.9.0.12 ── 10.9.0.11 | 192.168.60.11

    Both routers forward; each private host's default route points at its router. The only
    way from one private network to the other is the tunnel between CR and S.
    """

    ROLES = ("cr", "s", "a", "b", "v", "w", "sw")
    CLIENT_ROUTER_ADDRESS = "10.9.0.12"
    CLIENT_PRIVATE_NETWORK = "192.168.50.0/24"
    CLIENT_ROUTER_PRIVATE_ADDRESS = "192.168.50.12"
    HOSTS = {"a": "192.168.50.5", "b": "192.168.50.6", "v": "192.168.60.5", "w": "192.168.60.6"}

    def build(self) -> None:
        self.build_lan({"cr": self.CLIENT_ROUTER_ADDRESS, "s": SERVER_ADDRESS})
        for router, router_address, hosts in (
                ("cr", self.CLIENT_ROUTER_PRIVATE_ADDRESS, ("a", "b")),
                ("s", SERVER_PRIVATE_ADDRESS, ("v", "w"))):
            self.ip(router, "link", "add", "br0", "type", "bridge")
            for host in hosts:
                self._veth(self.ns[router], f"p-{host}", self.ns[host], "eth0")
                self.ip(router, "link", "set", f"p-{host}", "master", "br0", "up")
                self._address(self.ns[host], "eth0", f"{self.HOSTS[host]}/24")
                self.ip(host, "route", "add", "default", "via", router_address)
            self._address(self.ns[router], "br0", f"{router_address}/24")
            self.sysctl(router, "net.ipv4.ip_forward=1")


class EthernetLab(TaskLab):
    """Task 9's L2 VPN: one Ethernet segment, 192.168.70.0/24, split across two sites; the
    TAP end of the tunnel at each site will be a port of that site's bridge.

        H1 192.168.70.5 ── br-lan U 10.9.0.5 ── LAN ── S 10.9.0.11 br-lan ── H2 192.168.70.6

    U and S themselves have no address on 192.168.70.0/24: they are switches for it.
    """

    ROLES = ("u", "s", "h1", "h2", "sw")
    HOSTS = {"h1": ("u", "192.168.70.5"), "h2": ("s", "192.168.70.6")}

    def build(self) -> None:
        self.build_lan({"u": U_ADDRESS, "s": SERVER_ADDRESS})
        for host, (site, address) in self.HOSTS.items():
            self.ip(site, "link", "add", "br-lan", "type", "bridge")
            self.ip(site, "link", "set", "br-lan", "up")
            self._veth(self.ns[site], f"p-{host}", self.ns[host], "eth0")
            self.ip(site, "link", "set", f"p-{host}", "master", "br-lan", "up")
            self._address(self.ns[host], "eth0", f"{address}/24")


# ── packet captures ─────────────────────────────────────────────────────────────────────


class Capture:
    """tcpdump on one interface of one host, its lines read as they come (-l). Started only
    once tcpdump says it is listening, so nothing sent afterwards is missed."""

    def __init__(self, lab: TaskLab, role: str, interface: str, filter_words: list[str]):
        self.lab = lab
        number = len(list(lab.workdir.glob("tcpdump-*.out")))
        self.out_path = lab.workdir / f"tcpdump-{number}-{role}-{interface}.out"
        self.err_path = lab.workdir / f"tcpdump-{number}-{role}-{interface}.err"
        # --immediate-mode: each packet as it comes, not in blocks a second late.
        self.argv = ["tcpdump", "--immediate-mode", "-l", "-n", "-e", "-i", interface,
                     *filter_words]
        self.role = role
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Capture":
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = self.lab.popen(self.role, self.argv, stdout=out, stderr=err)

        def listening() -> bool:
            assert self.proc.poll() is None, f"tcpdump exited: {self.err_path.read_text()}"
            return "listening on" in self.err_path.read_text()

        wait_until(listening, 10, f"tcpdump listening ({' '.join(self.argv)})")
        return self

    def lines(self) -> list[str]:
        """One per packet (tcpdump adds an empty line when it is interrupted)."""
        return [line for line in self.out_path.read_text(errors="replace").splitlines()
                if line.strip()]

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.lines() if re.search(pattern, line)]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Waits until at least `count` captured lines match `pattern` and returns them."""
        def enough() -> list[str] | None:
            found = self.matching(pattern)
            return found if len(found) >= count else None

        try:
            return wait_until(enough, timeout, f"{count} lines matching {pattern!r}")
        except AssertionError as error:
            raise AssertionError(f"{error}; {self.out_path.name} has:\n"
                                 + "\n".join(self.lines()[-20:])) from None

    def stop(self) -> list[str]:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
        return self.lines()


# ── the lab's telnet session: a TCP stream of numbered lines ────────────────────────────


def counter_text(lines: int) -> bytes:
    return b"".join(b"%06d\n" % number for number in range(lines))


class CounterStream:
    """What the lab does with telnet, observable to the byte: socat on the receiving host
    writes one TCP connection into a file; socat on the sending host sends it what we feed
    its stdin, a numbered line every `interval` seconds. Ctrl-C never happens: finish() closes
    stdin, both socats end, and the file must hold every line, in order, exactly once."""

    LINE_BYTES = 7

    def __init__(self, lab: TaskLab, from_role: str, to_role: str, to_address: str,
                 port: int = 2323, interval: float = 0.02):
        self.lab = lab
        self.from_role, self.to_role = from_role, to_role
        self.to_address, self.port = to_address, port
        self.interval = interval
        self.received_path = lab.workdir / f"stream-{port}.received"
        self.written_lines = 0
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> "CounterStream":
        with open(self.lab.workdir / "socat-receiver.log", "wb") as log:
            self.receiver = self.lab.popen(
                self.to_role,
                ["socat", "-u", f"TCP-LISTEN:{self.port},bind={self.to_address},reuseaddr",
                 f"OPEN:{self.received_path},creat,trunc"],
                stdout=subprocess.DEVNULL, stderr=log)
        wait_until(lambda: self.lab.tcp_port_listening(self.to_role, self.port), 10,
                   f"socat listening on {self.to_address}:{self.port}")
        with open(self.lab.workdir / "socat-sender.log", "wb") as log:
            self.sender = self.lab.popen(
                self.from_role, ["socat", "-u", "STDIN", f"TCP:{self.to_address}:{self.port}"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        return self

    def _write(self) -> None:
        try:
            next_time = time.monotonic()
            while not self._stop.is_set():
                self.sender.stdin.write(b"%06d\n" % self.written_lines)
                self.sender.stdin.flush()
                self.written_lines += 1
                next_time += self.interval
                self._stop.wait(max(0.0, next_time - time.monotonic()))
        except BaseException as error:  # handed to the test thread
            self._error = error

    @property
    def written_bytes(self) -> int:
        return self.written_lines * self.LINE_BYTES

    def received_bytes(self) -> int:
        try:
            return self.received_path.stat().st_size
        except FileNotFoundError:
            return 0

    def check_alive(self) -> None:
        assert self._error is None, f"feeding socat failed: {self._error!r}"
        for name, proc in (("sender", self.sender), ("receiver", self.receiver)):
            assert proc.poll() is None, \
                f"socat {name} exited with {proc.returncode}: the TCP session broke"

    def wait_received(self, at_least: int, timeout: float, what: str) -> int:
        def enough() -> int | None:
            self.check_alive()
            size = self.received_bytes()
            return size if size >= at_least else None

        return wait_until(enough, timeout, what, interval=0.02)

    def wait_stalled(self, quiet: float, timeout: float) -> int:
        """Waits until no byte has arrived for `quiet` seconds (while we keep writing) and
        returns the number of bytes received by then."""
        last_size, since = self.received_bytes(), time.monotonic()

        def stalled() -> bool:
            nonlocal last_size, since
            self.check_alive()
            size = self.received_bytes()
            if size != last_size:
                last_size, since = size, time.monotonic()
            return time.monotonic() - since >= quiet

        wait_until(stalled, timeout, f"the stream to stall (no new byte for {quiet:g}s)",
                   interval=0.02)
        return last_size

    def _established(self) -> list[str]:
        """The sender's one established connection as `ss` shows it:
        [..., Recv-Q, Send-Q, local-address:port, peer-address:port]."""
        output = self.lab.exec(self.from_role, [
            "ss", "-Htn", "state", "established",
            "dst", f"{self.to_address}:{self.port}"]).stdout
        rows = [line.split() for line in output.splitlines() if line.strip()]
        assert len(rows) == 1, f"expected one connection, got:\n{output}"
        return rows[0]

    def connection(self) -> str:
        """`local-address:port peer-address:port` of the sender's connection."""
        row = self._established()
        return f"{row[-2]} {row[-1]}"

    def send_queue(self) -> int:
        """Bytes the sender's TCP holds that V has not acknowledged (ss's Send-Q)."""
        return int(self._established()[-3])

    def finish(self, timeout: float = 30.0) -> bytes:
        """Stops writing, ends the session (EOF), and returns what the receiver wrote."""
        self.check_alive()
        self._stop.set()
        self._writer.join(5)
        self.check_alive()
        self.sender.stdin.close()
        assert self.sender.wait(timeout) == 0, "socat (sender) failed"
        assert self.receiver.wait(timeout) == 0, "socat (receiver) failed"
        return self.received_path.read_bytes()
