"""Who may do what (issue 3): reading is open to every local user; every method that changes
something is for root and the group `tunlab` only.

The private bus is shaped like Debian's system bus (tests/bus/system-bus.conf.in):
- with the policy the package ships (systemd/org.tunlab1.conf), the BUS refuses an
  unprivileged caller's mutating calls: org.freedesktop.DBus.Error.AccessDenied;
- with a permissive policy (everyone may send anything to org.tunlab1), the call reaches
  tunlabd, and its OWN credential check refuses it: org.tunlab1.Error.PermissionDenied.
Either way the refused call changes nothing. The unprivileged caller is nobody (uid/gid 65534,
no supplementary groups, via setpriv); a member of group `tunlab` may change things.
"""

import fcntl
import grp
import json
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from harness.dbus_client import MANAGER, MANAGER_PATH, PEER, PROPERTIES, TUNNEL, Client
from harness.process import NOBODY, as_user, harness_program, run
from harness.seed import PRIVATE_NETWORK, U_TUNNEL_ADDRESS, V_ADDRESS

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

TUNNEL_PATH = "/org/tunlab1/tunnel/lab"
REFUSAL = {
    "shipped": "org.freedesktop.DBus.Error.AccessDenied",
    "permissive": "org.tunlab1.Error.PermissionDenied",
}
# The only methods of org.tunlab1.* that change nothing.
READING_METHODS = {"GetTunnel"}


def calls_as(bus, calls, groups=()):
    """Runs `calls` (see dbus_client.main) as nobody with `groups`; one outcome per call."""
    argv = as_user(harness_program("dbus_client", bus.address), groups=groups)
    result = subprocess.run(argv, input=json.dumps(calls), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)
    assert len(outcomes) == len(calls)
    return outcomes


def exposed_methods(client, paths):
    """(interface, method) of every org.tunlab1 method the daemon exposes on `paths`."""
    methods = set()
    for path in paths:
        xml = client.call(path, "org.freedesktop.DBus.Introspectable", "Introspect")
        for interface in ElementTree.fromstring(xml).iter("interface"):
            if interface.get("name").startswith("org.tunlab1."):
                methods |= {(interface.get("name"), method.get("name"))
                            for method in interface.iter("method")}
    return methods


def mutating_calls(peer_path):
    """One call of every method that changes something, each of which root could make."""
    def call(path, interface, method, signature="", *args):
        return {"path": path, "interface": interface, "method": method, "signature": signature,
                "args": list(args)}
    return [
        call(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "t2", {}),
        call(MANAGER_PATH, MANAGER, "DeleteTunnel", "s", "lab"),
        call(TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", "10.9.0.12:9090",
             {"allowed_ips": ["as", ["10.96.0.0/16"]]}),
        call(TUNNEL_PATH, TUNNEL, "RemovePeer", "o", peer_path),
        call(TUNNEL_PATH, TUNNEL, "AddAddress", "s", "10.99.0.1/24"),
        call(TUNNEL_PATH, TUNNEL, "RemoveAddress", "s", f"{U_TUNNEL_ADDRESS}/24"),
        call(TUNNEL_PATH, TUNNEL, "AddRoute", "sa{sv}", "10.98.0.0/16", {}),
        call(TUNNEL_PATH, TUNNEL, "RemoveRoute", "s", PRIVATE_NETWORK),
        call(TUNNEL_PATH, TUNNEL, "ResetCounters"),
        call(peer_path, PEER, "SetEndpoint", "s", "10.9.0.13:9090"),
        call(peer_path, PEER, "SetAllowedIPs", "as", ["10.97.0.0/16"]),
    ]


def reading_calls(peer_path):
    def call(path, interface, method, signature="", *args):
        return {"path": path, "interface": interface, "method": method, "signature": signature,
                "args": list(args)}
    return [
        call(MANAGER_PATH, MANAGER, "GetTunnel", "s", "lab"),
        call(MANAGER_PATH, PROPERTIES, "GetAll", "s", MANAGER),
        call(TUNNEL_PATH, PROPERTIES, "Get", "ss", TUNNEL, "Counters"),
        call(TUNNEL_PATH, PROPERTIES, "GetAll", "s", TUNNEL),
        call(peer_path, PROPERTIES, "GetAll", "s", PEER),
        call(TUNNEL_PATH, "org.freedesktop.DBus.Introspectable", "Introspect"),
    ]


def whole_state(lab, daemon, client):
    """Everything a change could touch: the API's objects and properties (counters
    included), the persistent state files, and the kernel's view of U."""
    counters = {path: client.get(path, interface, "Counters")
                for path, interface in ((TUNNEL_PATH, TUNNEL),
                                        *((p, PEER) for p in client.get(TUNNEL_PATH, TUNNEL,
                                                                        "Peers")))}
    state_files = {path.name: path.read_bytes()  # the journals are binary
                   for path in sorted((daemon.state_dir / "tunnels").glob("*"))}
    kernel = {what: lab.ip("u", "-o", *what.split()).stdout
              for what in ("link", "addr", "route")}
    return client.snapshot(), counters, state_files, kernel


