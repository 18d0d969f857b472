"""A hostile bus: thousands of calls per second from several clients, bad object paths, huge
arrays, wrong variant types, unknown option keys, invalid UTF-8 and other malformed messages,
file descriptors where none belong. Every call gets the documented answer (docs/dbus-api.md,
or the standard org.freedesktop.DBus.Error.* that sd-bus gives for an unknown object, method
or signature), tunlabd's memory stays flat, nothing is changed by a refused call, and the data
plane forwards every ping while it happens.

The calls are sent by harness/dbus_wire.py's own D-Bus client (the wire protocol, pipelined),
because python-dbus and busctl refuse to build most of these messages. The per-method error
catalogue is test_dbus_errors.py; this file is about volume, size and malformed input.
"""

from __future__ import annotations

import os
import threading

import pytest

from harness.bus_storm import Call, Storm, storm
from harness.counters import RECEIVE_DROP_REASONS, SEND_DROP_REASONS, counter_deltas
from harness.dbus_wire import METHOD_RETURN, BusClosed, BusConnection, Fd, Raw, Variant
from harness.procfs import daemon_pid, open_fds, rss_kib, sanitized
from harness.seed import U_TUNNEL_ADDRESS, V_ADDRESS, client_config, server_config

MANAGER_PATH = "/org/tunlab1"
TUNNEL_PATH = "/org/tunlab1/tunnel/lab"
MANAGER = "org.tunlab1.Manager"
TUNNEL = "org.tunlab1.Tunnel"
PEER = "org.tunlab1.Peer"
PROPERTIES = "org.freedesktop.DBus.Properties"

INVALID = "org.tunlab1.Error.InvalidArgument"
NOT_FOUND = "org.tunlab1.Error.NotFound"
EXISTS = "org.tunlab1.Error.AlreadyExists"
UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
UNKNOWN_PROPERTY = "org.freedesktop.DBus.Error.UnknownProperty"
UNKNOWN_INTERFACE = "org.freedesktop.DBus.Error.UnknownInterface"
READ_ONLY = "org.freedesktop.DBus.Error.PropertyReadOnly"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
# What sd-bus answers when it cannot read a string it was sent (see the malformed test).
INCONSISTENT = "org.freedesktop.DBus.Error.InconsistentMessage"

U_PORT = 41000                 # the client's fixed port: the server knows U by it
U_ENDPOINT = f"10.9.0.5:{U_PORT}"

STORM_CLIENTS = 4
STORM_ROUNDS = 400             # of the small calls: 22,000 calls
HUGE_ROUNDS = 3                # of the huge ones (each costs tunlabd 0.1-0.5 s)
HUGE_RSS_GROWTH_LIMIT_KIB = 8192
WARM_UP_ROUNDS = 40
MINIMUM_RATE = 1000            # calls per second: "thousands" with margin for slow CI hosts
RSS_GROWTH_LIMIT_KIB = 512     # after the warm-up; a 20-byte leak per call would exceed it
PING_BATCH = 50
PING_INTERVAL = 0.01


# ── the lab: a server with a configured peer U and a client U, pinging V ─────────────────


def start_lab(lab):
    server = lab.start_daemon("s", {"lab": server_config(
        peers=[{"endpoint": U_ENDPOINT, "allowed_ips": [f"{U_TUNNEL_ADDRESS}/32"]}])})
    lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS, listen_port=U_PORT)})
    warm_up = lab.ping("u", V_ADDRESS, 2)
    assert warm_up.received == 2, warm_up.output
    return server


def snapshot(connection: BusConnection, peer_path: str) -> dict:
    """Everything a refused call must leave as it was."""
    def get_all(path, interface):
        reply = connection.call("org.tunlab1", path, PROPERTIES, "GetAll", "s", [interface])
        assert reply.type == METHOD_RETURN, reply.error_message
        values = {key: variant.value for key, variant in reply.body[0].items()}
        for volatile in ("Counters", "LastReceive", "LastSend"):
            values.pop(volatile, None)
        return values

    return {"manager": get_all(MANAGER_PATH, MANAGER), "tunnel": get_all(TUNNEL_PATH, TUNNEL),
            "peer": get_all(peer_path, PEER)}


