"""The SEED VPN lab (BRIEF §2) rebuilt in network namespaces, plus tunlabd process control.

Used by the integration tests (through conftest.py) and by bench/run (imported by path).

Topology, one namespace per host, names unique per process so that parallel runs and
leftovers of killed runs never clash:

    U  10.9.0.5  ─┐
    U2 10.9.0.6  ─┼─ br0 (in its own "switch" namespace)
    S  10.9.0.11 ─┘   S 192.168.60.11 ── V 192.168.60.5 (default route via .60.11)

S is the server-router (ip_forward=1). Nothing is created in the caller's namespace.
Each tunlabd runs in one host with its own temporary config/state/runtime directories and
its own private dbus-daemon as "system bus"; readiness is its sd_notify READY=1, status comes
from SIGUSR1 + status.json.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_LAB_DIR = Path(__file__).resolve().parent / "seed_lab"

# The lab's programs need scapy, which Debian installs for its own interpreter only.
SYSTEM_PYTHON = "/usr/bin/python3"

U_ADDRESS = "10.9.0.5"
U2_ADDRESS = "10.9.0.6"
SERVER_ADDRESS = "10.9.0.11"
SERVER_PRIVATE_ADDRESS = "192.168.60.11"
V_ADDRESS = "192.168.60.5"
PRIVATE_NETWORK = "192.168.60.0/24"
TUNNEL_NETWORK = "192.168.53.0/24"
SERVER_PORT = 9090

# Inner addresses used throughout the lab report.
SERVER_TUNNEL_ADDRESS = "192.168.53.11"
U_TUNNEL_ADDRESS = "192.168.53.99"
U2_TUNNEL_ADDRESS = "192.168.53.98"

# `ping` with its default 56 data bytes: 20 (IPv4) + 8 (ICMP) + 56.
PING_PACKET_BYTES = 84

IPERF_PORT = 5201

READY_TIMEOUT = 15.0
STATUS_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


def tunlabd_path() -> Path:
    return Path(os.environ.get("TUNLABD", REPO_ROOT / "build" / "debug" / "daemon" / "tunlabd"))


def tunlabctl_path() -> Path:
    """TUNLABCTL, else the tunlabctl of the same build tree as tunlabd."""
    if "TUNLABCTL" in os.environ:
        return Path(os.environ["TUNLABCTL"])
    return tunlabd_path().parent.parent / "client-cli" / "tunlabctl"


# The unprivileged local user of the tests: nobody, with no supplementary groups (unless the
# caller gives some).
NOBODY = 65534


def as_user(argv: list[str], uid: int = NOBODY, gid: int = NOBODY,
            groups: tuple[int, ...] = ()) -> list[str]:
    """`argv` run as another user, with exactly `groups` as supplementary groups."""
    group_args = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", *group_args, *argv]


def missing_prerequisite() -> str | None:
    """Why this machine cannot run the lab, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    for tool in ("ip", "ping", "ss", "dbus-daemon"):
        if shutil.which(tool) is None:
            return f"needs {tool} in PATH"
    return None


# ── small utilities ─────────────────────────────────────────────────────────────────────


