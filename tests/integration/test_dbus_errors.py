"""Every org.tunlab1.Error the API documents, provoked on purpose and checked by exact name,
and tunlabctl's exit codes (0 success, 1 refused, 2 usage, 3 daemon not reachable).

Error names are read two ways: from tunlabctl, which prints `tunlabctl: <error name>:
<message>` and exits 1 (for everything tunlabctl can express), and from python3-dbus
(dbus_client.py) for what tunlabctl cannot send: wrong variant types, unknown option keys,
peer paths that were never handed out, the `interface` option. busctl is not used here: it
prints only the message of an error, not its name. PermissionDenied, which needs a permissive
bus and another user, is in test_dbus_policy.py.
"""

import re
import socket
from pathlib import Path

import pytest

from harness.daemon import run_tunlabctl
from harness.dbus_client import MANAGER, MANAGER_PATH, TUNNEL, Client, options
from harness.seed import PRIVATE_NETWORK, SERVER_ADDRESS, U_TUNNEL_ADDRESS

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

INVALID = "org.tunlab1.Error.InvalidArgument"
NOT_FOUND = "org.tunlab1.Error.NotFound"
EXISTS = "org.tunlab1.Error.AlreadyExists"
FAILED = "org.tunlab1.Error.Failed"

TUNNEL_PATH = "/org/tunlab1/tunnel/lab"
ENDPOINT = f"{SERVER_ADDRESS}:9090"


def refused(daemon, *args):
    """(error name, message) that tunlabctl printed for a refused command (exit code 1)."""
    result = daemon.tunlabctl(*args)
    assert result.returncode == 1, \
        f"tunlabctl {' '.join(args)}: exit {result.returncode}, expected 1\n{result.stderr}"
    match = re.fullmatch(r"tunlabctl: (org\.[\w.]+): (.*)\n", result.stderr, re.S)
    assert match, f"tunlabctl {' '.join(args)}: unexpected stderr {result.stderr!r}"
    assert result.stdout == "", result.stdout
    return match.group(1), match.group(2)


def links(lab, role):
    return sorted(re.findall(r"^\d+: ([^:@]+)", lab.ip(role, "-o", "link").stdout, re.M))


@pytest.fixture
def daemon(lab):
    """tunlabd in U with one tunnel "lab" (address, peer, route), made with tunlabctl."""
    the_daemon = lab.start_daemon("u")
    the_daemon.create_client_tunnel(U_TUNNEL_ADDRESS, listen_port=40001)
    return the_daemon


