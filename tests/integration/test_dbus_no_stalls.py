"""One loop, no stalls (issue 3): the bus is served by tunlabd's control loop, never by the
packet path. (a) A burst of D-Bus calls from several client processes does not cost a single
packet; (b) full-rate traffic through the tunnel does not delay a D-Bus reply by more than a
few milliseconds. The latency figures are printed (pytest -s, or -rA shows them); bench/run
measures the same with a release build."""

import json
import subprocess

import pytest

from harness.counters import RECEIVE_DROP_REASONS, SEND_DROP_REASONS, counter_deltas
from harness.process import harness_program, wait_until
from harness.seed import PRIVATE_NETWORK, U_TUNNEL_ADDRESS, V_ADDRESS
from harness.traffic import PING_PACKET_BYTES

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

TUNNEL_PATH = "/org/tunlab1/tunnel/lab"

PINGS = 300                    # one every 10 ms: 3 s
LOADERS_PER_DAEMON = 2
MINIMUM_GETS = 2000            # from all loaders together, while the pings run
ROUTES_PER_LOADER = 5          # added and removed again, over and over

# Honest upper bounds for a loaded 2-core machine and a debug build.
P50_LIMIT_MS = 5.0
P99_LIMIT_MS = 50.0


def lab_over_bus(lab):
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    server.create_server_tunnel()
    client.create_client_tunnel(U_TUNNEL_ADDRESS)
    warm_up = lab.ping("u", V_ADDRESS, 1)
    assert warm_up.received == 1, warm_up.output
    return server, client


def start_loader(lab, daemon, number):
    routes = [f"10.{200 + number}.{i}.0/24" for i in range(ROUTES_PER_LOADER)]
    proc = lab.spawn("u", harness_program("dbus_client", daemon.bus.address, "--load",
                                          TUNNEL_PATH, *routes),
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_burst_of_bus_calls_loses_no_packets(lab):
    server, client = lab_over_bus(lab)
    server_before = server.wait_for_counters(lambda c: c["tx_packets"] == 1, "the warm-up")
    client_before = client.wait_for_counters(lambda c: c["rx_packets"] == 1, "the warm-up")

    loaders = [start_loader(lab, daemon, number)
               for number, daemon in enumerate([server, client] * LOADERS_PER_DAEMON)]
    for loader in loaders:  # all at once, then the pings: the calls span all of them
        loader.stdin.write("go\n")
        loader.stdin.flush()
    result = lab.ping("u", V_ADDRESS, PINGS, interval=0.01)
    reports = []
    for loader in loaders:
        output, _ = loader.communicate("stop\n", timeout=60)
        assert loader.returncode == 0, output
        reports.append(json.loads(output))
    print(f"\n{sum(r['gets'] for r in reports)} Get(Counters) and "
          f"{sum(r['route_changes'] for r in reports)} route changes from {len(loaders)} "
          f"processes in {max(r['seconds'] for r in reports):.2f} s (slowest Get "
          f"{max(r['slowest_get_s'] for r in reports) * 1e3:.1f} ms) during "
          f"{PINGS} pings: {result.received} replies")

    assert sum(r["gets"] for r in reports) >= MINIMUM_GETS, reports
    assert all(r["route_changes"] >= 2 * ROUTES_PER_LOADER for r in reports), reports
    assert (result.transmitted, result.received) == (PINGS, PINGS), result.output
    # Every ping and reply crossed each daemon exactly once; nothing dropped anywhere.
    server_after = server.wait_for_counters(
        lambda c: c["tx_packets"] >= server_before["tx_packets"] + PINGS, "server tx")
    client_after = client.wait_for_counters(
        lambda c: c["rx_packets"] >= client_before["rx_packets"] + PINGS, "client rx")
    for before, after in ((server_before, server_after), (client_before, client_after)):
        delta = counter_deltas(before, after)
        assert delta["rx_packets"] == delta["tx_packets"] == PINGS, delta
        assert delta["rx_bytes"] == delta["tx_bytes"] == PINGS * PING_PACKET_BYTES, delta
        for reason in RECEIVE_DROP_REASONS + SEND_DROP_REASONS:
            assert delta[f"drop_{reason}"] == 0, (reason, delta)
    # The route churn left nothing behind, in the API or in the kernel.
    assert client.bus_status()["lab"]["routes"] == [PRIVATE_NETWORK]
    assert server.bus_status()["lab"]["routes"] == []
    for role in ("u", "s"):
        routes = lab.ip(role, "route").stdout.splitlines()
        assert [route for route in routes if route.startswith("10.20")] == [], (role, routes)


def test_full_rate_traffic_does_not_delay_bus_replies(lab):
    server, client = lab_over_bus(lab)
    latencies = lab.bus_latency([server, client], TUNNEL_PATH, calls=200, interval=0.01)
    for name, latency in zip(("server", "client"), latencies):
        print(f"\n{name}: {latency.report()}")
        figures = latency.summary()["under_load"]
        assert latency.throughput_bps > 0
        assert figures["p50_ms"] < P50_LIMIT_MS, latency.report()
        assert figures["p99_ms"] < P99_LIMIT_MS, latency.report()
    # Both still carry traffic afterwards.
    wait_until(lambda: lab.ping("u", V_ADDRESS, 3).received == 3, 10, "pings after the load")