class WaitTimeout(AssertionError):
    """A polled condition did not come true in time (an AssertionError so pytest shows it as
    a test failure with the message, not as an error in the harness)."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.02) -> Any:
    """Polls `predicate` until it returns something truthy and returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def run(argv: list[str], check: bool = True, timeout: float = 60.0
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def in_netns(ns: str, argv: list[str]) -> list[str]:
    # `ip netns exec` execs the command, so a Popen's pid is the program itself and
    # signals reach it directly.
    return ["ip", "netns", "exec", ns, *argv]


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


@contextlib.contextmanager
def _inside_netns(ns: str):
    """Switches the calling thread into namespace `ns` and back. A socket keeps the namespace
    it was created in, so this lets the test process itself own sockets in lab hosts."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{ns}") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ── configuration builders (the JSON documented for tunlabd) ──────────────────────────


def server_config(**overrides: Any) -> dict[str, Any]:
    """The lab's server-router: listens on 9090 and learns its clients."""
    config: dict[str, Any] = {
        "addresses": [f"{SERVER_TUNNEL_ADDRESS}/24"],
        "listen_port": SERVER_PORT,
    }
    config.update(overrides)
    return config


def client_config(tunnel_address: str, **overrides: Any) -> dict[str, Any]:
    """The lab's client: routes the private network into the tunnel towards the server."""
    config: dict[str, Any] = {
        "addresses": [f"{tunnel_address}/24"],
        "routes": [PRIVATE_NETWORK],
        "peers": [{
            "endpoint": f"{SERVER_ADDRESS}:{SERVER_PORT}",
            "allowed_ips": [PRIVATE_NETWORK, TUNNEL_NETWORK],
        }],
    }
    config.update(overrides)
    return config


# ── status.json helpers ─────────────────────────────────────────────────────────────────

RECEIVE_DROP_REASONS = ("empty", "truncated", "bad_version", "bad_header", "bad_length",
                        "too_big", "bad_source", "unknown_peer", "peer_limit", "device_error")
SEND_DROP_REASONS = ("no_peer", "no_endpoint", "send_error", "bad_offload")


def counter_deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before.get(key, 0) for key in after}


