"""The measurements of bench/run, one function per case, on a built harness.lab.Lab.

Every function measures U → V on whatever path the lab currently routes (directly via the
server-router, or through tunlabd) and returns plain JSON-able figures. The lab is the test
harness's (tests/harness, found through the symlink bench/harness).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import harness.daemon
from harness.prerequisites import tunlabd_path
from harness.process import wait_until
from harness.procfs import cpu_seconds
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, U_ADDRESS,
                          U_TUNNEL_ADDRESS, V_ADDRESS, client_config, server_config)
from harness.traffic import IPERF_PORT
from tunnels import OpenVpnTunnel, TunlabTunnel, stop_daemons

TUNNEL_PATH = "/org/tunlab1/tunnel/lab"

# The small-packet case: UDP payload bytes per datagram, the offered loads tried, as multiples
# of what the path carried with an unlimited sender (see measure_small_packets), its port.
UDP_PAYLOAD = 64
UDP_LOAD_FACTORS = (1.5, 1.25, 1.1)
UDP_FLOOD_PORT = 5301

# The many-peers case: the small tunnel whose AddPeer/RemovePeer the big one's are compared with.
SMALL_PEER_COUNT = 10
# The many-peers case: U's fixed source port (the server's configured peer for U needs it).
CLIENT_PORT = 40000


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, round(fraction * len(ordered) + 0.5))) - 1]


@contextlib.contextmanager
def using_tunlabd(binary: Path) -> Iterator[None]:
    """Daemons started inside this block run `binary` (tunlabd_path() reads TUNLABD)."""
    saved = os.environ.get("TUNLABD")
    os.environ["TUNLABD"] = str(binary)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TUNLABD", None)
        else:
            os.environ["TUNLABD"] = saved


@contextlib.contextmanager
def lab_timeouts(seconds: float) -> Iterator[None]:
    """harness.daemon's READY/status/stop timeouts (15/10/15 s) raised for a daemon with a
    huge configuration, so that a slow daemon is measured rather than given up on."""
    module = harness.daemon
    saved = module.READY_TIMEOUT, module.STATUS_TIMEOUT, module.STOP_TIMEOUT
    module.READY_TIMEOUT = module.STATUS_TIMEOUT = module.STOP_TIMEOUT = seconds
    try:
        yield
    finally:
        module.READY_TIMEOUT, module.STATUS_TIMEOUT, module.STOP_TIMEOUT = saved


# ── iperf3 and ping ─────────────────────────────────────────────────────────────────────


def iperf3(the_lab, duration: float, *options: str) -> dict[str, Any]:
    """One iperf3 client run in U against the server in V; the "end" part of its JSON."""
    argv = ["iperf3", "--client", V_ADDRESS, "--port", str(IPERF_PORT),
            "--time", f"{duration:g}", "--connect-timeout", "5000", "--json", *options]
    result = the_lab.exec("u", argv, check=False, timeout=duration + 30)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {"error": result.stderr.strip() or result.stdout.strip() or "no output"}
    if "error" in report or result.returncode != 0:
        raise RuntimeError(f"iperf3 {' '.join(options)} failed: {report.get('error')}")
    return report["end"]


def measure_tcp(the_lab, duration: float, flows: int = 1) -> float:
    """Bits per second received by V, summed over `flows` parallel TCP connections."""
    options = ("--parallel", str(flows)) if flows > 1 else ()
    return iperf3(the_lab, duration, *options)["sum_received"]["bits_per_second"]


def measure_rtt(the_lab, pings: int, interval: float) -> dict[str, float]:
    """Median and 90th percentile RTT (ms) of `pings` pings `interval` s apart; all must be
    answered."""
    result = the_lab.ping("u", V_ADDRESS, pings, interval)
    if result.received != pings:
        raise RuntimeError(f"{pings - result.received} of {pings} pings lost:\n"
                           f"{result.output[-2000:]}")
    return {"rtt_median_ms": result.median_rtt_ms,
            "rtt_p90_ms": nearest_rank(result.rtts_ms, 0.90)}


@functools.cache
def load_generator_path(name: str) -> Path:
    """bench/NAME.cpp (udp_flood, handshake_flood), built next to the tunlabd under test
    (the environment variable NAME in capitals overrides it); the same for the baseline's
    runs."""
    default = tunlabd_path().resolve().parent.parent / "bench" / name
    return Path(os.environ.get(name.upper(), default))


def udp_trial(the_lab, duration: float, rate: float) -> dict[str, float]:
    """One run of udp_flood: U sends UDP_PAYLOAD-byte datagrams to V at `rate` packets/s (0 =
    as fast as it can) for `duration` s; V counts what arrives with recvmmsg."""
    flood = str(load_generator_path("udp_flood"))
    receiver = the_lab.spawn("v", [flood, "receive", str(UDP_FLOOD_PORT), f"{duration:g}"],
                             stdout=subprocess.PIPE, text=True)
    try:
        listening = receiver.stdout.readline()  # {"listening": port} once bound
        if "listening" not in listening:
            raise RuntimeError(f"udp_flood receive did not start: {listening!r}")
        sent = json.loads(the_lab.exec("u", [flood, "send", V_ADDRESS, str(UDP_FLOOD_PORT),
                                             f"{duration:g}", str(UDP_PAYLOAD), f"{rate:.0f}"],
                                       timeout=duration + 30).stdout)
        received = json.loads(receiver.communicate(timeout=duration + 10)[0])
    finally:
        if receiver.poll() is None:
            receiver.kill()
    received_pps = received["datagrams"] / received["seconds"] if received["seconds"] else 0.0
    return {
        "offered_pps": rate or None,
        "sent_pps": sent["datagrams"] / sent["seconds"],
        "received_pps": received_pps,
        "lost_percent": 100.0 * (1 - received["datagrams"] / max(sent["datagrams"], 1)),
    }


def measure_small_packets(the_lab, duration: float) -> dict[str, Any]:
    """Packets per second of UDP_PAYLOAD-byte datagrams that V receives at best.

    Unlimited, the sender spins on one of the two cores that the daemons and the receiver
    need as well, so a path often carries more when offered a little more than it carried
    then: after the unlimited run, the sender is paced at each UDP_LOAD_FACTORS of that
    received rate (a sender that cannot go that fast is simply unlimited again). The figure
    is the best received rate; every trial is kept."""
    trials = [udp_trial(the_lab, duration, 0)]
    for factor in UDP_LOAD_FACTORS:
        trials.append(udp_trial(the_lab, duration, trials[0]["received_pps"] * factor))
    best = max(trials, key=lambda trial: trial["received_pps"])
    return {"udp64_pps": best["received_pps"], "udp64_trials": trials}


# ── one path: everything except the daemons' own figures ────────────────────────────────


def median_of(repeat: int, key: str, measure_once) -> dict[str, Any]:
    """{key: the median over `repeat` runs of measure_once()} (which returns the figure, or a
    dict with it under `key`), with every run's figure as "<key>_samples" and the dicts'
    other entries as "<key>_runs" when repeated."""
    runs = [measure_once() for _ in range(repeat)]
    samples = [run[key] if isinstance(run, dict) else run for run in runs]
    if repeat == 1:
        return runs[0] if isinstance(runs[0], dict) else {key: runs[0]}
    result: dict[str, Any] = {key: statistics.median(samples), f"{key}_samples": samples}
    if isinstance(runs[0], dict):
        result[f"{key}_runs"] = runs
    return result


# Seconds of an idle tunnel (after the other cases, before the pings) whose CPU time is
# measured: an idle tunnel should use none (no polling without traffic).
IDLE_SAMPLE_SECONDS = 2.0


def cpu_percent(pids: list[int], measure_once) -> tuple[Any, list[float]]:
    """measure_once()'s result, and the CPU each of `pids` used meanwhile, in percent of one
    core."""
    before = [cpu_seconds(pid) for pid in pids]
    started = time.monotonic()
    result = measure_once()
    elapsed = time.monotonic() - started
    return result, [100 * (cpu_seconds(pid) - used) / elapsed for pid, used in zip(pids, before)]


def measure_rtt_and_cpu(the_lab, args, pids: list[int]) -> dict[str, Any]:
    """The RTT figures, with the CPU the tunnel's two ends (server, client) used while idle for
    IDLE_SAMPLE_SECONDS and while pinged every args.ping_interval."""
    figures: dict[str, Any] = {}
    if pids:
        _, idle = cpu_percent(pids, lambda: time.sleep(IDLE_SAMPLE_SECONDS))
        figures.update({"idle_cpu_server_percent": idle[0], "idle_cpu_client_percent": idle[-1]})
    rtt, pinged = cpu_percent(pids, lambda: measure_rtt(the_lab, args.pings, args.ping_interval))
    figures.update(rtt)
    if pids:
        figures.update({"rtt_cpu_server_percent": pinged[0],
                        "rtt_cpu_client_percent": pinged[-1]})
    return figures


def measure_path(the_lab, cases: list[str], args, pids: list[int] = ()) -> dict[str, Any]:
    """The selected path cases on the current route U → V; `pids`: the tunnel's processes
    (server, client), whose CPU time the rtt case reports. A failing case is recorded as
    "<case>_error" and the others still run."""
    wait_until(lambda: the_lab.ping("u", V_ADDRESS, 1, 0.01).received == 1, 10,
               "V to answer a ping")  # ARP caches, the server's learned peer
    cases_here = {
        "tcp": lambda: median_of(args.repeat, "throughput_bps",
                                 lambda: measure_tcp(the_lab, args.duration)),
        "tcp4": lambda: median_of(args.repeat, "throughput_4flows_bps",
                                  lambda: measure_tcp(the_lab, args.duration, 4)),
        "rtt": lambda: measure_rtt_and_cpu(the_lab, args, list(pids)),
        "udp64": lambda: median_of(args.repeat, "udp64_pps",
                                   lambda: measure_small_packets(the_lab, args.duration)),
    }
    figures: dict[str, Any] = {}
    for case, measure in cases_here.items():
        if case in cases:
            try:
                figures.update(measure())
            except Exception as error:  # reported in the output, the run goes on
                figures[f"{case}_error"] = f"{type(error).__name__}: {error}"
    return figures


def measure_bus_latency(the_lab, daemons, calls: int) -> dict[str, Any] | str:
    """Get(Counters) round trips on both daemons, idle and under iperf3 load (Lab.bus_latency)."""
    if calls <= 0:
        return "skipped (--bus-calls 0)"
    try:
        import dbus  # noqa: F401 (python3-dbus, used by Lab.bus_latency)
    except ImportError:
        return "skipped: needs python3-dbus"
    try:
        latencies = the_lab.bus_latency(daemons, calls=calls)
    except Exception as error:
        return f"failed: {type(error).__name__}: {error}"
    return {name: latency.summary() for name, latency in zip(("server", "client"), latencies)}


def measure_tunnel(the_lab, tunnel, workdir: Path, cases: list[str], args) -> dict[str, Any]:
    """U → V through `tunnel` (bench/tunnels.py): the path cases, the tunnel MTU and (case
    "bus", tunlabd only) the D-Bus latency."""
    results: dict[str, Any] = {"label": tunnel.label}
    try:
        results["mtu"] = tunnel.start(the_lab, workdir)
        results["figures"] = measure_path(the_lab, cases, args, tunnel.pids())
        if "bus" in cases and tunnel.daemons:
            results["bus_latency"] = measure_bus_latency(the_lab, tunnel.daemons,
                                                         args.bus_calls)
    finally:
        problem = tunnel.stop(the_lab)
    if problem:
        results["shutdown_error"] = problem
    return results


# ── latency side by side ────────────────────────────────────────────────────────────────

# V's extra addresses for the side-by-side case: one reached through OpenVPN, one directly.
V_OVER_OPENVPN = "192.168.60.6"
V_DIRECT = "192.168.60.7"
OPENVPN_ADDRESSES = ("192.168.54.11", "192.168.54.99")  # server, U: beside tunlabd's .53
OPENVPN_PORT = 1194
LATENCY_BLOCK = 40  # pings per path and turn


def measure_latency_side_by_side(the_lab, workdir: Path, args) -> dict[str, Any]:
    """Median and p90 RTT U → V directly, through tunlabd (plain) and through OpenVPN, all
    three up at once, pinged in turns of LATENCY_BLOCK pings each, args.pings per path in all:
    whatever the machine does meanwhile (this VM's timing drifts by tens of µs from minute to
    minute) falls on the three alike, so the ratio of what the tunnels add is the tunnels'.
    Also each end's CPU while pinged, and tunlabd's while idle."""
    the_lab.ip("v", "address", "add", f"{V_OVER_OPENVPN}/24", "dev", "eth0")
    the_lab.ip("v", "address", "add", f"{V_DIRECT}/24", "dev", "eth0")
    the_lab.ip("u", "route", "add", f"{V_DIRECT}/32", "via", SERVER_ADDRESS)
    tunlab = TunlabTunnel("plain", args.tunnel_settings)
    openvpn = OpenVpnTunnel(device="ovpn1", port=OPENVPN_PORT, addresses=OPENVPN_ADDRESSES,
                            route=(f"{V_OVER_OPENVPN}/32", "src", OPENVPN_ADDRESSES[1]))
    paths = {"no_tunnel": (V_DIRECT, lambda: []), "tunnel": (V_ADDRESS, tunlab.pids),
             "openvpn": (V_OVER_OPENVPN, openvpn.pids)}
    results: dict[str, Any] = {"pings": args.pings, "block": LATENCY_BLOCK}
    try:
        tunlab.start(the_lab, workdir / "latency")
        openvpn.start(the_lab, workdir)
        for target, _ in paths.values():
            wait_until(lambda: the_lab.ping("u", target, 1, 0.01).received == 1, 10,
                       f"{target} to answer a ping")
        _, idle = cpu_percent(tunlab.pids(), lambda: time.sleep(IDLE_SAMPLE_SECONDS))
        results["tunnel_idle_cpu_percent"] = idle
        rtts: dict[str, list[float]] = {name: [] for name in paths}
        cpu_seconds_used = {name: [0.0, 0.0] for name in paths}
        elapsed = dict.fromkeys(paths, 0.0)
        for _ in range(max(1, args.pings // LATENCY_BLOCK)):
            for name, (target, pids) in paths.items():
                started = time.monotonic()
                result, used = cpu_percent(
                    pids(), lambda: the_lab.ping("u", target, LATENCY_BLOCK, args.ping_interval))
                if result.received != LATENCY_BLOCK:
                    raise RuntimeError(f"{name}: {LATENCY_BLOCK - result.received} of "
                                       f"{LATENCY_BLOCK} pings lost")
                seconds = time.monotonic() - started
                rtts[name].extend(result.rtts_ms)
                for end, percent in enumerate(used):
                    cpu_seconds_used[name][end] += percent * seconds / 100
                elapsed[name] += seconds
        for name in paths:
            results[name] = {"rtt_median_ms": statistics.median(rtts[name]),
                             "rtt_p90_ms": nearest_rank(rtts[name], 0.90)}
            if name != "no_tunnel":
                results[name]["cpu_percent"] = [100 * used / elapsed[name]
                                                for used in cpu_seconds_used[name]]
        direct = results["no_tunnel"]["rtt_median_ms"]
        for name in ("tunnel", "openvpn"):
            results[name]["rtt_added_us"] = 1e3 * (results[name]["rtt_median_ms"] - direct)
        if results["openvpn"]["rtt_added_us"] > 0:
            results["added_ratio"] = (results["tunnel"]["rtt_added_us"]
                                      / results["openvpn"]["rtt_added_us"])
        results["p90_ratio"] = results["tunnel"]["rtt_p90_ms"] / results["openvpn"]["rtt_p90_ms"]
    finally:
        openvpn.stop(the_lab)
        problem = tunlab.stop(the_lab)
        the_lab.ip("u", "route", "del", f"{V_DIRECT}/32", check=False)
        for address in (V_OVER_OPENVPN, V_DIRECT):
            the_lab.ip("v", "address", "del", f"{address}/24", "dev", "eth0", check=False)
    if problem:
        results["shutdown_error"] = problem
    return results


# ── handshake load ──────────────────────────────────────────────────────────────────────


def measure_handshakes(the_lab, workdir: Path, args) -> dict[str, Any]:
    """A wireguard server answering args.handshake_rate initiations per second from
    args.handshake_peers distinct configured peers (bench/handshake_flood in U2, each a real
    initiation it must authenticate and answer) while U pings V through it: the ping's median
    RTT idle and under that load (target: at most 2× idle), and how many were answered."""
    flood = str(load_generator_path("handshake_flood"))
    keys = subprocess.run([flood, "public-keys", str(args.handshake_peers)], check=True,
                          capture_output=True, text=True, timeout=60).stdout.split()
    # Addresses no packet is ever sent to: the peers only handshake.
    flood_peers = [{"public_key": key, "allowed_ips": [f"10.100.{i // 250}.{i % 250 + 1}/32"]}
                   for i, key in enumerate(keys)]
    tunnel = TunlabTunnel("wireguard", args.tunnel_settings)
    results: dict[str, Any] = {"peers": len(keys), "rate": args.handshake_rate}
    try:
        tunnel.start(the_lab, workdir, flood_peers)
        server = tunnel.daemons[0]
        wait_until(lambda: the_lab.ping("u", V_ADDRESS, 1, 0.01).received == 1, 10,
                   "V to answer a ping through the tunnel")
        results["idle"] = measure_rtt(the_lab, args.pings, args.ping_interval)
        before = server.counters()
        sender = the_lab.spawn(
            "u2", [flood, "send", SERVER_ADDRESS, str(SERVER_PORT), tunnel.server_public_key,
                   str(len(keys)), f"{args.handshake_rate:g}",
                   f"{args.duration + args.pings * args.ping_interval + 1:g}"],
            stdout=subprocess.PIPE, text=True)
        # The pings start once the server is answering the flood.
        wait_until(lambda: server.counters()["handshake_responses_sent"]
                   > before["handshake_responses_sent"] + args.handshake_rate / 10, 10,
                   "the server to answer the flood's initiations")
        results["loaded"] = measure_rtt(the_lab, args.pings, args.ping_interval)
        output, _ = sender.communicate(timeout=args.duration + 60)
        after = server.counters()
        results["sender"] = json.loads(output)
        results["server"] = {key: after[key] - before[key] for key in after
                             if key.startswith(("handshake", "drop_")) and after[key] != before[key]}
        results["answered_per_s"] = (results["sender"]["responses"]
                                     / results["sender"]["seconds"])
        results["rtt_ratio"] = (results["loaded"]["rtt_median_ms"]
                                / results["idle"]["rtt_median_ms"])
    finally:
        problem = tunnel.stop(the_lab)
    if problem:
        results["shutdown_error"] = problem
    return results


# ── many configured peers on the server ──────────────────────────────────────────────────


def many_peers(count: int) -> list[dict[str, Any]]:
    """`count` peers that are never heard from: endpoints 10.200.x.y:51820, allowed IPs
    10.100.x.y/32 (no two alike; 250 per /24, so at most 64000)."""
    def address(network: str, i: int) -> str:
        return f"{network}.{i // 250}.{i % 250 + 1}"

    return [{"endpoint": f"{address('10.200', i)}:51820",
             "allowed_ips": [f"{address('10.100', i)}/32"]} for i in range(count)]


def rss_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, MiB."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def start_timed(the_lab, tunnels: dict[str, Any]) -> tuple[Any, float]:
    """Starts a server tunlabd; returns it and the seconds from its launch to READY=1."""
    daemon = the_lab.start_daemon("s", tunnels)
    return daemon, daemon.ready_seconds


def get_all_times(daemon, calls: int, timeout: float) -> dict[str, Any]:
    """Round trips (ms) of Properties.GetAll("org.tunlab1.Tunnel") on the tunnel object, as
    python3-dbus sees them (demarshalling the reply included); stops at the first failure."""
    from harness.dbus_client import BUS_NAME, PROPERTIES, TUNNEL, Client
    import dbus

    times: list[float] = []
    peers = None
    with Client(daemon.bus.address) as client:
        for _ in range(calls + 1):  # the first one sets up the connection's name lookup
            start = time.perf_counter()
            try:
                reply = client.bus.call_blocking(BUS_NAME, TUNNEL_PATH, PROPERTIES, "GetAll",
                                                 "s", (TUNNEL,), timeout=timeout)
            except dbus.exceptions.DBusException as error:
                return {"getall_error": f"{error.get_dbus_name()}: {error.get_dbus_message()} "
                                        f"after {time.perf_counter() - start:.1f} s",
                        "getall_ms": times}
            times.append((time.perf_counter() - start) * 1e3)
            peers = len(reply.get("Peers", []))
    return {"getall_first_ms": times[0], "getall_median_ms": statistics.median(times[1:]),
            "getall_max_ms": max(times[1:]), "getall_peers": peers}


def change_times(daemon, calls: int, timeout: float, fill_to: int = 0) -> dict[str, Any]:
    """Round trips (ms) of AddPeer and RemovePeer on the tunnel, as a client sees them: `calls`
    pairs, each adding a new peer (endpoint 10.201.x.y:51820, allowed IP 10.101.x.y/32) and
    removing it again, so that the tunnel keeps its size. Every change is saved before its
    reply, so this is the cost of a change at this size. With `fill_to`, peers are first added
    (untimed, 10.202.x.y) until the tunnel has that many. Stops at the first failure."""
    from harness.dbus_client import BUS_NAME, PROPERTIES, TUNNEL, Client, options
    import dbus

    def add(client, network: str, prefix_network: str, i: int) -> str:
        address = f"{i // 250}.{i % 250 + 1}"
        return client.bus.call_blocking(
            BUS_NAME, TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}",
            (f"{network}.{address}:51820",
             options({"allowed_ips": ("as", [f"{prefix_network}.{address}/32"])})),
            timeout=timeout)

    adds: list[float] = []
    removes: list[float] = []
    with Client(daemon.bus.address) as client:
        try:
            peers = len(client.bus.call_blocking(BUS_NAME, TUNNEL_PATH, PROPERTIES, "Get", "ss",
                                                 (TUNNEL, "Peers"), timeout=timeout))
            for i in range(max(0, fill_to - peers)):
                add(client, "10.202", "10.102", i)
            peers = max(peers, fill_to)
            for i in range(calls):
                start = time.perf_counter()
                path = add(client, "10.201", "10.101", i)
                adds.append((time.perf_counter() - start) * 1e3)
                start = time.perf_counter()
                client.bus.call_blocking(BUS_NAME, TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
                                         (path,), timeout=timeout)
                removes.append((time.perf_counter() - start) * 1e3)
        except dbus.exceptions.DBusException as error:
            return {"change_error": f"{error.get_dbus_name()}: {error.get_dbus_message()}"}
    return {"peers": peers, "add_median_ms": statistics.median(adds), "add_max_ms": max(adds),
            "remove_median_ms": statistics.median(removes), "remove_max_ms": max(removes)}


def measure_many_peers(the_lab, args) -> dict[str, Any]:
    """The server with U as its one configured peer, then with args.peer_count more: TCP
    throughput U → V with each, and with the big table the server's start-up time, RSS and
    the D-Bus GetAll of its tunnel. The server does not learn peers here: U must match its
    configured entry (endpoint 10.9.0.5:CLIENT_PORT, allowed IP 192.168.53.99/32)."""
    u_peer = {"endpoint": f"{U_ADDRESS}:{CLIENT_PORT}",
              "allowed_ips": [f"{U_TUNNEL_ADDRESS}/32"]}
    results: dict[str, Any] = {"peer_count": args.peer_count,
                               "getall_calls": args.getall_calls}

    def server_tunnels(peers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"lab": server_config(peers=peers, learn_peers=False)}

    the_lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS, listen_port=CLIENT_PORT)})
    server, results["startup_1peer_s"] = start_timed(the_lab, server_tunnels([u_peer]))
    results["rss_1peer_mib"] = rss_mib(server.proc.pid)["VmRSS"]
    try:
        wait_until(lambda: the_lab.ping("u", V_ADDRESS, 1, 0.01).received == 1, 10,
                   "V to answer a ping through the tunnel (one configured peer)")
        results.update(median_of(args.repeat, "throughput_1peer_bps",
                                 lambda: measure_tcp(the_lab, args.duration)))
        if args.change_calls:
            small = change_times(server, args.change_calls, args.peer_timeout,
                                 fill_to=SMALL_PEER_COUNT)
            results.update({f"{key}_small" if key != "change_error" else "change_small_error":
                            value for key, value in small.items()})
    except Exception as error:
        results["error"] = f"with one peer: {type(error).__name__}: {error}"
        stop_daemons(the_lab)
        return results
    server.stop()

    with lab_timeouts(args.peer_timeout):
        try:
            server, results["startup_s"] = start_timed(
                the_lab, server_tunnels(many_peers(args.peer_count) + [u_peer]))
        except Exception as error:
            results["error"] = (f"the server with {args.peer_count + 1} peers did not start "
                                f"within {args.peer_timeout:g} s: "
                                f"{str(error).splitlines()[0]}")
            stop_daemons(the_lab)
            return results
        results["rss_after_start_mib"] = rss_mib(server.proc.pid)["VmRSS"]
        results.update(get_all_times(server, args.getall_calls, args.peer_timeout))
        try:
            results.update(median_of(args.repeat, "throughput_bps",
                                     lambda: measure_tcp(the_lab, args.duration)))
            results["throughput_ratio"] = (results["throughput_bps"]
                                           / results["throughput_1peer_bps"])
        except Exception as error:
            results["throughput_error"] = f"{type(error).__name__}: {error}"
        memory = rss_mib(server.proc.pid)
        results["rss_mib"], results["rss_peak_mib"] = memory["VmRSS"], memory["VmHWM"]
        if args.change_calls:
            results.update(change_times(server, args.change_calls, args.peer_timeout))
            for change in ("add", "remove"):
                if f"{change}_median_ms" in results and results.get(f"{change}_median_ms_small"):
                    results[f"{change}_ratio"] = (results[f"{change}_median_ms"]
                                                  / results[f"{change}_median_ms_small"])
        stopping = time.monotonic()
        problem = stop_daemons(the_lab)
        results["stop_s"] = time.monotonic() - stopping
        if problem:
            results["shutdown_error"] = problem
    return results
