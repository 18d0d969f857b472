"""What is created over D-Bus persists: tunlabd saves every change to its --state-dir when the
call returns and restores it on start. Both daemons start without configuration files; the
tunnel, peer, address and route made with tunlabctl survive a clean restart (SIGTERM) and a
kill -9, and U reaches V again afterwards."""

import pytest

from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, TUNNEL_NETWORK,
                          U_TUNNEL_ADDRESS, V_ADDRESS)

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

EXTRA_ROUTE = "10.98.0.0/16"


def configured(daemon):
    """What the user configured, as tunlabctl shows it: everything but counters, kernel
    interface names, timestamps and learned peers."""
    result = {}
    for name, tunnel in daemon.bus_status().items():
        result[name] = {key: tunnel[key] for key in ("mode", "protocol", "listen_address",
                                                     "listen_port", "mtu", "addresses",
                                                     "routes", "state")}
        result[name]["peers"] = sorted(
            (peer["endpoint"], tuple(peer["allowed_ips"]), peer["keepalive"])
            for peer in tunnel["peers"] if not peer["learned"])
    return result


def ping_passes(lab, count=5):
    result = lab.ping("u", V_ADDRESS, count, 0.02)
    assert (result.transmitted, result.received) == (count, count), result.output


def assert_restored(lab, daemon, expected):
    assert list(daemon.config_dir.iterdir()) == [], "still no configuration files"
    assert configured(daemon) == expected
    # Restored into the kernel too, not only into the daemon's tables.
    interface = daemon.bus_status()["lab"]["interface"]
    for route in expected["lab"]["routes"]:
        assert lab.route_device(daemon_role(lab, daemon), route) == interface, route
    for address in expected["lab"]["addresses"]:
        assert address in lab.ip(daemon_role(lab, daemon), "-o", "addr", "show", "dev",
                                 interface).stdout


def daemon_role(lab, daemon):
    (role,) = [role for role, ns in lab.ns.items() if ns == daemon.ns]
    return role


def test_bus_made_state_survives_sigterm_and_kill_9(lab):
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    server.create_server_tunnel()
    # The client's tunnel piece by piece: each call is its own saved change.
    client.ctl("create", "lab", "--listen-port", "40001", "--mtu", "1400")
    client.ctl("add-address", f"{U_TUNNEL_ADDRESS}/24")
    client.ctl("add-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}", "--allowed-ips",
               f"{PRIVATE_NETWORK},{TUNNEL_NETWORK}", "--keepalive", "25")
    client.ctl("add-route", PRIVATE_NETWORK)
    ping_passes(lab)
    expected_client, expected_server = configured(client), configured(server)
    assert expected_client["lab"]["peers"] == [
        (f"{SERVER_ADDRESS}:{SERVER_PORT}", (PRIVATE_NETWORK, TUNNEL_NETWORK), 25)]
    assert expected_client["lab"]["mtu"] == 1400

    # Clean restart of both.
    client.stop()
    server.stop()
    server.start()
    client.start()
    assert_restored(lab, client, expected_client)
    assert_restored(lab, server, expected_server)
    ping_passes(lab)

    # A change, and at once kill -9: no shutdown code runs, so the change must have been on
    # disk when the call returned.
    client.ctl("add-route", EXTRA_ROUTE)
    client.crash()
    server.crash()
    server.start()
    client.start()
    expected_client["lab"]["routes"] = [PRIVATE_NETWORK, EXTRA_ROUTE]
    assert_restored(lab, client, expected_client)
    assert_restored(lab, server, expected_server)
    ping_passes(lab)

    # Removals persist as well.
    client.ctl("del-route", EXTRA_ROUTE)
    client.ctl("remove-peer", f"{SERVER_ADDRESS}:{SERVER_PORT}")
    client.crash()
    client.start()
    restored = configured(client)["lab"]
    assert restored["routes"] == [PRIVATE_NETWORK]
    assert restored["peers"] == []
    lab.ping_unanswered("u", V_ADDRESS, 2)