def peers_with_allowed_ip(tunnel: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [peer for peer in tunnel["peers"] if prefix in peer["allowed_ips"]]


def only_peer_with_allowed_ip(tunnel: dict[str, Any], prefix: str) -> dict[str, Any]:
    peers = peers_with_allowed_ip(tunnel, prefix)
    assert len(peers) == 1, f"expected exactly one peer for {prefix}, got {peers}"
    return peers[0]


# ── ping ─────────────────────────────────────────────────────────────────────────────


@dataclasses.dataclass
class PingResult:
    transmitted: int
    received: int
    rtts_ms: list[float]
    output: str

    @property
    def median_rtt_ms(self) -> float:
        return statistics.median(self.rtts_ms)


def ping_argv(destination: str, count: int, interval: float, size: int | None = None
              ) -> list[str]:
    # Exactly `count` requests; after the last one ping waits for missing replies (2 s when
    # none came at all). Not -w: with a deadline, ping keeps sending until it has `count`
    # replies, so a lossy path would send more requests than the counters expect.
    argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2"]
    if size is not None:
        # Don't fragment: the tunnel must carry the whole packet (size + 28 bytes) as one.
        argv += ["-s", str(size), "-M", "do"]
    return argv + [destination]


def parse_ping(output: str) -> PingResult:
    summary = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    if summary is None:
        raise RuntimeError(f"unexpected ping output:\n{output}")
    rtts = [float(ms) for ms in re.findall(r"time=([\d.]+) ms", output)]
    return PingResult(int(summary.group(1)), int(summary.group(2)), rtts, output)


@dataclasses.dataclass
class BusLatency:
    """Round-trip times (ms) of Properties.Get(Counters) on one tunlabd's bus, idle and while
    iperf3 pushes TCP through the tunnel as fast as it can."""
    idle_ms: list[float]
    loaded_ms: list[float]
    throughput_bps: float   # of the iperf3 run that loaded the tunnel

    @staticmethod
    def _figures(times: list[float]) -> dict[str, float]:
        ordered = sorted(times)

        def nearest_rank(fraction: float) -> float:
            return ordered[min(len(ordered), max(1, round(fraction * len(ordered) + 0.5))) - 1]

        return {"p50_ms": nearest_rank(0.50), "p99_ms": nearest_rank(0.99),
                "max_ms": ordered[-1]}

    def summary(self) -> dict[str, Any]:
        return {"calls": len(self.loaded_ms), "idle": self._figures(self.idle_ms),
                "under_load": self._figures(self.loaded_ms),
                "load_throughput_bps": self.throughput_bps}

    def report(self) -> str:
        summary = self.summary()
        idle, loaded = summary["idle"], summary["under_load"]
        return (f"D-Bus Get(Counters) round trip, {summary['calls']} calls: "
                f"idle p50 {idle['p50_ms']:.3f} ms, p99 {idle['p99_ms']:.3f} ms, "
                f"max {idle['max_ms']:.3f} ms; under iperf3 load "
                f"({self.throughput_bps / 1e6:.0f} Mbit/s through the tunnel) "
                f"p50 {loaded['p50_ms']:.3f} ms, p99 {loaded['p99_ms']:.3f} ms, "
                f"max {loaded['max_ms']:.3f} ms")


class BackgroundPing:
    """A ping running while the test does something else."""

    def __init__(self, proc: subprocess.Popen[str]):
        self._proc = proc

    def result(self, timeout: float = 120.0) -> PingResult:
        output, _ = self._proc.communicate(timeout=timeout)
        return parse_ping(output)

    def stop(self) -> PingResult:
        """Ends the ping now (SIGINT: it prints its summary) and returns its result."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        return self.result()


# ── TCP bulk transfer ──────────────────────────────────────────────────────────────────


@dataclasses.dataclass
class TcpTransfer:
    sender_address: str   # as the receiving end saw it
    received_bytes: int
    sha256: str


def _send_and_close(sock: socket.socket, data: bytes, errors: list[BaseException]) -> None:
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except BaseException as error:  # handed to the main thread
        errors.append(error)


def _receive_until_closed(sock: socket.socket) -> tuple[int, str]:
    digest = hashlib.sha256()
    received = 0
    while chunk := sock.recv(1 << 16):
        digest.update(chunk)
        received += len(chunk)
    return received, digest.hexdigest()


# ── the daemon ───────────────────────────────────────────────────────────────────────


class DaemonError(AssertionError):
    pass


BUS_CONFIG_TEMPLATE = REPO_ROOT / "tests" / "bus" / "system-bus.conf.in"
SHIPPED_POLICY = REPO_ROOT / "systemd" / "org.tunlab1.conf"

# A deliberately loose local policy: anyone may call anything on org.tunlab1. With it the
# bus lets an unprivileged caller through, so only tunlabd's own credential check stands
# between that caller and a change (docs/dbus-api.md: "a looser policy does not open it up").
PERMISSIVE_POLICY = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.tunlab1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.tunlab1"/>
  </policy>
</busconfig>
"""

BUS_POLICIES = ("shipped", "permissive")


class PrivateBus:
    """A dbus-daemon standing in for the system bus of one tunlabd (BRIEF §5). One per daemon:
    every tunlabd owns the well-known name org.tunlab1, so two cannot share a bus. Its unix
    socket is a path, which works across network namespaces.

    The configuration is tests/bus/system-bus.conf.in, shaped like Debian's system bus
    (default deny for method calls and name ownership), with the policy included that the
    package ships (systemd/org.tunlab1.conf) or, with policy="permissive", one that lets
    every local user call every method of org.tunlab1."""

    def __init__(self, socket_path: Path, workdir: Path, policy: str = "shipped"):
        assert policy in BUS_POLICIES, policy
        self.socket_path = socket_path
        self.policy = policy
        self.workdir = workdir
        self.config_path = workdir / "bus.conf"
        self.log_path = workdir / "dbus-daemon.log"
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""

    def policy_path(self) -> Path:
        if self.policy == "shipped":
            return SHIPPED_POLICY
        path = self.workdir / "permissive-policy.conf"
        path.write_text(PERMISSIVE_POLICY)
        return path

    def start(self) -> "PrivateBus":
        config = (BUS_CONFIG_TEMPLATE.read_text()
                  .replace("@SOCKET@", str(self.socket_path))
                  .replace("@POLICY@", str(self.policy_path())))
        leftover = re.search(r"@[A-Z_]+@", config)
        assert leftover is None, f"unfilled placeholder {leftover.group()} in the bus template"
        self.config_path.write_text(config)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["dbus-daemon", f"--config-file={self.config_path}", "--nofork",
                 "--nopidfile", "--print-address"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True)
        # It prints its address once it listens: that line is the readiness signal.
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT)
        self.address = self.proc.stdout.readline().strip() if ready else ""
        if not self.address:
            self.stop()
            raise DaemonError(f"dbus-daemon did not start: {tail(self.log_path)}")
        return self

    def env(self) -> dict[str, str]:
        """The environment of a client of this bus (tunlabctl, busctl, python3-dbus)."""
        return dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