def test_every_error_name_is_exact_and_refusals_change_nothing(lab, daemon):
    client = Client(daemon.bus.address)
    before = client.snapshot()
    devices_before = links(lab, "u")
    provoked = set()

    def expect(name, got, mentions):
        error_name, message = got
        assert error_name == name, (got, name)
        # The message names the argument that is wrong (docs/dbus-api.md).
        assert mentions in message, (got, mentions)
        provoked.add(error_name)

    # InvalidArgument: malformed CIDRs, endpoints, names; unknown keys; wrong variant types.
    expect(INVALID, refused(daemon, "create", "t2", "--address", "192.168.53.300/24"),
           "addresses")
    expect(INVALID, refused(daemon, "add-route", "10.1.0.0/33"), "destination")
    expect(INVALID, refused(daemon, "add-address", "not-an-address/24"), "cidr")
    expect(INVALID, refused(daemon, "del-route", "300.1.0.0/16"), "destination")
    expect(INVALID, refused(daemon, "add-peer", SERVER_ADDRESS), "endpoint")  # no port
    expect(INVALID, refused(daemon, "add-peer", "10.9.0.11:99999"), "endpoint")
    expect(INVALID, refused(daemon, "add-peer", "10.9.0.12:9090", "--allowed-ips", "10.0.0.0/99"),
           "allowed_ips")
    expect(INVALID, refused(daemon, "create", "bad name!"), "name")
    expect(INVALID, refused(daemon, "create", "a" * 16), "name")
    expect(INVALID, client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2",
                                 options({"bogus": ("b", True)})), "bogus")
    # What the caller sent comes back quoted, its control characters escaped (one line).
    expect(INVALID, client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2",
                                 options({"bogus\nkey": ("b", True)})), "bogus\\x0akey")
    expect(INVALID, client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2",
                                 options({"listen_port": ("s", "9090")})), "listen_port")
    expect(INVALID, client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2",
                                 options({"listen_port": ("u", 70000)})), "listen_port")
    expect(INVALID, client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2",
                                 options({"addresses": ("s", "10.1.0.1/24")})), "addresses")
    expect(INVALID, client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2",
                                 options({"mode": ("s", "tup")})), "mode")
    expect(INVALID, client.error(TUNNEL_PATH, TUNNEL, "AddRoute", "sa{sv}", "10.2.0.0/16",
                                 options({"metric": ("u", 5)})), "metric")
    expect(INVALID, client.error(TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", "10.9.0.12:9090",
                                 options({"keepalive": ("s", "25")})), "keepalive")
    expect(INVALID, client.error(TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", "10.9.0.12:9090",
                                 options({"persistent_keepalive": ("q", 25)})),
           "persistent_keepalive")
    expect(INVALID, client.error(TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
                                 "/org/tunlab1/tunnel/other/peer/1"), "peer")

    # NotFound: a tunnel, route, address, peer that does not exist.
    expect(NOT_FOUND, refused(daemon, "--tunnel", "missing", "stats"), "missing")
    expect(NOT_FOUND, client.error(MANAGER_PATH, MANAGER, "GetTunnel", "s", "missing"), "missing")
    expect(NOT_FOUND, client.error(MANAGER_PATH, MANAGER, "GetTunnel", "s", "a\nb\tc"),
           "named a\\x0ab\\x09c")
    expect(NOT_FOUND, refused(daemon, "delete", "missing"), "missing")
    expect(NOT_FOUND, refused(daemon, "del-route", "10.1.0.0/16"), "10.1.0.0/16")
    expect(NOT_FOUND, refused(daemon, "remove-address", "192.168.99.1/24"), "192.168.99.1/24")
    expect(NOT_FOUND, client.error(TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
                                   f"{TUNNEL_PATH}/peer/999"), "999")

    # AlreadyExists: the same tunnel, route, address, peer endpoint or prefix again.
    expect(EXISTS, refused(daemon, "create", "lab"), "lab")
    expect(EXISTS, refused(daemon, "add-route", PRIVATE_NETWORK), PRIVATE_NETWORK)
    expect(EXISTS, refused(daemon, "add-address", f"{U_TUNNEL_ADDRESS}/24"), U_TUNNEL_ADDRESS)
    expect(EXISTS, refused(daemon, "add-peer", ENDPOINT), ENDPOINT)
    expect(EXISTS, refused(daemon, "add-peer", "10.9.0.12:9090", "--allowed-ips",
                           PRIVATE_NETWORK), PRIVATE_NETWORK)

    # Failed: the system refuses, and the message carries its error text.
    # Another program's socket holds the port in U's namespace (tunlabd binds [::], dual
    # stack, so an IPv4 socket on the same port is in the way).
    squatter = lab.socket("u", socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("0.0.0.0", 40002))
    expect(FAILED, refused(daemon, "create", "t2", "--listen-port", "40002"),
           "Address already in use")
    # The kernel name of an existing device that is not a TUN device.
    name, message = client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2",
                                 options({"interface": ("s", "lo")}))
    expect(FAILED, (name, message), "lo")
    # Taken by the listen socket of "lab" itself.
    expect(FAILED, refused(daemon, "create", "t2", "--listen-port", "40001"),
           "Address already in use")

    assert provoked == {INVALID, NOT_FOUND, EXISTS, FAILED}
    # Not one of the refused calls changed anything: objects, properties, devices.
    assert client.snapshot() == before
    assert links(lab, "u") == devices_before
    assert not Path(daemon.state_dir, "tunnels", "t2.json").exists()
    client.close()


def test_exit_codes(lab):
    daemon = lab.start_daemon("u")

    # 0: success.
    assert daemon.tunlabctl("version").returncode == 0
    assert daemon.tunlabctl("status").returncode == 0
    assert daemon.tunlabctl("create", "one").returncode == 0

    # 1: the daemon refused (one example; every name is in the test above).
    result = daemon.tunlabctl("create", "one")
    assert result.returncode == 1, result
    assert result.stderr.startswith(f"tunlabctl: {EXISTS}: "), result.stderr

    # 2: usage errors, found by tunlabctl itself before or without a call that changes anything.
    for args in (["--bogus", "status"], ["frobnicate"], [], ["create"],
                 ["create", "x", "--mode", "tup"], ["create", "x", "--listen-port", "port"],
                 ["add-peer"]):
        result = daemon.tunlabctl(*args)
        assert result.returncode == 2, (args, result)
    # Several tunnels and no --tunnel: tunlabctl cannot guess, and says how to choose.
    assert daemon.tunlabctl("create", "two").returncode == 0
    result = daemon.tunlabctl("add-peer", ENDPOINT)
    assert result.returncode == 2, result
    assert "--tunnel" in result.stderr, result.stderr
    # ... and nothing was added anywhere.
    assert all(t["peers"] == [] for t in daemon.bus_status().values())
    # With --tunnel it works.
    assert daemon.tunlabctl("--tunnel", "two", "add-peer", ENDPOINT).returncode == 0
    # No tunnel at all: usage too (nothing to act on yet).
    assert daemon.tunlabctl("delete", "one").returncode == 0
    assert daemon.tunlabctl("delete", "two").returncode == 0
    result = daemon.tunlabctl("add-route", "10.1.0.0/16")
    assert result.returncode == 2, result

    # 3: the daemon is not reachable. Its bus runs but nobody owns org.tunlab1 ...
    daemon.stop()
    result = daemon.tunlabctl("status")
    assert result.returncode == 3, result
    assert "systemctl start tunlabd" in result.stderr, result.stderr
    # ... on a bus that never had a tunlabd ...
    bare_bus = lab.start_bus(lab.workdir)
    result = run_tunlabctl(bare_bus, "version")
    assert result.returncode == 3, result
    # ... and with no bus at all.
    bare_bus.stop()
    result = run_tunlabctl(bare_bus, "status")
    assert result.returncode == 3, result
