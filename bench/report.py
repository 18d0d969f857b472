"""bench/run's human-readable table (the JSON is the results dict as it is)."""

from __future__ import annotations

from typing import Any, Iterable

# (figure key, label, scale from the JSON unit to the table's unit)
PATH_ROWS = (
    ("throughput_bps", "TCP 1 flow U→V (Mbit/s)", 1e-6),
    ("throughput_4flows_bps", "TCP 4 flows U→V (Mbit/s)", 1e-6),
    ("udp64_pps", "UDP 64 B received by V (kpps)", 1e-3),
    ("rtt_median_ms", "RTT median U→V (ms)", 1),
    ("rtt_p90_ms", "RTT p90 U→V (ms)", 1),
    ("rtt_added_us", "RTT median added (µs)", 1),
    ("idle_cpu_server_percent", "CPU idle, server (% of a core)", 1),
    ("idle_cpu_client_percent", "CPU idle, client (% of a core)", 1),
    ("rtt_cpu_server_percent", "CPU pinged, server (% of a core)", 1),
    ("rtt_cpu_client_percent", "CPU pinged, client (% of a core)", 1),
)

# (key in the peers results, label, scale, target)
PEER_ROWS = (
    ("throughput_1peer_bps", "TCP U→V, 1 peer (Mbit/s)", 1e-6, ""),
    ("throughput_bps", "TCP U→V, {n} peers (Mbit/s)", 1e-6, ""),
    ("throughput_ratio", "  {n} peers / 1 peer", 1, "≥ 0.90"),
    ("rss_1peer_mib", "RSS, 1 peer (MiB)", 1, ""),
    ("rss_after_start_mib", "RSS, {n} peers, at READY (MiB)", 1, ""),
    ("rss_mib", "RSS, {n} peers, after TCP (MiB)", 1, "≤ 64"),
    ("startup_1peer_s", "start to READY=1, 1 peer (s)", 1, ""),
    ("startup_s", "start to READY=1, {n} peers (s)", 1, ""),
    ("getall_first_ms", "GetAll(Tunnel), first call (ms)", 1, ""),
    ("getall_median_ms", "GetAll(Tunnel), median (ms)", 1, "< 50"),
    ("add_median_ms_small", "AddPeer, 10 peers, median (ms)", 1, ""),
    ("add_median_ms", "AddPeer, {n} peers, median (ms)", 1, ""),
    ("add_ratio", "  AddPeer {n} peers / 10 peers", 1, "≤ 3"),
    ("remove_median_ms_small", "RemovePeer, 10 peers, median (ms)", 1, ""),
    ("remove_median_ms", "RemovePeer, {n} peers, median (ms)", 1, ""),
    ("remove_ratio", "  RemovePeer {n} peers / 10 peers", 1, ""),
    ("stop_s", "SIGTERM to exit, {n} peers (s)", 1, ""),
)

# A difference already, or CPU figures, whose ratios to a near-zero figure say nothing.
NOT_RATIOS = ("rtt_added_us", "idle_cpu_server_percent", "idle_cpu_client_percent",
              "rtt_cpu_server_percent", "rtt_cpu_client_percent")


def ratios(numerators: dict[str, Any], denominators: dict[str, Any],
           keys: Iterable[str] | None = None) -> dict[str, float]:
    """numerator / denominator for every numeric figure both have (of `keys` if given)."""
    keys = numerators.keys() if keys is None else keys
    return {key: numerators[key] / denominators[key] for key in keys
            if isinstance(numerators.get(key), (int, float))
            and isinstance(denominators.get(key), (int, float)) and denominators[key]
            and key not in NOT_RATIOS}


def cell(value: Any, scale: float = 1, width: int = 10) -> str:
    if isinstance(value, (int, float)):
        return f"{value * scale:{width}.3f}"
    return f"{'—' if value is None else value:>{width}}"


# The runs besides the tunnel under test, in the order bench/run makes them, with their column
# heading and its short form for the ratio columns.
COMPARED = (("plain", "plain", "plain"), ("wireguard_go", "wg-go", "wg-go"),
            ("openvpn", "openvpn", "ovpn"), ("baseline", "baseline", "base"))


