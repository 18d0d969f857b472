"""Network namespaces: commands and sockets inside them, and Hosts, a set of namespaces (one
per role) with the processes and sockets started in them, all removed by close().

Names are `tl<pid>-<n>-<role>`, unique per process, so that parallel runs and leftovers of
killed runs never clash. Nothing is created in the caller's namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

from harness.process import run

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def in_netns(ns: str, argv: list[str]) -> list[str]:
    # `ip netns exec` execs the command, so a Popen's pid is the program itself and
    # signals reach it directly.
    return ["ip", "netns", "exec", ns, *argv]


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


@contextlib.contextmanager
def inside_netns(ns: str):
    """Switches the calling thread into namespace `ns` and back. A socket keeps the namespace
    it was created in, so this lets the test process itself own sockets in lab hosts."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{ns}") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def socket_in_namespace(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket of this process living in network namespace `ns` (any kind, raw ones too).
    The caller closes it (Hosts.socket closes its own)."""
    with inside_netns(ns):
        return socket.socket(family, kind, proto)


def link_exists(ns: str, interface: str) -> bool:
    return run(["ip", "-n", ns, "link", "show", "dev", interface], check=False).returncode == 0


_hosts_sequence = itertools.count(1)


class Hosts:
    """One namespace per role of ROLES (a subclass names them and wires them up in build()),
    plus every process and socket started in them; close() removes all of it. With ipv6=False
    IPv6 is off in every namespace, so that counters see only the test's own packets."""

    ROLES: tuple[str, ...] = ()

    def __init__(self, workdir: Path, ipv6: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ipv6 = ipv6
        prefix = f"tl{os.getpid()}-{next(_hosts_sequence)}"
        self.ns = {role: f"{prefix}-{role}" for role in self.ROLES}
        self._created: list[str] = []
        self._processes: list[subprocess.Popen] = []
        self._sockets: list[socket.socket] = []

    def __enter__(self):
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def build(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
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

    # building blocks of a topology

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

    # processes and sockets inside hosts

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
        sock = socket_in_namespace(self.ns[role], family, kind)
        self._sockets.append(sock)
        return sock

    # what a host has

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
