"""A tunnel on a device that existed before it (`--interface` naming a persistent TUN device,
made with `ip tuntap add`): tunlabd adds its addresses and routes and sets MTU and link state;
on delete, and when creating fails half-way, it takes off exactly what it added and puts MTU
and link state back. What was there before it stays.
"""

from __future__ import annotations

import signal

import pytest

from harness.dbus_client import MANAGER, MANAGER_PATH, Client

pytestmark = pytest.mark.usefixtures("tunlabctl")

DEVICE = "tunx"
OWN_ADDRESS = "192.168.77.1/24"     # the admin's, on the device before tunlabd
OWN_ROUTE = "10.77.0.0/16"


def device_state(lab) -> dict:
    link = lab.ip("s", "-o", "link", "show", DEVICE).stdout
    addresses = sorted(line.split()[3] for line in
                       lab.ip("s", "-o", "-4", "addr", "show", "dev", DEVICE).stdout.splitlines())
    routes = sorted(line.split()[0] for line in
                    lab.ip("s", "route", "show", "dev", DEVICE).stdout.splitlines()
                    if "proto kernel" not in line)
    mtu = int(link.split(" mtu ")[1].split()[0])
    up = ",UP" in link.split(">")[0] or "<UP" in link
    return {"addresses": addresses, "routes": routes, "mtu": mtu, "up": up}


def adopted_device(lab, up: bool) -> dict:
    """The admin's device: an address of its own, and (up) a route of its own."""
    lab.ip("s", "tuntap", "add", "dev", DEVICE, "mode", "tun")
    lab.ip("s", "addr", "add", OWN_ADDRESS, "dev", DEVICE)
    if up:
        lab.ip("s", "link", "set", DEVICE, "up")
        lab.ip("s", "route", "add", OWN_ROUTE, "dev", DEVICE)
    state = device_state(lab)
    assert state == {"addresses": [OWN_ADDRESS], "routes": [OWN_ROUTE] if up else [],
                     "mtu": 1500, "up": up}, state
    return state


@pytest.mark.parametrize("up", [False, True], ids=["down", "up"])
def test_a_failed_create_leaves_what_was_there(lab, up):
    server = lab.start_daemon("s")
    before = adopted_device(lab, up)
    # The second address is already on the device: the create fails there, after tunlabd
    # has set the MTU and added the first one.
    result = server.tunlabctl("create", "t1", "--interface", DEVICE, "--address",
                              "192.168.88.1/24", "--address", OWN_ADDRESS,
                              "--listen-port", "9091")
    assert result.returncode != 0
    assert "org.tunlab1.Error.Failed" in result.stderr and "File exists" in result.stderr, \
        result.stderr
    assert device_state(lab) == before
    with Client(server.bus.address) as client:
        assert client.get(MANAGER_PATH, MANAGER, "Tunnels") == []


@pytest.mark.parametrize("up", [False, True], ids=["down", "up"])
def test_delete_takes_off_what_tunlabd_added_and_nothing_else(lab, up):
    server = lab.start_daemon("s")
    before = adopted_device(lab, up)
    server.ctl("create", "t2", "--interface", DEVICE, "--address", "192.168.88.1/24",
               "--mtu", "1400", "--listen-port", "9092")
    server.ctl("add-route", "10.88.0.0/16", "--tunnel", "t2")
    server.ctl("add-address", "192.168.89.1/24", "--tunnel", "t2")
    during = device_state(lab)
    assert during == {"addresses": sorted([OWN_ADDRESS, "192.168.88.1/24", "192.168.89.1/24"]),
                      "routes": sorted(before["routes"] + ["10.88.0.0/16"]), "mtu": 1400,
                      "up": True}, during
    server.ctl("delete", "t2")
    assert device_state(lab) == before
    # And when tunlabd stops with the tunnel up: the same (Daemon.stop() would insist that
    # the device is gone, as it is for devices tunlabd creates).
    server.ctl("create", "t3", "--interface", DEVICE, "--address", "192.168.88.1/24",
               "--mtu", "1300", "--listen-port", "9093")
    server.signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0, server.describe()
    assert device_state(lab) == before