def print_table(results: dict[str, Any]) -> None:
    names = ["tunnel"] + [name for name, _, _ in COMPARED if name in results]
    for name in names:
        run = results[name]
        binary = f" {run['tunlabd']}" if run.get("tunlabd") else ""
        print(f"{name}: {run.get('label', '')}{binary}"
              + (f" (tunnel MTU {run['mtu']})" if "mtu" in run else ""))
    repeat = results.get("repeat", 1)
    print(f"iperf3 {results['iperf3_duration_s']:g} s per run"
          + (f" (median of {repeat} runs)" if repeat > 1 else "")
          + f", {results['pings']} pings every "
          f"{results['ping_interval_s']:g} s, UDP payload {results['udp_payload_bytes']} B")
    direct = results["no_tunnel"]
    errors = [f"no tunnel: {key}: {value}" for key, value in direct.items()
              if key.endswith("_error")]
    if any("figures" in results[name] for name in names):
        print_path_table(results, names)
        for name in names:
            figures = results[name].get("figures", {})
            errors += [f"{name}: {key}: {value}" for key, value in figures.items()
                       if key.endswith("_error")]
            if "error" in results[name]:
                errors.append(f"{name}: {results[name]['error']}")
            if "shutdown_error" in results[name]:
                errors.append(f"{name}: shutdown: {results[name]['shutdown_error']}")
    for error in errors:
        print(f"  FAILED {error}")
    for name in names:
        if "bus_latency" in results[name]:
            print_bus_latency(name, results[name]["bus_latency"])
    if "latency" in results:
        print_latency(results["latency"], results["ping_interval_s"])
    print_latency_targets(results)
    if "handshake" in results["tunnel"]:
        print_handshakes(results["tunnel"]["handshake"], results["ping_interval_s"])
    peer_runs = [name for name in names if "peers" in results[name]]
    if peer_runs:
        print_peers_table(results, peer_runs)


def print_path_table(results: dict[str, Any], names: list[str]) -> None:
    """No tunnel, the tunnel and its ratio to no tunnel, then per compared run its figure,
    its ratio to no tunnel and tunnel / it."""
    direct = results["no_tunnel"]
    headings = {name: (heading, short) for name, heading, short in COMPARED}
    header = f"\n{'':32} {'no tunnel':>10} {'tunnel':>10} {'tunnel/no':>10}"
    for name in names[1:]:
        heading, short = headings[name]
        header += f" {heading:>10} {short + '/no':>10} {'tunnel/' + short:>12}"
    print(header)
    for key, label, scale in PATH_ROWS:
        figures = [results[name].get("figures", {}).get(key) for name in names]
        if direct.get(key) is None and all(value is None for value in figures):
            continue
        row = f"{label:32} {cell(direct.get(key), scale)}"
        for name, value in zip(names, figures):
            row += f" {cell(value, scale)} {cell(results[name].get('ratio', {}).get(key))}"
            if name != "tunnel":
                row += f" {cell(results[f'tunnel_vs_{name}'].get(key), width=12)}"
        print(row)


def print_latency(latency: dict[str, Any], ping_interval_s: float) -> None:
    if "error" in latency:
        print(f"\nlatency side by side: FAILED {latency['error']}")
        return
    print(f"\nlatency side by side: no tunnel, tunnel and OpenVPN up at once, {latency['pings']} "
          f"pings each in turns of {latency['block']}, every {ping_interval_s:g} s")
    names = ("no_tunnel", "tunnel", "openvpn")
    print(f"{'':38} " + " ".join(f"{name.replace('_', ' '):>10}" for name in names))
    for key, label in (("rtt_median_ms", "RTT median U→V (ms)"),
                       ("rtt_p90_ms", "RTT p90 U→V (ms)"),
                       ("rtt_added_us", "RTT median added (µs)")):
        print(f"{label:38} " + " ".join(cell(latency[name].get(key)) for name in names))
    for end, label in enumerate(("server", "client")):
        values = [None] + [latency[name]["cpu_percent"][end] for name in names[1:]]
        print(f"{'CPU pinged, ' + label + ' (% of a core)':38} "
              + " ".join(cell(value) for value in values))
    if latency.get("shutdown_error"):
        print(f"  FAILED shutdown: {latency['shutdown_error']}")