@pytest.fixture
def policy_lab(lab, request):
    """tunlabd in U with the lab's client tunnel, on a bus with policy request.param, and
    some traffic in its counters (so that a reset would show)."""
    daemon = lab.start_daemon("u", bus_policy=request.param)
    daemon.create_client_tunnel(U_TUNNEL_ADDRESS)
    # No server runs: the pings leave through the tunnel and are lost, which counts them.
    lab.ping_unanswered("u", V_ADDRESS, 2)
    daemon.wait_for_counters(lambda c: c["tx_packets"] == 2, "two packets sent")
    client = Client(daemon.bus.address)
    yield daemon, client, request.param
    client.close()


@pytest.mark.parametrize("policy_lab", ["shipped", "permissive"], indirect=True)
def test_nobody_reads_everything_but_changes_nothing(lab, policy_lab):
    daemon, client, policy = policy_lab
    (peer_path,) = client.get(TUNNEL_PATH, TUNNEL, "Peers")
    calls = mutating_calls(peer_path)
    # The list covers every method the daemon exposes, so a new one cannot slip by.
    exposed = exposed_methods(client, [MANAGER_PATH, TUNNEL_PATH, peer_path])
    assert {(c["interface"], c["method"]) for c in calls} == \
        {m for m in exposed if m[1] not in READING_METHODS}

    before = whole_state(lab, daemon, client)

    # Reading works, and shows what root sees.
    reads = calls_as(daemon.bus, reading_calls(peer_path))
    assert all("reply" in outcome for outcome in reads), reads
    assert reads[0]["reply"] == TUNNEL_PATH
    assert reads[2]["reply"] == before[1][TUNNEL_PATH]
    nobody_status = daemon.tunlabctl("--json", "status", user=True)
    assert nobody_status.returncode == 0, nobody_status.stderr
    assert json.loads(nobody_status.stdout) == daemon.ctl_json("status")
    nobody_stats = daemon.tunlabctl("--json", "stats", user=True)
    assert nobody_stats.returncode == 0, nobody_stats.stderr
    assert json.loads(nobody_stats.stdout)["counters"] == before[1][TUNNEL_PATH]

    # Every change is refused, with the policy's error name.
    outcomes = calls_as(daemon.bus, calls)
    for call, outcome in zip(calls, outcomes):
        assert outcome.get("error") == REFUSAL[policy], (call["method"], outcome)
    for args in (["create", "t2"], ["delete", "lab"], ["add-peer", "10.9.0.12:9090"],
                 ["remove-peer", "1"], ["add-address", "10.99.0.1/24"],
                 ["remove-address", f"{U_TUNNEL_ADDRESS}/24"], ["add-route", "10.98.0.0/16"],
                 ["del-route", PRIVATE_NETWORK], ["reset-counters"]):
        result = daemon.tunlabctl(*args, user=True)
        assert result.returncode == 1, (args, result)
        assert result.stderr.startswith(f"tunlabctl: {REFUSAL[policy]}: "), \
            (args, result.stderr)

    # ... and nothing changed: not the objects, not the counters, not the files, not the kernel.
    assert whole_state(lab, daemon, client) == before


# ── group tunlab ────────────────────────────────────────────────────────────────────────


# Test runs on one machine may overlap (CI, several developers): the group is machine-wide, so
# whoever uses it holds this lock, and only the holder that created it removes it.
GROUP_LOCK = Path("/run/lock/tunlab-tests-group-tunlab.lock")


@pytest.fixture
def tunlab_group():
    """The group `tunlab`, created for the test if this machine has none (and then removed).
    Both dbus-daemon (reading its policy) and tunlabd (Authorizer) look the group up when
    they start, so this fixture must come before the lab's daemons."""
    GROUP_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(GROUP_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            gid = grp.getgrnam("tunlab").gr_gid
            created = False
        except KeyError:
            run(["groupadd", "tunlab"])
            gid = grp.getgrnam("tunlab").gr_gid
            created = True
        try:
            yield gid
        finally:
            if created:
                run(["groupdel", "tunlab"], check=False)


@pytest.mark.parametrize("policy", ["shipped", "permissive"])
def test_a_member_of_group_tunlab_may_change_things(tunlab_group, lab, policy):
    daemon = lab.start_daemon("u", bus_policy=policy)
    daemon.create_client_tunnel(U_TUNNEL_ADDRESS)
    assert tunlab_group != NOBODY

    # nobody alone: refused ...
    result = daemon.tunlabctl("add-route", "10.98.0.0/16", user=True)
    assert result.returncode == 1 and REFUSAL[policy] in result.stderr, result
    # ... nobody with tunlab as a supplementary group: allowed, all the way to the kernel.
    member = {"groups": (tunlab_group,)}
    result = daemon.tunlabctl("add-route", "10.98.0.0/16", **member)
    assert result.returncode == 0, result.stderr
    assert lab.route_device("u", "10.98.0.0/16") == daemon.bus_status()["lab"]["interface"]
    result = daemon.tunlabctl("create", "t2", **member)
    assert result.returncode == 0, result.stderr
    outcomes = calls_as(daemon.bus, [
        {"path": TUNNEL_PATH, "interface": TUNNEL, "method": "RemoveRoute", "signature": "s",
         "args": ["10.98.0.0/16"]},
        {"path": MANAGER_PATH, "interface": MANAGER, "method": "DeleteTunnel", "signature": "s",
         "args": ["t2"]},
    ], groups=(tunlab_group,))
    assert outcomes == [{"reply": None}, {"reply": None}], outcomes
    assert daemon.bus_status()["lab"]["routes"] == [PRIVATE_NETWORK]
    assert set(daemon.bus_status()) == {"lab"}