def kernel_view(lab) -> tuple[str, ...]:
    """The server's devices, addresses and routes, without the counters that traffic moves."""
    return (lab.ip("s", "-o", "link").stdout, lab.ip("s", "-o", "addr").stdout,
            lab.ip("s", "route").stdout)


class PingWhile:
    """Pings V from U in batches of PING_BATCH until stopped; every batch runs to its end, so
    a loss is a real loss, not a ping cut short."""

    def __init__(self, lab):
        self.lab = lab
        self.results = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.results.append(self.lab.ping("u", V_ADDRESS, PING_BATCH, PING_INTERVAL))
        except BaseException as error:
            self.errors.append(error)

    def __enter__(self) -> "PingWhile":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def transmitted(self) -> int:
        return sum(result.transmitted for result in self.results)

    @property
    def received(self) -> int:
        return sum(result.received for result in self.results)


# ── the storm ─────────────────────────────────────────────────────────────────────────


def nested_variant(depth: int) -> Variant:
    value = Variant("s", "tun")
    for _ in range(depth):
        value = Variant("v", value)
    return value


def create(what, options, expect=INVALID, mentions="", name="x"):
    return Call(what, MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", (name, options), expect,
                mentions)


def add_peer(what, endpoint, options, expect=INVALID, mentions=""):
    return Call(what, TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", (endpoint, options), expect,
                mentions)


