"""One tunlabd under test and its private dbus-daemon (a private system bus).

Each tunlabd runs in one network namespace with its own temporary config/state/runtime
directories and its own dbus-daemon as "system bus"; readiness is its sd_notify READY=1,
status comes from SIGUSR1 + status.json, and clients (tunlabctl, busctl, python3-dbus) reach
it with DBUS_SYSTEM_BUS_ADDRESS set to its bus.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from harness.netns import in_netns, link_exists
from harness.prerequisites import REPO_ROOT, tunlabctl_path, tunlabd_path
from harness.process import as_user, tail, wait_until
from harness.uapi import in_uapi_directory
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, SERVER_TUNNEL_ADDRESS,
                          TUNNEL_NETWORK)

# bench/measure.py raises these for a huge configuration. READY and STOP are read when used;
# STATUS_TIMEOUT is the default of Daemon.status(), fixed when this module is loaded.
READY_TIMEOUT = 15.0
STATUS_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


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
    """A dbus-daemon standing in for the system bus of one tunlabd (a private system bus). One per daemon:
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


@functools.cache
def knows_option(binary: Path, option: str) -> bool:
    """Whether `binary --help` lists `option`."""
    result = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30)
    return option in result.stdout


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
        # The wireguard tunnels' control sockets: `wg` finds them with in_uapi_directory().
        self.uapi_dir = workdir / "wireguard"
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
            if knows_option(tunlabd_path(), "--uapi-dir"):  # an older binary (bench --baseline)
                argv += ["--uapi-dir", str(self.uapi_dir)]
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
                  timeout: float = 30.0, uapi: bool = False) -> subprocess.CompletedProcess[str]:
        """Runs tunlabctl against this daemon's bus and returns the finished process, whatever
        its exit code (the tests check it). user=True: as nobody (with `groups`). uapi=True:
        with this daemon's control sockets in /run/wireguard (see harness.uapi)."""
        return run_tunlabctl(self.bus, *args, user=user, groups=groups, timeout=timeout,
                             uapi_dir=self.uapi_dir if uapi else None)

    def wg(self, *args: str, check: bool = True, user: bool = False,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Debian's `wg` with this daemon's control sockets in /run/wireguard; user=True: as
        nobody."""
        argv = ["wg", *args]
        if user:
            argv = as_user(argv)
        result = subprocess.run(in_uapi_directory(self.uapi_dir, argv), input=input,
                                capture_output=True, text=True, timeout=30)
        if check:
            assert result.returncode == 0, \
                f"wg {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
        return result

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
                  timeout: float = 30.0, uapi_dir: Path | None = None
                  ) -> subprocess.CompletedProcess[str]:
    # Outside the lab's namespaces: the bus socket is a path, and tunlabctl never touches the
    # network itself.
    argv = [str(tunlabctl_path()), *args]
    if user or groups:
        argv = as_user(argv, groups=groups)
    if uapi_dir is not None:
        argv = in_uapi_directory(uapi_dir, argv)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=bus.env(), timeout=timeout)

