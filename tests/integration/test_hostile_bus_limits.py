"""The largest calls anyone can send: a single unprivileged call must not take tunlabd down.

It did: GetTunnel("\\x01" * 9000000) from nobody got an error reply that quoted the name with
every byte escaped (36 MB), over the bus's 32 MiB message limit; dbus-daemon dropped tunlabd
and tunlabd exited, taking its tunnels with it. Here every method of every interface of every
object (read from the introspection data) is called as nobody with arguments as large as the
bus lets through (bus_sweep.py), under a permissive policy so that they all reach tunlabd (its own check
refuses the changes, before it reads their arguments). After each call tunlabd still owns its
name with the same connection, the tunnel still carries pings, the refusal is short, and
memory is back where it was.

And when the bus does go away (dbus-daemon restarted), the tunnels keep carrying traffic and
tunlabd comes back on the new bus by itself.
"""

from __future__ import annotations

import json
import select
import subprocess
from pathlib import Path

import pytest

from harness.bus_sweep import introspected_calls
from harness.dbus_client import Client
from harness.dbus_wire import BusConnection
from harness.process import as_user, harness_program, wait_until
from harness.procfs import daemon_pid, rss_kib, sanitized
from harness.seed import U_TUNNEL_ADDRESS, V_ADDRESS, client_config, server_config

pytestmark = pytest.mark.usefixtures("tunlabctl")

TUNNEL_PATH = "/org/tunlab1/tunnel/lab"
U_PORT = 41000
# The longest error message a refusal may carry: names and values are quoted in at most 64
# characters, a whole message in at most 1024.
MESSAGE_LIMIT = 1200
# tunlabd's RSS after a call, above what it was before the sweep: each call briefly costs a
# few times its 32 MiB, all of which must be given back.
RSS_SLACK_KIB = 8 * 1024
# Under ASan, freed memory waits in a quarantine (and big blocks keep their shadow): the
# bound is then on what stays after the whole sweep, not per call.
SANITIZED_RSS_SLACK_KIB = 400 * 1024
CALL_TIMEOUT = 180.0


def start_lab(lab, bus_policy: str):
    server = lab.start_daemon("s", {"lab": server_config(
        peers=[{"endpoint": f"10.9.0.5:{U_PORT}", "allowed_ips": [f"{U_TUNNEL_ADDRESS}/32"]}])},
        bus_policy=bus_policy)
    lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS, listen_port=U_PORT)})
    first = lab.ping("u", V_ADDRESS, 2)
    assert first.received == 2, first.output
    return server


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def bus_owner(address: str) -> str | None:
    """The unique name of org.tunlab1's owner, None if nobody owns it."""
    with BusConnection(address) as connection:
        reply = connection.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "GetNameOwner", "s", ["org.tunlab1"])
    if reply.outcome == "org.freedesktop.DBus.Error.NameHasNoOwner":
        return None
    assert reply.outcome == "ok", reply.error_message
    return reply.body[0]