def print_latency_targets(results: dict[str, Any]) -> None:
    """The plain tunnel's latency and throughput targets: against OpenVPN measured side by side
    (the latency case), else in turn (the openvpn run), and against the no-tunnel path. The
    latency targets are those of the settings run: by default, against OpenVPN and within a
    CPU budget; with --busy-poll-us, against the no-tunnel path."""
    if results.get("protocol") != "plain":
        return
    latency = results.get("latency", {})
    tunnel = results["tunnel"].get("figures", {})
    openvpn = results.get("openvpn", {}).get("figures", {})
    busy_poll_us = results.get("busy_poll_us", 0)
    rows = []
    if busy_poll_us:
        # Side by side if measured so, else the rtt case's figures.
        direct_ms = (latency.get("no_tunnel", {}).get("rtt_median_ms")
                     or results["no_tunnel"].get("rtt_median_ms"))
        added_us = latency.get("tunnel", {}).get("rtt_added_us", tunnel.get("rtt_added_us"))
        if direct_ms is not None and added_us is not None:
            limit = 2e3 * direct_ms + 30
            rows.append((f"RTT median added, busy_poll_us {busy_poll_us} (µs)", added_us,
                         f"≤ {limit:.1f} (2× no tunnel + 30)"))
    elif "added_ratio" in latency:
        rows.append(("RTT median added / OpenVPN's (side by side)", latency["added_ratio"],
                     "≤ 0.6"))
        rows.append(("RTT p90 / OpenVPN's (side by side)", latency["p90_ratio"], "≤ 1"))
    elif tunnel.get("rtt_added_us") is not None and openvpn.get("rtt_added_us"):
        rows.append(("RTT median added / OpenVPN's", tunnel["rtt_added_us"]
                     / openvpn["rtt_added_us"], "≤ 0.6"))
        if tunnel.get("rtt_p90_ms") and openvpn.get("rtt_p90_ms"):
            rows.append(("RTT p90 / OpenVPN's", tunnel["rtt_p90_ms"] / openvpn["rtt_p90_ms"],
                         "≤ 1"))
    if not busy_poll_us:
        idle = latency.get("tunnel_idle_cpu_percent") or [
            tunnel.get("idle_cpu_server_percent"), tunnel.get("idle_cpu_client_percent")]
        pinged = latency.get("tunnel", {}).get("cpu_percent") or [
            tunnel.get("rtt_cpu_server_percent"), tunnel.get("rtt_cpu_client_percent")]
        for end, label in enumerate(("server", "client")):
            if idle[end] is not None:
                rows.append((f"CPU idle, {label} (% of a core)", idle[end], "0"))
        for end, label in enumerate(("server", "client")):
            if pinged[end] is not None:
                rows.append((f"CPU pinged, {label} (% of a core)", pinged[end], "≤ 5"))
    ratio = results["tunnel"].get("ratio", {})
    for key, label, target in (("throughput_bps", "TCP 1 flow / no tunnel", "≥ 0.55"),
                               ("throughput_4flows_bps", "TCP 4 flows / no tunnel", "≥ 0.45")):
        if ratio.get(key) is not None:
            rows.append((label, ratio[key], target))
    if not rows:
        return
    print(f"\n{'targets (plain protocol)':44} {'figure':>10}  target")
    for label, value, target in rows:
        print(f"{label:44} {cell(value)}  {target}")


def print_handshakes(handshake: dict[str, Any], ping_interval_s: float) -> None:
    if "error" in handshake:
        print(f"\nhandshake load: FAILED {handshake['error']}")
        return
    sender = handshake.get("sender", {})
    print(f"\nhandshake load: {handshake['rate']:g} initiations/s from {handshake['peers']} "
          f"peers (bench/handshake_flood in U2) while U pings V every "
          f"{ping_interval_s:g} s")
    print(f"{'':32} {'figure':>10}  {'target':>7}")
    rows = (
        ("initiations sent", sender.get("initiations"), ""),
        ("responses received", sender.get("responses"), ""),
        ("cookie replies received", sender.get("cookie_replies"), ""),
        ("answered per second", handshake.get("answered_per_s"), ""),
        ("RTT median idle (ms)", handshake.get("idle", {}).get("rtt_median_ms"), ""),
        ("RTT median under load (ms)", handshake.get("loaded", {}).get("rtt_median_ms"), ""),
        ("  under load / idle", handshake.get("rtt_ratio"), "≤ 2"),
    )
    for label, value, target in rows:
        print(f"{label:32} {cell(value)}  {target:>7}")
    if handshake.get("server"):
        print("server counters moved: " + ", ".join(f"{key} +{value}" for key, value
                                                    in sorted(handshake["server"].items())))


def print_bus_latency(name: str, latency: dict[str, Any] | str) -> None:
    if isinstance(latency, str):
        print(f"\n{name}: D-Bus latency: {latency}")
        return
    print(f"\n{name}: D-Bus Get(Counters) round trip (ms), {latency['server']['calls']} calls "
          f"each; load: iperf3 through the tunnel at "
          f"{latency['server']['load_throughput_bps'] / 1e6:.0f} Mbit/s")
    print(f"{'':32} {'p50':>8} {'p99':>8} {'max':>8}")
    for daemon, figures in latency.items():
        for state in ("idle", "under_load"):
            row = figures[state]
            label = f"{daemon}, {state.replace('_', ' ')}"
            print(f"{label:32} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} {row['max_ms']:8.3f}")


def print_peers_table(results: dict[str, Any], names: list[str]) -> None:
    peers = {name: results[name].get("peers", {}) for name in names}
    count = next(iter(peers.values())).get("peer_count", 0) + 1  # U is a peer as well
    print(f"\nserver with {count - 1} configured peers + U (plain protocol; GetAll: "
          f"{next(iter(peers.values())).get('getall_calls', '?')} calls)")
    header = f"{'':38} " + " ".join(f"{name:>10}" for name in names)
    if "baseline" in names:
        header += f" {'tunnel/base':>11}"
    print(header + f"  {'target':>7}")
    for key, label, scale, target in PEER_ROWS:
        values = [peers[name].get(key) for name in names]
        if all(value is None for value in values):
            continue
        row = f"{label.format(n=count):38} " + " ".join(cell(value, scale) for value in values)
        if "baseline" in names:
            row += f" {cell(ratios(peers['tunnel'], peers['baseline'], [key]).get(key), width=11)}"
        print(row + f"  {target:>7}")
    for name in names:
        for key, value in peers[name].items():
            if key.endswith("error"):
                print(f"  FAILED {name}: {key}: {value}")