def small_calls(peer_path: str) -> list[Call]:
    """One of each: reads that succeed, and refusals with the documented error. None of them
    may change anything."""
    other_tunnel_peer = "/org/tunlab1/tunnel/other/peer/1"
    return [
        # Reads.
        Call("Get Version", MANAGER_PATH, PROPERTIES, "Get", "ss", (MANAGER, "Version"), "ok"),
        Call("GetAll Tunnel", TUNNEL_PATH, PROPERTIES, "GetAll", "s", (TUNNEL,), "ok"),
        Call("Get Counters", TUNNEL_PATH, PROPERTIES, "Get", "ss", (TUNNEL, "Counters"), "ok"),
        Call("Get peer Endpoint", peer_path, PROPERTIES, "Get", "ss", (PEER, "Endpoint"), "ok"),
        Call("GetTunnel lab", MANAGER_PATH, MANAGER, "GetTunnel", "s", ("lab",), "ok"),
        Call("Introspect", TUNNEL_PATH, "org.freedesktop.DBus.Introspectable", "Introspect", "",
             (), "ok"),
        # Names and paths that do not exist.
        Call("GetTunnel nope", MANAGER_PATH, MANAGER, "GetTunnel", "s", ("nope",), NOT_FOUND,
             "name"),
        Call("GetTunnel unicode", MANAGER_PATH, MANAGER, "GetTunnel", "s", ("tünnel-ü",),
             NOT_FOUND, "name"),
        Call("DeleteTunnel nope", MANAGER_PATH, MANAGER, "DeleteTunnel", "s", ("nope",),
             NOT_FOUND, "name"),
        Call("call on a missing tunnel", "/org/tunlab1/tunnel/nope", TUNNEL, "AddRoute",
             "sa{sv}", ("10.0.0.0/8", {}), UNKNOWN_OBJECT),
        Call("call on a missing peer", "/org/tunlab1/tunnel/lab/peer/424242", PEER,
             "SetEndpoint", "s", ("10.9.0.7:1",), UNKNOWN_OBJECT),
        Call("tunnel method on /", "/", TUNNEL, "AddRoute", "sa{sv}", ("10.0.0.0/8", {}),
             UNKNOWN_OBJECT),
        Call("RemovePeer /", TUNNEL_PATH, TUNNEL, "RemovePeer", "o", ("/",), INVALID, "peer"),
        Call("RemovePeer of another tunnel", TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
             (other_tunnel_peer,), INVALID, "peer"),
        Call("RemovePeer never handed out", TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
             ("/org/tunlab1/tunnel/lab/peer/999999",), NOT_FOUND, "999999"),
        Call("RemovePeer id overflow", TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
             ("/org/tunlab1/tunnel/lab/peer/99999999999999999999999",), INVALID, "peer"),
        # Malformed names and values.
        create("bad tunnel name", {}, mentions="name", name="bad name!"),
        create("long tunnel name", {}, mentions="name", name="t" * 16),
        create("unicode tunnel name", {}, mentions="name", name="tün0"),
        create("existing tunnel", {}, EXISTS, "lab", name="lab"),
        create("unknown key", {"bogus": Variant("s", "1")}, mentions="bogus"),
        create("listen_port as s", {"listen_port": Variant("s", "9090")},
               mentions="listen_port"),
        create("listen_port too big", {"listen_port": Variant("i", 70000)},
               mentions="listen_port"),
        create("mtu as d", {"mtu": Variant("d", 1500.0)}, mentions="mtu"),
        create("addresses as s", {"addresses": Variant("s", "1.2.3.4/24")},
               mentions="addresses"),
        create("addresses as a{ss}", {"addresses": Variant("a{ss}", {"a": "b"})},
               mentions="addresses"),
        create("addresses as ay", {"addresses": Variant("ay", b"1.2.3.4/24")},
               mentions="addresses"),
        create("learn_peers as i", {"learn_peers": Variant("i", 1)}, mentions="learn_peers"),
        create("max_learned_peers negative", {"max_learned_peers": Variant("x", -1)},
               mentions="max_learned_peers"),
        create("max_learned_peers 2^64-1", {"max_learned_peers": Variant("t", 2**64 - 1)},
               mentions="max_learned_peers"),
        create("peer endpoint as u",
               {"peers": Variant("aa{sv}", [{"endpoint": Variant("u", 5)}])},
               mentions="peers[0].endpoint"),
        create("peer unknown key",
               {"peers": Variant("aa{sv}", [{"bogus": Variant("b", True)}])},
               mentions="peers[0].bogus"),
        create("variant in variant, 12 deep", {"mode": nested_variant(12)}, mentions="mode"),
        create("interface with /", {"interface": Variant("s", "a/b")}, mentions="interface"),
        add_peer("bad endpoint", "not-an-endpoint", {}, mentions="endpoint"),
        add_peer("fullwidth port", "10.9.0.7:９０９０", {}, mentions="endpoint"),
        add_peer("bad allowed_ips", "", {"allowed_ips": Variant("as", ["300.1.1.1/8"])},
                 mentions="allowed_ips[0]"),
        add_peer("unknown peer key", "", {"bogus": Variant("b", True)}, mentions="bogus"),
        add_peer("keepalive as s", "", {"keepalive": Variant("s", "25")}, mentions="keepalive"),
        add_peer("U's endpoint again", U_ENDPOINT, {}, EXISTS, "endpoint"),
        add_peer("U's prefix again", "",
                 {"allowed_ips": Variant("as", [f"{U_TUNNEL_ADDRESS}/32"])}, EXISTS,
                 "allowed_ips"),
        Call("route option", TUNNEL_PATH, TUNNEL, "AddRoute", "sa{sv}",
             ("10.0.0.0/8", {"metric": Variant("u", 5)}), INVALID, "metric"),
        Call("route /33", TUNNEL_PATH, TUNNEL, "AddRoute", "sa{sv}", ("10.0.0.0/33", {}),
             INVALID, "destination"),
        Call("route fullwidth", TUNNEL_PATH, TUNNEL, "AddRoute", "sa{sv}",
             ("１０.0.0.0/8", {}), INVALID, "destination"),
        Call("route not there", TUNNEL_PATH, TUNNEL, "RemoveRoute", "s", ("10.99.0.0/16",),
             NOT_FOUND, "destination"),
        Call("address /99", TUNNEL_PATH, TUNNEL, "AddAddress", "s", ("1.2.3.4/99",), INVALID,
             "cidr"),
        Call("address not there", TUNNEL_PATH, TUNNEL, "RemoveAddress", "s", ("10.77.0.1/24",),
             NOT_FOUND, "cidr"),
        Call("SetEndpoint garbage", peer_path, PEER, "SetEndpoint", "s", ("garbage",), INVALID,
             "endpoint"),
        Call("SetAllowedIPs /33", peer_path, PEER, "SetAllowedIPs", "as", (["1.2.3.4/33"],),
             INVALID, "allowed_ips[0]"),
        # What sd-bus refuses before tunlabd's code runs.
        Call("unknown method", TUNNEL_PATH, TUNNEL, "Bogus", "", (), UNKNOWN_METHOD),
        Call("unknown property", TUNNEL_PATH, PROPERTIES, "Get", "ss", (TUNNEL, "Bogus"),
             UNKNOWN_PROPERTY),
        Call("unknown interface", TUNNEL_PATH, PROPERTIES, "GetAll", "s", ("org.bogus",),
             UNKNOWN_INTERFACE),
        Call("set a read-only property", TUNNEL_PATH, PROPERTIES, "Set", "ssv",
             (TUNNEL, "MTU", Variant("u", 1)), READ_ONLY),
        Call("missing argument", MANAGER_PATH, MANAGER, "CreateTunnel", "s", ("x",),
             INVALID_ARGS),
        Call("wrong signature", TUNNEL_PATH, TUNNEL, "AddPeer", "sa{ss}", ("", {"a": "b"}),
             INVALID_ARGS),
    ]


