"""Traffic between hosts and what it measures: ping (counts, RTTs, in the background), one
TCP transfer checked by its SHA-256, the kernel's count of UDP datagrams it dropped, and the
figures of a D-Bus latency run under iperf3 load (BusLatency; lab.Lab.bus_latency runs it).

Traffic is a Hosts that can do all of this between its hosts; lab.Lab is one."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import signal
import socket
import statistics
import subprocess
import threading
from typing import Any

from harness.netns import Hosts
from harness.procfs import snmp_table

# `ping` with its default 56 data bytes: 20 (IPv4) + 8 (ICMP) + 56.
PING_PACKET_BYTES = 84

IPERF_PORT = 5201


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


# ── D-Bus latency figures ─────────────────────────────────────────────────────────────


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


# ── between hosts ──────────────────────────────────────────────────────────────────────


class Traffic(Hosts):
    """Hosts that send traffic to each other and measure it."""

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
                     port: int = 5001, timeout: float = 60.0) -> TcpTransfer:
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
        fields = snmp_table(self.exec(role, ["cat", "/proc/net/snmp"]).stdout, "Udp")
        return fields["RcvbufErrors"] + fields["InErrors"]