class Daemon:
    """One tunlabd in one namespace, with its own config/state/runtime directories."""

    def __init__(self, ns: str, workdir: Path, notify_path: Path, bus: PrivateBus,
                 tunnels: dict[str, dict[str, Any]], debug: bool, args: tuple[str, ...] = ()):
        self.ns = ns
        self.args = args  # further command-line options, e.g. ("--no-offload",)
        self.ready_seconds = 0.0  # launch to READY=1, of the last start()
        self.bus = bus
        self.workdir = workdir
        self.config_dir = workdir / "config"
        self.state_dir = workdir / "state"
        self.runtime_dir = workdir / "runtime"
        self.log_path = workdir / "tunlabd.log"
        self.notify_path = notify_path
        self.tunnels = tunnels
        self.debug = debug
        self.proc: subprocess.Popen[bytes] | None = None
        self.interfaces: dict[str, str] = {}
        for directory in (self.config_dir, self.state_dir, self.runtime_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.write_config(tunnels)

    @property
    def status_path(self) -> Path:
        return self.runtime_dir / "status.json"

    def write_config(self, tunnels: dict[str, dict[str, Any]]) -> None:
        for old in self.config_dir.glob("*.json"):
            old.unlink()
        for name, config in tunnels.items():
            (self.config_dir / f"{name}.json").write_text(json.dumps(config, indent=2))
        self.tunnels = tunnels

    # lifecycle

    def start(self) -> "Daemon":
        """Starts tunlabd and returns once it has sent READY=1 (never by sleeping)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        # systemd gives every start an empty RuntimeDirectory; do the same, or a restarted
        # daemon's first status.json could have a lower generation than the stale one.
        shutil.rmtree(self.runtime_dir)
        self.runtime_dir.mkdir()
        with contextlib.suppress(FileNotFoundError):
            self.notify_path.unlink()
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            notify.bind(str(self.notify_path))
            # The socket alone, as a service finds the system bus: the address the bus prints
            # also names its guid, which a restarted bus would not match.
            env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path),
                       DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={self.bus.socket_path}")
            for inherited in ("CONFIGURATION_DIRECTORY", "STATE_DIRECTORY",
                              "RUNTIME_DIRECTORY", "WATCHDOG_USEC", "WATCHDOG_PID",
                              "LISTEN_FDS", "LISTEN_PID"):
                env.pop(inherited, None)
            argv = [str(tunlabd_path()), "--config-dir", str(self.config_dir),
                    "--state-dir", str(self.state_dir), "--runtime-dir", str(self.runtime_dir)]
            if self.debug:
                argv.append("--debug")
            argv.extend(self.args)
            with open(self.log_path, "ab") as log:
                log.write(f"==== {' '.join(argv)}\n".encode())
                log.flush()
                launched = time.monotonic()
                self.proc = subprocess.Popen(in_netns(self.ns, argv), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, env=env)
            self._wait_for_ready(notify)
            self.ready_seconds = time.monotonic() - launched
        finally:
            notify.close()
        # Learn the kernel's names for the devices, so that stop() can check they are gone.
        self.refresh_interfaces()
        return self

    def _wait_for_ready(self, notify: socket.socket) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DaemonError(f"no READY=1 within {READY_TIMEOUT:g}s\n{self.describe()}")
            notify.settimeout(min(remaining, 0.2))
            try:
                message = notify.recv(4096).decode(errors="replace")
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise DaemonError(f"exited with {self.proc.returncode} before READY=1\n"
                                      f"{self.describe()}") from None
                continue
            if "READY=1" in message.split("\n"):
                return

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        assert self.alive(), f"tunlabd is not running\n{self.describe()}"
        self.proc.send_signal(signum)

    def stop(self) -> None:
        """Clean shutdown: SIGTERM must end the daemon with status 0 and remove its devices."""
        self.refresh_interfaces()  # tunnels made over D-Bus since start() count too
        self.signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise DaemonError(f"did not exit within {STOP_TIMEOUT:g}s of SIGTERM\n"
                              f"{self.describe()}") from None
        assert code == 0, f"tunlabd exited with {code} after SIGTERM\n{self.describe()}"
        for interface in self.interfaces.values():
            assert not link_exists(self.ns, interface), \
                f"{interface} still exists in {self.ns} after tunlabd stopped"
        self.check_log_format()

    def crash(self) -> None:
        """kill -9: no shutdown code runs, as after a crash or an OOM kill."""
        self.refresh_interfaces()
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def refresh_interfaces(self) -> None:
        self.interfaces = {name: tunnel["interface"]
                           for name, tunnel in self.status()["tunnels"].items()}

    def kill(self) -> None:
        """Teardown after a failure: no assertions, just make sure it is gone."""
        if not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def check_log_format(self) -> None:
        """Every log line carries an sd-daemon priority prefix, as journald expects."""
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("==== ") or not line:
                continue  # our own start markers
            assert re.match(r"<[0-7]>", line), f"log line without <N> prefix: {line!r}"

    # status

    def _current_generation(self) -> int:
        try:
            return json.loads(self.status_path.read_text())["generation"]
        except FileNotFoundError:
            return -1

    def status(self, timeout: float = STATUS_TIMEOUT) -> dict[str, Any]:
        """Asks for a fresh status.json (SIGUSR1) and returns it once its generation grew."""
        before = self._current_generation()
        self.signal(signal.SIGUSR1)

        def fresh_status() -> dict[str, Any] | None:
            if not self.alive():
                raise DaemonError(f"tunlabd died\n{self.describe()}")
            try:
                text = self.status_path.read_text()
            except FileNotFoundError:
                return None
            # No JSONDecodeError tolerance: the file is written atomically (tmp + rename), so
            # a partial file is a bug worth failing on.
            data = json.loads(text)
            return data if data["generation"] > before else None

        return wait_until(fresh_status, timeout, f"status.json generation > {before}")

    def tunnel(self, name: str | None = None) -> dict[str, Any]:
        """Fresh status of one tunnel (the only one if `name` is None)."""
        tunnels = self.status()["tunnels"]
        if name is None:
            assert len(tunnels) == 1, f"expected one tunnel, got {list(tunnels)}"
            return next(iter(tunnels.values()))
        return tunnels[name]

    def wait_for_tunnel(self, condition: Callable[[dict[str, Any]], bool], what: str,
                        timeout: float = 5.0, name: str | None = None) -> dict[str, Any]:
        """Polls status until `condition(tunnel)` holds, e.g. until counters caught up: a
        packet can reach its destination a moment before the daemon bumps the counter."""
        def tunnel_if_condition_holds() -> dict[str, Any] | None:
            tunnel = self.tunnel(name)
            return tunnel if condition(tunnel) else None

        return wait_until(tunnel_if_condition_holds, timeout, what, interval=0.05)

    def describe(self) -> str:
        return f"tunlabd in {self.ns}, log {self.log_path}:\n{tail(self.log_path)}"

    # clients of its bus

    def tunlabctl(self, *args: str, user: bool = False, groups: tuple[int, ...] = (),
                  timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Runs tunlabctl against this daemon's bus and returns the finished process, whatever
        its exit code (the tests check it). user=True: as nobody (with `groups`)."""
        return run_tunlabctl(self.bus, *args, user=user, groups=groups, timeout=timeout)

    def ctl(self, *args: str) -> str:
        """tunlabctl as root that must succeed; its standard output."""
        result = self.tunlabctl(*args)
        assert result.returncode == 0, \
            (f"tunlabctl {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}\n"
             f"tunlabd {'runs' if self.alive() else 'is dead'}; {self.describe()}")
        return result.stdout

    def ctl_json(self, *args: str) -> Any:
        return json.loads(self.ctl("--json", *args))

    def counters(self, tunnel: str | None = None) -> dict[str, int]:
        """The tunnel's counters as `tunlabctl --json stats` reports them."""
        args = ["--tunnel", tunnel] if tunnel else []
        return self.ctl_json(*args, "stats")["counters"]

    def wait_for_counters(self, condition: Callable[[dict[str, int]], bool], what: str,
                          timeout: float = 5.0, tunnel: str | None = None) -> dict[str, int]:
        """Polls `tunlabctl --json stats` until `condition(counters)` holds."""
        def counters_if_condition_holds() -> dict[str, int] | None:
            counters = self.counters(tunnel)
            return counters if condition(counters) else None

        return wait_until(counters_if_condition_holds, timeout, what, interval=0.05)

    def bus_status(self) -> dict[str, dict[str, Any]]:
        """`tunlabctl --json status`, as {tunnel name: tunnel}."""
        return {tunnel["name"]: tunnel for tunnel in self.ctl_json("status")["tunnels"]}

    # the lab's two ends, set up over D-Bus only (the daemon started without any files)

    def create_server_tunnel(self, name: str = "lab") -> None:
        """The lab's server-router end: listens on 9090 and learns its clients."""
        self.ctl("create", name, "--address", f"{SERVER_TUNNEL_ADDRESS}/24",
                 "--listen-port", str(SERVER_PORT))

    def create_client_tunnel(self, tunnel_address: str, name: str = "lab",
                             listen_port: int | None = None) -> None:
        """The lab's client end: one peer (the server), the private network routed into it."""
        port = ["--listen-port", str(listen_port)] if listen_port is not None else []
        self.ctl("create", name, "--address", f"{tunnel_address}/24", *port)
        self.ctl("--tunnel", name, "add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}",
                 "--allowed-ips", f"{PRIVATE_NETWORK},{TUNNEL_NETWORK}")
        self.ctl("--tunnel", name, "add-route", PRIVATE_NETWORK)


def run_tunlabctl(bus: PrivateBus, *args: str, user: bool = False, groups: tuple[int, ...] = (),
                  timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    # Outside the lab's namespaces: the bus socket is a path, and tunlabctl never touches the
    # network itself.
    argv = [str(tunlabctl_path()), *args]
    if user or groups:
        argv = as_user(argv, groups=groups)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=bus.env(), timeout=timeout)


def link_exists(ns: str, interface: str) -> bool:
    return run(["ip", "-n", ns, "link", "show", "dev", interface], check=False).returncode == 0


# ── the lab ──────────────────────────────────────────────────────────────────────────

_lab_sequence = itertools.count(1)


class Lab:
    """The topology plus everything started in it; close() removes all of it."""

    ROLES = ("u", "u2", "s", "v", "sw")

    def __init__(self, workdir: Path, ipv6: bool = False, debug_daemons: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ipv6 = ipv6
        self.debug_daemons = debug_daemons
        prefix = f"tl{os.getpid()}-{next(_lab_sequence)}"
        self.ns = {role: f"{prefix}-{role}" for role in self.ROLES}
        # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="tln-"))
        # Unprivileged clients must reach the bus sockets inside (not list the directory).
        self._socket_dir.chmod(0o711)
        self._created: list[str] = []
        self._daemons: list[Daemon] = []
        self._buses: list[PrivateBus] = []
        self._processes: list[subprocess.Popen] = []
        self._sockets: list[socket.socket] = []
        self._daemon_sequence = itertools.count(1)
        self._bus_sequence = itertools.count(1)

    def __enter__(self) -> "Lab":
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # topology

    def build(self) -> None:
        self.build_lan({"u": U_ADDRESS, "u2": U2_ADDRESS, "s": SERVER_ADDRESS})
        self._veth(self.ns["s"], "eth1", self.ns["v"], "eth0")
        self._address(self.ns["s"], "eth1", f"{SERVER_PRIVATE_ADDRESS}/24")
        self._address(self.ns["v"], "eth0", f"{V_ADDRESS}/24")
        run(["ip", "-n", self.ns["v"], "route", "add", "default", "via", SERVER_PRIVATE_ADDRESS])
        self.sysctl("s", "net.ipv4.ip_forward=1")

    def build_lan(self, members: dict[str, str]) -> None:
        """Creates every namespace of ROLES, then the lab's 10.9.0.0/24 LAN: a bridge in the
        switch namespace "sw" with each member's eth0 (role → address) on it."""
        for role in self.ROLES:
            self._add_namespace(self.ns[role])
        switch = self.ns["sw"]
        run(["ip", "-n", switch, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", switch, "link", "set", "br0", "up"])
        for role, address in members.items():
            self._veth(self.ns[role], "eth0", switch, f"p-{role}")
            run(["ip", "-n", switch, "link", "set", f"p-{role}", "master", "br0", "up"])
            self._address(self.ns[role], "eth0", f"{address}/24")

    def _add_namespace(self, ns: str) -> None:
        run(["ip", "netns", "add", ns])
        self._created.append(ns)
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        if not self.ipv6:
            # Before any device exists: router solicitations, MLD reports and the like on
            # tunnel devices would otherwise be extra packets in counters that tests check
            # exactly. "default" covers devices created later (veths, TUN devices).
            run(in_netns(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                              "net.ipv6.conf.default.disable_ipv6=1"]))

    @staticmethod
    def _veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        # Both ends are created directly in their namespaces: nothing touches the host's.
        run(["ip", "link", "add", name_a, "netns", ns_a, "type", "veth",
             "peer", "name", name_b, "netns", ns_b])
        run(["ip", "-n", ns_b, "link", "set", name_b, "up"])

    @staticmethod
    def _address(ns: str, interface: str, cidr: str) -> None:
        run(["ip", "-n", ns, "addr", "add", cidr, "dev", interface])
        run(["ip", "-n", ns, "link", "set", interface, "up"])

    def sysctl(self, role: str, setting: str) -> None:
        run(in_netns(self.ns[role], ["sysctl", "-q", "-w", setting]))

    def ip(self, role: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "-n", self.ns[role], *args], check=check)

    def stop_daemons(self) -> None:
        """Clean shutdown of every daemon still running, with Daemon.stop()'s checks."""
        for daemon in self._daemons:
            if daemon.alive():
                daemon.stop()

    def kill_daemons(self) -> None:
        """SIGKILL for every daemon still running (after a failed stop_daemons())."""
        for daemon in self._daemons:
            daemon.kill()

    def close(self) -> None:
        for daemon in self._daemons:
            daemon.kill()
        for bus in self._buses:
            bus.stop()
        for proc in self._processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for sock in self._sockets:
            sock.close()
        for ns in reversed(self._created):
            run(["ip", "netns", "del", ns], check=False)
        self._created.clear()
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    # processes and sockets inside hosts

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

    def spawn(self, role: str, argv: list[str], log_name: str | None = None,
              **popen_args: Any) -> subprocess.Popen:
        """Starts a program inside a host; it is terminated at close() if still running."""
        if log_name is not None:
            log = open(self.workdir / log_name, "ab")
            popen_args.setdefault("stdout", log)
            popen_args.setdefault("stderr", subprocess.STDOUT)
        popen_args.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(in_netns(self.ns[role], argv), **popen_args)
        self._processes.append(proc)
        return proc

    def exec(self, role: str, argv: list[str], check: bool = True, timeout: float = 60.0
             ) -> subprocess.CompletedProcess[str]:
        return run(in_netns(self.ns[role], argv), check=check, timeout=timeout)

    def socket(self, role: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM
               ) -> socket.socket:
        """A socket owned by this process but living in host `role`'s network namespace."""
        with _inside_netns(self.ns[role]):
            sock = socket.socket(family, kind)
        self._sockets.append(sock)
        return sock

    # measurements

    def ping(self, role: str, destination: str, count: int, interval: float = 0.05,
             size: int | None = None) -> PingResult:
        result = self.exec(role, ping_argv(destination, count, interval, size), check=False,
                           timeout=count * interval + 60)
        return parse_ping(result.stdout)

    def ping_unanswered(self, role: str, destination: str, count: int = 3) -> str:
        """Asserts that no ping gets through (the route or the peer is gone) and returns
        ping's output. Without a route ping fails at once without a summary line."""
        result = self.exec(role, ping_argv(destination, count, 0.05), check=False, timeout=60)
        assert result.returncode != 0, f"ping {destination} succeeded:\n{result.stdout}"
        assert "bytes from" not in result.stdout, result.stdout
        return result.stdout + result.stderr

    def ping_in_background(self, role: str, destination: str, count: int,
                           interval: float = 0.05) -> BackgroundPing:
        proc = self.spawn(role, ping_argv(destination, count, interval),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return BackgroundPing(proc)

    def tcp_transfer(self, from_role: str, to_role: str, to_address: str, data: bytes,
                     port: int = 5001, timeout: float = 60.0) -> "TcpTransfer":
        """Sends `data` over one TCP connection between two hosts; both ends are sockets of
        this process placed in the hosts' namespaces."""
        listener = self.socket(to_role, socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((to_address, port))
        listener.listen(1)
        listener.settimeout(timeout)
        sender = self.socket(from_role, socket.AF_INET, socket.SOCK_STREAM)
        sender.settimeout(timeout)
        sender.connect((to_address, port))
        receiver, (sender_address, _) = listener.accept()
        receiver.settimeout(timeout)
        self._sockets.append(receiver)

        errors: list[BaseException] = []
        sending = threading.Thread(target=_send_and_close, args=(sender, data, errors))
        sending.start()
        try:
            received, digest = _receive_until_closed(receiver)
        finally:
            sending.join(timeout)
        assert not errors, f"sending failed: {errors}"
        return TcpTransfer(sender_address, received, digest)

    def udp_receive_errors(self, role: str) -> int:
        """The kernel's count of UDP datagrams dropped before any socket read them (e.g. a
        full receive buffer) in host `role`: such a loss is not the daemon's doing."""
        snmp = self.exec(role, ["cat", "/proc/net/snmp"]).stdout.splitlines()
        header, values = [line.split() for line in snmp if line.startswith("Udp:")][:2]
        fields = dict(zip(header[1:], (int(v) for v in values[1:])))
        return fields["RcvbufErrors"] + fields["InErrors"]

    def start_iperf_server(self, port: int = IPERF_PORT) -> None:
        """iperf3 --server in V (once; it lives until close())."""
        if not self.tcp_port_listening("v", port):
            self.spawn("v", ["iperf3", "--server", "--port", str(port)],
                       log_name=f"iperf3-server-{port}.log")
            wait_until(lambda: self.tcp_port_listening("v", port), 10, "iperf3 to listen in V")

    def bus_latency(self, daemons: list[Daemon], tunnel_path: str = "/org/tunlab1/tunnel/lab",
                    calls: int = 200, interval: float = 0.01) -> list[BusLatency]:
        """D-Bus reply latency of each of `daemons` (BRIEF §4: the bus is served by the control
        loop, never blocked by the packet path): `calls` Get(Counters), one every `interval`
        seconds, first idle, then while iperf3 sends U → V through the tunnel at full rate
        (one daemon after the other, in one iperf3 run). The tunnel must carry U → V already.
        Needs python3-dbus."""
        from dbus_client import TUNNEL, Client, get_latencies  # only this needs python3-dbus

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

    def udp_port_bound(self, role: str, port: int) -> bool:
        output = self.exec(role, ["ss", "-Hnlu", f"sport = :{port}"]).stdout
        return bool(output.strip())

    def tcp_port_listening(self, role: str, port: int) -> bool:
        output = self.exec(role, ["ss", "-Hnlt", f"sport = :{port}"]).stdout
        return bool(output.strip())

    def route_device(self, role: str, prefix: str) -> str | None:
        """The device the route to `prefix` uses in host `role`, or None."""
        output = self.ip(role, "route", "show", prefix).stdout
        match = re.search(r"\bdev (\S+)", output)
        return match.group(1) if match else None