def huge_calls(peer_path: str) -> list[Call]:
    """Big messages: long arrays that are wrong somewhere (often only at the end, so that all
    of it is read), tens of thousands of option keys, a megabyte of name."""
    valid = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32" for i in range(20000)]
    routes = [f"10.{i >> 8 & 255}.{i & 255}.0/24" for i in range(20000)]
    keys = {f"k{i:05}": Variant("s", "v") for i in range(10000)}
    return [
        add_peer("50k bad allowed_ips", "", {"allowed_ips": Variant("as", ["x"] * 50000)},
                 mentions="allowed_ips[0]"),
        add_peer("20k allowed_ips, last bad", "",
                 {"allowed_ips": Variant("as", valid + ["x"])}, mentions="allowed_ips[20000]"),
        Call("SetAllowedIPs 20k, last bad", peer_path, PEER, "SetAllowedIPs", "as",
             (valid + ["10.0.0.0/33"],), INVALID, "allowed_ips[20000]"),
        create("20k routes, last bad", {"routes": Variant("as", routes + ["x"])},
               mentions="routes[20000]"),
        create("10k unknown keys", keys, mentions="unknown setting"),
        Call("10k route options", TUNNEL_PATH, TUNNEL, "AddRoute", "sa{sv}",
             ("10.0.0.0/8", keys), INVALID, "unknown option"),
        Call("1 MB tunnel name", MANAGER_PATH, MANAGER, "GetTunnel", "s", ("n" * (1 << 20),),
             NOT_FOUND, "name"),
    ]


