"""Measuring a daemon from outside, through /proc: its resident memory and open file
descriptors, whether it runs under AddressSanitizer, and the kernel's UDP counters of the
network namespace it lives in."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path


def rss_kib(pid: int) -> int:
    """Resident set size of process `pid` in KiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def sanitized(pid: int) -> bool:
    """Whether process `pid` runs with AddressSanitizer (the asan preset). Its allocator keeps
    freed memory in quarantine, so RSS grows with any allocation traffic: RSS flatness means
    nothing there (LeakSanitizer checks leaks at exit instead)."""
    return "libasan" in Path(f"/proc/{pid}/maps").read_text()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def daemon_pid(daemon) -> int:
    """The tunlabd process of a daemon.Daemon (`ip netns exec` execs it: same pid)."""
    pid = daemon.proc.pid
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    assert comm == "tunlabd", f"pid {pid} is {comm!r}, not tunlabd"
    return pid


def snmp_table(text: str, prefix: str) -> dict[str, int]:
    """One protocol's counters (e.g. "Udp", "Ip") from the text of /proc/net/snmp: a header
    line of names and a line of values."""
    rows = [line.split() for line in text.splitlines() if line.startswith(prefix + ":")]
    header, values = rows[0], rows[1]
    return dict(zip(header[1:], (int(value) for value in values[1:])))


@dataclasses.dataclass(frozen=True)
class KernelUdp:
    """The kernel's UDP counters of one network namespace (IPv4 + IPv6 MIBs summed, since a
    dual-stack socket's IPv4 datagrams count in the IPv4 MIB).

    in_datagrams: datagrams a socket *read* (the kernel counts them in recvmsg), so in a
    namespace where tunlabd owns the only UDP socket that receives anything, this is exactly
    the number of datagrams tunlabd received. in_errors includes rcvbuf_errors (datagrams
    dropped because the socket's receive buffer was full): those never reached the daemon.
    """
    in_datagrams: int
    rcvbuf_errors: int
    in_errors: int
    no_ports: int
    reassembly_failures: int

    def __sub__(self, other: "KernelUdp") -> "KernelUdp":
        return KernelUdp(*(a - b for a, b in zip(dataclasses.astuple(self),
                                                  dataclasses.astuple(other))))


def kernel_udp(pid: int) -> KernelUdp:
    """The UDP counters of the network namespace process `pid` lives in (read through
    /proc/<pid>/net, so no process has to be started in the namespace)."""
    snmp = Path(f"/proc/{pid}/net/snmp").read_text()
    udp = snmp_table(snmp, "Udp")
    ip = snmp_table(snmp, "Ip")
    udp6: dict[str, int] = {}
    ip6_reassembly_failures = 0
    with contextlib.suppress(FileNotFoundError):
        for line in Path(f"/proc/{pid}/net/snmp6").read_text().splitlines():
            name, value = line.split()
            if name.startswith("Udp6"):
                udp6[name[4:]] = int(value)
            elif name == "Ip6ReasmFails":
                ip6_reassembly_failures = int(value)
    return KernelUdp(
        in_datagrams=udp["InDatagrams"] + udp6.get("InDatagrams", 0),
        rcvbuf_errors=udp["RcvbufErrors"] + udp6.get("RcvbufErrors", 0),
        in_errors=udp["InErrors"] + udp6.get("InErrors", 0),
        no_ports=udp["NoPorts"] + udp6.get("NoPorts", 0),
        reassembly_failures=ip["ReasmFails"] + ip6_reassembly_failures,
    )


def cpu_seconds(pid: int) -> float:
    """CPU time process `pid` has used, all its threads, in seconds: the scheduler's own
    nanosecond account (/proc/<pid>/task/*/schedstat), not the 10 ms ticks of
    /proc/<pid>/stat, which a second of light work hardly moves."""
    total_ns = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total_ns += int((task / "schedstat").read_text().split()[0])
    return total_ns / 1e9