class Sweeper:
    """bus_sweep.py running as nobody: one call in, one outcome out."""

    def __init__(self, address: str):
        self.proc = subprocess.Popen(as_user(harness_program("bus_sweep", address)),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def call(self, call: dict) -> dict:
        self.proc.stdin.write(json.dumps(call) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], CALL_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        assert line, f"no outcome for {describe(call)}: {self.proc.stderr.read() if not ready else ''}"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def describe(call: dict) -> str:
    shape = call.get("shape", "args")
    return f"{call['path']} {call['interface']}.{call['member']}({call['signature']}) {shape}"


def objects_of(server) -> list[str]:
    with Client(server.bus.address) as client:
        (peer,) = client.get(TUNNEL_PATH, "org.tunlab1.Tunnel", "Peers")
    return ["/org/tunlab1", TUNNEL_PATH, peer]


def test_a_huge_name_gets_a_short_answer_and_tunlabd_stays(lab):
    """The reported call, as nobody, at the largest size the bus passes."""
    server = start_lab(lab, "shipped")
    owner = bus_owner(server.bus.address)
    interface = server.status()["tunnels"]["lab"]["interface"]
    sweeper = Sweeper(server.bus.address)
    try:
        outcome = sweeper.call({"path": "/org/tunlab1", "interface": "org.tunlab1.Manager",
                                "member": "GetTunnel", "signature": "s", "shape": "long"})
    finally:
        sweeper.close()
    assert outcome["outcome"] == "org.tunlab1.Error.NotFound", outcome
    assert outcome["message_length"] <= MESSAGE_LIMIT, outcome
    assert outcome["message_head"].startswith("name: there is no tunnel named \\x01\\x01")
    assert server.alive(), server.describe()
    assert bus_owner(server.bus.address) == owner, "tunlabd had to connect to the bus again"
    assert interface in lab.ip("s", "-o", "link").stdout
    after = lab.ping("u", V_ADDRESS, 3)
    assert after.received == 3, after.output


# libsystemd answers these itself, before any tunlabd code runs, and quotes both argument
# strings in its error ("Unknown interface %s or property %s."): called with names that fill
# the message, its reply comes out a few bytes over the bus's limit, and dbus-daemon drops
# tunlabd's connection. tunlabd cannot stop that reply; it connects again, and its tunnels
# carry on meanwhile (checked below). For every other call, the connection must stay.
LIBSYSTEMD_QUOTES_BOTH_NAMES = {("org.freedesktop.DBus.Properties", "Get"),
                                ("org.freedesktop.DBus.Properties", "Set")}
RECONNECT_TIMEOUT = 10.0


def test_every_method_with_the_largest_arguments_from_anyone(lab):
    """Under a permissive policy, so that every call reaches tunlabd: the shipped policy lets
    the bus refuse the changes before they do (test_dbus_policy.py), which would leave
    tunlabd's own gate untested."""
    bus_policy = "permissive"
    server = start_lab(lab, bus_policy)
    pid = daemon_pid(server)
    owner = bus_owner(server.bus.address)
    state_file = server.state_dir / "tunnels" / "lab.json"
    state_before = state_file.read_bytes()
    with Client(server.bus.address) as client:
        calls = introspected_calls(client, objects_of(server))
    members = {(call["interface"], call["member"]) for call in calls}
    # The walk found the API, not just the standard interfaces.
    assert {("org.tunlab1.Manager", "CreateTunnel"), ("org.tunlab1.Tunnel", "AddPeer"),
            ("org.tunlab1.Peer", "SetAllowedIPs"),
            ("org.freedesktop.DBus.Properties", "Set")} <= members, members

    rss_before = rss_kib(pid)
    outcomes, reconnected_after = {}, []
    sweeper = Sweeper(server.bus.address)
    pinging = lab.ping_in_background("u", V_ADDRESS, 100_000, 0.02)
    try:
        for call in calls:
            outcome = sweeper.call(call)
            what = describe(call)
            outcomes[what] = outcome["outcome"]
            assert outcome["outcome"] != "closed", f"{what}: the bus dropped the caller"
            assert server.alive(), f"tunlabd died after {what}\n{server.describe()}"
            if bus_owner(server.bus.address) != owner:
                assert (call["interface"], call["member"]) in LIBSYSTEMD_QUOTES_BOTH_NAMES, \
                    f"after {what}, tunlabd had lost its bus connection\n{server.describe()}"
                reconnected_after.append(what)
                owner = wait_until(lambda: bus_owner(server.bus.address), RECONNECT_TIMEOUT,
                                   "tunlabd to own org.tunlab1 again")
            elif outcome["outcome"].startswith("org.tunlab1."):
                # tunlabd's own refusals; libsystemd's (UnknownInterface, ...) are as long as
                # the name they quote, which the bus then bounds.
                assert outcome["message_length"] <= MESSAGE_LIMIT, (what, outcome)
            if not sanitized(pid):
                # The reply leaves before the message is freed: a moment to give it back.
                wait_until(lambda: rss_kib(pid) - rss_before <= RSS_SLACK_KIB, 2,
                           f"RSS back to {rss_before} + {RSS_SLACK_KIB} KiB after {what} "
                           f"(now {rss_kib(pid)} KiB)")
    finally:
        sweeper.close()
        pings = pinging.stop()
    print(f"\n{len(calls)} calls as nobody ({bus_policy} policy); tunlabd RSS {rss_before} KiB "
          f"before, {rss_kib(pid)} KiB after, {peak_rss_kib(pid)} KiB at the most; pings {pings.received}/{pings.transmitted}; "
          f"reconnected after {reconnected_after}; outcomes:\n" +
          "\n".join(f"  {what}: {outcome}" for what, outcome in outcomes.items()))

    # The tunnel carried every ping throughout, reconnections included.
    assert pings.transmitted > 0 and pings.received == pings.transmitted, pings.output[-2000:]
    if sanitized(pid):
        assert rss_kib(pid) - rss_before <= SANITIZED_RSS_SLACK_KIB
    # Nobody changed anything: tunlabd refused every change.
    refusal = "org.tunlab1.Error.PermissionDenied"
    for what, outcome in outcomes.items():
        if any(f".{member}(" in what for member in
               ("CreateTunnel", "DeleteTunnel", "AddPeer", "RemovePeer", "AddAddress",
                "RemoveAddress", "AddRoute", "RemoveRoute", "ResetCounters", "SetEndpoint",
                "SetAllowedIPs")):
            assert outcome == refusal, (what, outcome)
    assert state_file.read_bytes() == state_before


def test_the_tunnels_outlive_the_bus_and_tunlabd_comes_back_on_a_new_one(lab):
    server = start_lab(lab, "shipped")
    pid = daemon_pid(server)
    bus = server.bus
    pinging = lab.ping_in_background("u", V_ADDRESS, 150, 0.02)
    bus.stop()
    # Bus down: the data plane does not notice. The daemon keeps trying to reconnect.
    wait_until(lambda: "lost the system bus" in server.log_path.read_text(), 10,
               "tunlabd to notice that the bus is gone")
    assert server.alive(), server.describe()
    bus.start()  # a new dbus-daemon on the same socket path, as after a restart
    wait_until(lambda: _owner_or_none(bus.address) is not None, 15,
               "tunlabd to own org.tunlab1 on the new bus")
    result = pinging.result()
    assert result.received == result.transmitted == 150, result.output
    assert daemon_pid(server) == pid
    # The whole API is back: objects, properties, changes, signals' sources.
    with Client(bus.address) as client:
        assert client.get("/org/tunlab1", "org.tunlab1.Manager", "Tunnels") == [TUNNEL_PATH]
        assert len(client.get(TUNNEL_PATH, "org.tunlab1.Tunnel", "Peers")) == 1
    server.ctl("add-route", "10.99.0.0/16", "--tunnel", "lab")
    with Client(bus.address) as client:
        assert "10.99.0.0/16" in client.get(TUNNEL_PATH, "org.tunlab1.Tunnel", "Routes")


def _owner_or_none(address: str) -> str | None:
    try:
        return bus_owner(address)
    except OSError:  # the new bus is not listening yet
        return None