def test_call_storm_gets_documented_answers_and_costs_no_memory_and_no_packet(lab):
    server = start_lab(lab)
    pid = daemon_pid(server)
    with BusConnection(server.bus.address) as connection:
        peers = connection.get_property(TUNNEL_PATH, TUNNEL, "Peers")
        assert len(peers) == 1, peers
        peer_path = peers[0]
        before = snapshot(connection, peer_path)
    state_file = server.state_dir / "tunnels" / "lab.json"
    state_before = state_file.read_bytes()
    kernel_before = kernel_view(lab)
    small, huge = small_calls(peer_path), huge_calls(peer_path)

    # Warm-up: every kind of call, so that allocator pools, sd-bus caches and the high-water
    # mark of the huge messages are reached before the baseline.
    for warm_up in (storm(server.bus.address, huge, 1),
                    storm(server.bus.address, small * WARM_UP_ROUNDS, STORM_CLIENTS)):
        assert not warm_up.mismatches, "\n".join(warm_up.mismatches)
    rss_before = rss_kib(pid)
    fds_before = open_fds(pid)
    counters_before = server.tunnel()["counters"]
    log_before = server.log_path.stat().st_size

    # Many small calls, as fast as four pipelining clients can send them, then the huge ones,
    # one after the other; all clients ready before the pings start.
    storms = [Storm(server.bus.address, small * STORM_ROUNDS, STORM_CLIENTS)]
    try:
        storms += [Storm(server.bus.address, huge, 1) for _ in range(HUGE_ROUNDS)]
        with PingWhile(lab) as pinging:
            result = storms[0].run()
            rss_after_storm = rss_kib(pid)
            huge_results = [huge_storm.run() for huge_storm in storms[1:]]
            rss_after_huge = rss_kib(pid)
    finally:
        for unfinished in storms:
            unfinished.close()
    print(f"\nstorm: {result.calls} calls from {STORM_CLIENTS} clients in {result.seconds:.2f} s"
          f" = {result.rate:.0f} calls/s; tunlabd RSS after warm-up {rss_before} KiB, after "
          f"the storm {rss_after_storm} KiB, after {HUGE_ROUNDS} x {len(huge)} huge calls "
          f"{rss_after_huge} KiB; pings {pinging.received}/{pinging.transmitted}")

    assert not pinging.errors, pinging.errors
    assert not result.mismatches, "\n".join(result.mismatches)
    for huge_result in huge_results:
        assert not huge_result.mismatches, "\n".join(huge_result.mismatches)
    assert result.calls == len(small) * STORM_ROUNDS
    assert server.alive()
    if not sanitized(pid):  # ASan's allocator makes both slow and memory-hungry by design
        assert result.rate >= MINIMUM_RATE, f"only {result.rate:.0f} calls/s"
        assert rss_after_storm - rss_before <= RSS_GROWTH_LIMIT_KIB, \
            f"tunlabd RSS grew from {rss_before} to {rss_after_storm} KiB over " \
            f"{result.calls} calls"
        # Each huge call briefly costs tunlabd tens of MB, and the allocator keeps some of it;
        # a leak of the messages themselves (MBs each) would still show.
        assert rss_after_huge - rss_after_storm <= HUGE_RSS_GROWTH_LIMIT_KIB, \
            f"tunlabd RSS grew from {rss_after_storm} to {rss_after_huge} KiB over " \
            f"{HUGE_ROUNDS * len(huge)} huge calls"
    assert open_fds(pid) <= fds_before

    # The data plane forwarded every ping during all of it, and the server counted exactly
    # those: no drop of any kind.
    assert pinging.transmitted >= PING_BATCH, "the storm ended before one batch of pings"
    assert pinging.received == pinging.transmitted, [r.output for r in pinging.results
                                                     if r.received != r.transmitted]
    after = server.wait_for_tunnel(
        lambda t: t["counters"]["tx_packets"] - counters_before["tx_packets"]
        >= pinging.transmitted, "the server to count the pings")
    delta = counter_deltas(counters_before, after["counters"])
    assert delta["rx_packets"] == delta["tx_packets"] == pinging.transmitted, delta
    for reason in RECEIVE_DROP_REASONS + SEND_DROP_REASONS:
        assert delta[f"drop_{reason}"] == 0, (reason, delta)

    # Nothing was changed by tens of thousands of refusals: the API, the saved state, the
    # kernel's view; and the log did not get a line per call.
    with BusConnection(server.bus.address) as connection:
        assert snapshot(connection, peer_path) == before
    assert state_file.read_bytes() == state_before
    assert kernel_view(lab) == kernel_before
    log_growth = server.log_path.stat().st_size - log_before
    assert log_growth < 4096, f"the log grew by {log_growth} bytes during the storm"


# ── messages the bus or sd-bus refuse ────────────────────────────────────────────────────

# (what, path, interface, member, signature, args): each breaks the D-Bus specification.
# dbus-daemon validates every message it receives and disconnects a client that sends an
# invalid one, so tunlabd never sees them.
INVALID_MESSAGES = [
    ("invalid UTF-8 in a string", MANAGER_PATH, MANAGER, "GetTunnel", "s", (b"\xff\xfe",)),
    ("overlong UTF-8", MANAGER_PATH, MANAGER, "GetTunnel", "s", (b"\xc0\xaf",)),
    ("UTF-16 surrogate", MANAGER_PATH, MANAGER, "GetTunnel", "s", (b"\xed\xa0\x80",)),
    ("NUL inside a string", MANAGER_PATH, MANAGER, "GetTunnel", "s", (b"la\0b",)),
    ("invalid UTF-8 in an option key", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}",
     ("x", {b"mo\xffde": Variant("s", "tun")})),
    ("invalid UTF-8 in a variant", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}",
     ("x", {"mode": Variant("s", b"t\xffn")})),
    ("invalid UTF-8 in an array", TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}",
     ("", {"allowed_ips": Variant("as", ["10.0.0.0/8", b"\x80"])})),
    ("object path argument //x/", TUNNEL_PATH, TUNNEL, "RemovePeer", "o", (b"//x/",)),
    ("object path argument without /", TUNNEL_PATH, TUNNEL, "RemovePeer", "o", (b"peer",)),
    ("object path argument with -", TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
     (b"/org/tunlab1/tunnel/lab/peer/-1",)),
    ("header path //", b"/org//tunlab1", MANAGER, "GetTunnel", "s", ("lab",)),
    ("header path ending in /", b"/org/tunlab1/", MANAGER, "GetTunnel", "s", ("lab",)),
    ("header path with invalid UTF-8", b"/org/tunlab1/\xff", MANAGER, "GetTunnel", "s",
     ("lab",)),
    ("variant with an incomplete signature", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}",
     ("x", {"mode": Variant(b"a", Raw(b"\0\0\0\0"))})),
    ("variant with an unknown type code", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}",
     ("x", {"mode": Variant(b"z", Raw(b""))})),
    ("member name with -", MANAGER_PATH, MANAGER, b"Get-Tunnel", "s", ("lab",)),
    ("interface name with ..", MANAGER_PATH, "org..tunlab1", "GetTunnel", "s", ("lab",)),
]

# Valid for the D-Bus specification and passed on by dbus-daemon, but noncharacters that
# sd-bus (libsystemd's UTF-8 check) will not read: it answers InconsistentMessage itself.
NONCHARACTER_MESSAGES = [
    ("U+FFFE as a name", MANAGER_PATH, MANAGER, "GetTunnel", "s", ("\ufffe",)),
    ("U+FDD0 as a name", MANAGER_PATH, MANAGER, "GetTunnel", "s", ("la\ufdd0b",)),
    ("U+10FFFF as an option key", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}",
     ("x", {"\U0010ffff": Variant("s", "tun")})),
    ("U+FFFF in an option value", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}",
     ("x", {"mode": Variant("s", "\uffff")})),
    ("U+FFFE in allowed_ips", TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}",
     ("", {"allowed_ips": Variant("as", ["\ufffe"])})),
    ("U+FFFE as an endpoint", TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}", ("\ufffe", {})),
]


def test_malformed_messages_are_refused_and_tunlabd_keeps_answering(lab):
    server = start_lab(lab)
    pid = daemon_pid(server)

    def still_answers():
        with BusConnection(server.bus.address) as connection:
            reply = connection.call("org.tunlab1", MANAGER_PATH, MANAGER, "GetTunnel", "s",
                                    ["lab"])
            assert (reply.outcome, reply.body) == ("ok", [TUNNEL_PATH]), reply

    still_answers()
    for rounds in range(2):  # the second round must not cost memory
        if rounds == 1:
            rss_before, fds_before = rss_kib(pid), open_fds(pid)
        for what, path, interface, member, signature, args in INVALID_MESSAGES:
            with BusConnection(server.bus.address, timeout=5) as connection:
                serial = connection.send_call("org.tunlab1", path, interface, member,
                                              signature, args)
                with pytest.raises(BusClosed):
                    reply = connection.wait_reply(serial)
                    pytest.fail(f"{what}: answered {reply.outcome} {reply.error_message!r}, "
                                f"expected the bus to drop the connection")
            assert server.alive(), f"tunlabd died after: {what}\n{server.describe()}"
        for what, path, interface, member, signature, args in NONCHARACTER_MESSAGES:
            with BusConnection(server.bus.address, timeout=5) as connection:
                reply = connection.call("org.tunlab1", path, interface, member, signature,
                                        args)
                assert reply.outcome == INCONSISTENT, (what, reply.outcome,
                                                       reply.error_message)
        still_answers()
    if not sanitized(pid):
        assert rss_kib(pid) - rss_before <= RSS_GROWTH_LIMIT_KIB
    assert open_fds(pid) <= fds_before
    with BusConnection(server.bus.address) as connection:
        assert len(connection.get_property(TUNNEL_PATH, TUNNEL, "Peers")) == 1


def test_file_descriptors_in_variants_are_refused_and_closed(lab):
    """An 'h' (unix fd) where an option belongs: InvalidArgument, and the descriptor that
    came with the message is closed, so a flood of them cannot exhaust tunlabd's fds."""
    server = start_lab(lab)
    pid = daemon_pid(server)
    read_end, write_end = os.pipe()
    try:
        with BusConnection(server.bus.address, negotiate_fds=True) as connection:
            assert connection.fds_agreed, "the bus did not agree to pass fds"

            def calls(count):
                for number in range(count):
                    if number % 2:
                        yield connection.encode_call(
                            "org.tunlab1", MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}",
                            ("x", {"mode": Variant("h", Fd(read_end))}))
                    else:
                        yield connection.encode_call(
                            "org.tunlab1", TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}",
                            ("", {"keepalive": Variant("h", Fd(write_end))}))

            warm_up = connection.pipeline(calls(20), window=8)
            fds_before = open_fds(pid)
            replies = connection.pipeline(calls(1000), window=8)
        assert {(reply.outcome, "are not accepted" in reply.error_message)
                for reply in warm_up + replies} == {(INVALID, True)}
        assert open_fds(pid) <= fds_before, "tunlabd kept descriptors it was sent"
    finally:
        os.close(read_end)
        os.close(write_end)


# ── accepted input is kept (known bugs: see the reasons) ────────────────────────────────


def test_a_duplicate_allowed_ip_is_refused_or_survives_a_restart(lab):
    server = lab.start_daemon("s", {"lab": server_config()})
    duplicate = ["10.42.0.0/16", "10.42.0.0/16"]
    with BusConnection(server.bus.address) as connection:
        reply = connection.call("org.tunlab1", TUNNEL_PATH, TUNNEL, "AddPeer", "sa{sv}",
                                ["", {"allowed_ips": Variant("as", duplicate)}])
    assert reply.outcome in ("ok", INVALID), (reply.outcome, reply.error_message)
    if reply.outcome == INVALID:
        assert "allowed_ips[1]" in reply.error_message
        return
    server.stop()
    server.start()
    tunnels = server.status()["tunnels"]
    assert "lab" in tunnels, f"the tunnel did not come back after a restart\n" \
                             f"{server.describe()}"
    assert any("10.42.0.0/16" in peer["allowed_ips"] for peer in tunnels["lab"]["peers"])


def test_remove_peer_refuses_a_path_that_is_not_a_peer_path(lab):
    server = start_lab(lab)
    with BusConnection(server.bus.address) as connection:
        (peer_path,) = connection.get_property(TUNNEL_PATH, TUNNEL, "Peers")
        prefix, number = peer_path.rsplit("/", 1)
        reply = connection.call("org.tunlab1", TUNNEL_PATH, TUNNEL, "RemovePeer", "o",
                                [f"{prefix}/0{number}"])
        assert connection.get_property(TUNNEL_PATH, TUNNEL, "Peers") == [peer_path], \
            f"RemovePeer({prefix}/0{number}) removed {peer_path}"
        assert reply.outcome in (INVALID, NOT_FOUND), reply.outcome
