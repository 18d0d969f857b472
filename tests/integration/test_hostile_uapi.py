"""The UAPI socket of a `wireguard` tunnel (test_wireguard_uapi.py) under bad input: what
tunlabd answers, and that nothing changed.

- A set with an unknown key, bad hex, a key of the wrong length, a bad prefix, port or
  endpoint, a flag that is not `true`, an all-zero private key is answered `errno=-22`; a
  line without '=' `errno=-71`; a non-zero fwmark `errno=-95`; a listen port another socket
  holds `errno=-98`. Each is one whole reply, and NOTHING of the request was applied, also
  when valid lines (hundreds of new peers, a new port, a removal) came before the bad one:
  the D-Bus objects and the saved state are byte for byte as before, no new handshake.
- A line over 4096 bytes, or a request over 32 MiB: `errno=-5`, then the connection is
  closed. A first line that is neither get=1 nor set=1: closed without a reply.
- Clients that connect and send nothing delay nobody (`wg show` is answered at once) and
  are closed after 10 s; 70 of them at once do not take the daemon down, and `wg show` works
  (at once, or once they are gone).
- Nobody (uid 65534) cannot connect (the socket is srwx------): `wg` says "Permission
  denied"; with the mode loosened on purpose, tunlabd closes such a client unanswered.

After each: tunlabd alive, its tunnel and peers as they were, pings through the tunnel
answered.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.dbus_client import Client
from harness.lab import Lab
from harness.procfs import daemon_pid, open_fds
from harness.process import SYSTEM_PYTHON, as_user, wait_until
from harness.uapi import (CONNECT_PROGRAM, EADDRINUSE, EINVAL, EIO, EOPNOTSUPP, EPROTO,
                          SYSTEM_UAPI_DIRECTORY, UapiConnection, errno_reply, hex_key,
                          in_uapi_directory, uapi_request)
from harness.wireguard import WIREGUARD_PORT, Keypair
from harness.wireguard_pair import (CLIENT_TUNNEL, SERVER_INTERFACE, SERVER_TUNNEL, TUNNEL,
                                    WireguardPair, start_pair)

pytestmark = pytest.mark.usefixtures("tunlabctl")

ZERO_KEY = "0" * 64
TAKEN_PORT = 51899
IDLE_TIMEOUT = 10.0  # the daemon's, for a client that sends nothing
MAX_CONNECTIONS = 64


# ── what must not change ────────────────────────────────────────────────────────────────


def snapshot(pair: WireguardPair) -> dict[str, Any]:
    """Everything the server shows over D-Bus but what moves on its own (counters, times),
    its saved state file, and its handshake count; the daemon must be alive."""
    assert pair.server.alive(), f"tunlabd died\n{pair.server.describe()}"
    with Client(pair.server.bus.address) as bus:
        state = bus.snapshot()
    for properties in state.values():
        properties.pop("LatestHandshake", None)
    return {
        "dbus": state,
        "saved": (pair.server.state_dir / "tunnels" / f"{TUNNEL}.json").read_bytes(),
        "handshakes": pair.server.tunnel(TUNNEL)["counters"]["handshakes_completed"],
        "port bound": pair.lab.udp_port_bound("s", WIREGUARD_PORT),
    }


def assert_unchanged(pair: WireguardPair, before: dict[str, Any], what: str) -> None:
    after = snapshot(pair)
    result = pair.lab.ping("u", SERVER_TUNNEL, 2, 0.02)
    changes = [f"{key} changed:\n  {before[key]!r}\n→ {after[key]!r}"
               for key in before if after[key] != before[key]]
    if result.received != 2:
        changes.append(f"pings lost afterwards:\n{result.output}")
    assert not changes, f"{what}: " + "\n".join(changes)


@pytest.fixture
def pair(lab: Lab, tmp_path: Path) -> WireguardPair:
    the_pair = start_pair(lab, tmp_path)
    the_pair.ping(3)
    return the_pair


def send_in_background(connection: UapiConnection, data: bytes) -> threading.Thread:
    """Sends `data` from a thread, ignoring the daemon closing on us midway (it may answer
    and close before it read everything)."""
    def send() -> None:
        try:
            connection.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            pass

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


# ── refused requests ────────────────────────────────────────────────────────────────────


def refused_requests(pair: WireguardPair) -> list[tuple[str, str, int]]:
    """(what, request, errno): each must be answered with exactly -errno and change
    nothing."""
    client = hex_key(pair.client_keys.public)
    stranger = hex_key(Keypair.generate().public)
    peer = f"set=1\npublic_key={client}\n"
    many_peers = "set=1\n" + "".join(
        f"public_key={hex_key(Keypair.generate().public)}\nallowed_ip=10.{100 + n // 250}."
        f"{n % 250}.0/24\npersistent_keepalive_interval=25\n" for n in range(300))
    return [
        ("unknown key", "set=1\nno_such_key=1\n\n", EINVAL),
        ("unknown key in a peer section", f"{peer}no_such_key=1\n\n", EINVAL),
        ("private key of bad hex", f"set=1\nprivate_key={'zz' * 32}\n\n", EINVAL),
        ("public key of bad hex", f"set=1\npublic_key={'g' * 64}\n\n", EINVAL),
        ("31-byte public key", f"set=1\npublic_key={stranger[:62]}\n\n", EINVAL),
        ("33-byte public key", f"set=1\npublic_key={stranger}00\n\n", EINVAL),
        ("31-byte private key", f"set=1\nprivate_key={'11' * 31}\n\n", EINVAL),
        ("31-byte preshared key", f"{peer}preshared_key={'11' * 31}\n\n", EINVAL),
        ("empty public key", "set=1\npublic_key=\n\n", EINVAL),
        ("all-zero private key", f"set=1\nprivate_key={ZERO_KEY}\n\n", EINVAL),
        ("allowed_ip=garbage", f"{peer}allowed_ip=garbage\n\n", EINVAL),
        ("allowed_ip=-garbage", f"{peer}allowed_ip=-garbage\n\n", EINVAL),
        ("allowed_ip /33", f"{peer}allowed_ip=10.7.0.9/33\n\n", EINVAL),
        ("allowed_ip without a length", f"{peer}allowed_ip=10.7.0.9\n\n", EINVAL),
        ("allowed_ip before any peer", "set=1\nallowed_ip=10.7.0.9/32\n\n", EINVAL),
        ("listen_port=65536", "set=1\nlisten_port=65536\n\n", EINVAL),
        ("listen_port=abc", "set=1\nlisten_port=abc\n\n", EINVAL),
        ("listen_port=-1", "set=1\nlisten_port=-1\n\n", EINVAL),
        ("endpoint=garbage", f"{peer}endpoint=garbage\n\n", EINVAL),
        ("endpoint without a port", f"{peer}endpoint=10.9.0.5\n\n", EINVAL),
        ("endpoint port 65536", f"{peer}endpoint=10.9.0.5:65536\n\n", EINVAL),
        ("persistent_keepalive_interval=65536",
         f"{peer}persistent_keepalive_interval=65536\n\n", EINVAL),
        ("replace_peers=false", "set=1\nreplace_peers=false\n\n", EINVAL),
        ("replace_peers=TRUE", "set=1\nreplace_peers=TRUE\n\n", EINVAL),
        ("remove=yes", f"{peer}remove=yes\n\n", EINVAL),
        ("update_only=1", f"{peer}update_only=1\n\n", EINVAL),
        ("replace_allowed_ips=", f"{peer}replace_allowed_ips=\n\n", EINVAL),
        ("line without '='", "set=1\nprivate_key\n\n", EPROTO),
        ("line without '=' in a peer section", f"{peer}remove\n\n", EPROTO),
        ("fwmark=1", "set=1\nfwmark=1\n\n", EOPNOTSUPP),
        # Valid lines first, one bad line last: none of it applied.
        ("300 new peers, then a bad line", f"{many_peers}allowed_ip=garbage\n\n", EINVAL),
        ("a new port and a new allowed IP, then an unknown key",
         f"set=1\nlisten_port=51999\n{peer}allowed_ip=10.99.0.0/16\nno_such_key=1\n\n",
         EINVAL),
        ("replace_peers, then bad hex",
         f"set=1\nreplace_peers=true\npublic_key={'zz' * 32}\n\n", EINVAL),
        ("the client's peer removed, then a line without '='",
         f"{peer}remove=true\npublic_key={stranger}\nendpoint\n\n", EPROTO),
        ("a new port and replace_peers, then fwmark=1",
         "set=1\nlisten_port=51998\nreplace_peers=true\nfwmark=1\n\n", EOPNOTSUPP),
        # After public_key every key is a peer's: fwmark there is unknown (as in wireguard-go).
        ("the client's allowed IPs replaced, then fwmark=1 in its section",
         f"{peer}replace_allowed_ips=true\nallowed_ip=10.98.0.0/16\nfwmark=1\n\n", EINVAL),
        ("a new private key, then a bad endpoint",
         f"set=1\nprivate_key={hex_key(Keypair.generate().private)}\n"
         f"{peer}endpoint=nowhere\n\n", EINVAL),
    ]


def test_bad_sets_are_refused_with_their_errno_and_change_nothing(pair: WireguardPair) -> None:
    failures = []
    for what, request, code in refused_requests(pair):
        before = snapshot(pair)
        try:
            reply = uapi_request(pair.server_socket, request)
        except (AssertionError, OSError) as error:
            failures.append(f"{what}: no reply ({error})")
            if not pair.server.alive():
                break
            continue
        if reply != errno_reply(code):
            failures.append(f"{what}: replied {reply!r}, expected {errno_reply(code)!r}")
        try:
            assert_unchanged(pair, before, what)
        except AssertionError as error:
            failures.append(str(error))
            if not pair.server.alive():
                break
    assert not failures, "\n".join(failures)

    # A zero fwmark is no mark: accepted, and nothing changes.
    before = snapshot(pair)
    assert uapi_request(pair.server_socket, "set=1\nfwmark=0\n\n") == errno_reply(0)
    assert_unchanged(pair, before, "fwmark=0")


def test_wg_reports_refusals_as_errno_text(pair: WireguardPair, tmp_path: Path) -> None:
    """What `wg` itself can send and tunlabd refuses: the errno in wg's words, nothing
    changed."""
    empty_key = tmp_path / "empty.key"  # wg reads an empty key file as the all-zero key
    empty_key.write_text("")
    empty_key.chmod(0o600)
    for args, message in (
            (("fwmark", "1"), "Unable to modify interface: Operation not supported"),
            (("private-key", str(empty_key)), "Unable to modify interface: Invalid argument"),
            (("listen-port", "51998", "fwmark", "0x10"),
             "Unable to modify interface: Operation not supported")):
        before = snapshot(pair)
        result = pair.server.wg("set", SERVER_INTERFACE, *args, check=False)
        assert (result.returncode, result.stderr.strip()) != (0, ""), args
        assert result.stderr.strip() == message, (args, result.stderr)
        assert_unchanged(pair, before, f"wg set {' '.join(args)}")


def test_a_listen_port_held_by_another_socket(pair: WireguardPair) -> None:
    holder = pair.lab.socket("s", socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("0.0.0.0", TAKEN_PORT))
    before = snapshot(pair)
    assert uapi_request(pair.server_socket, f"set=1\nlisten_port={TAKEN_PORT}\n\n") == \
        errno_reply(EADDRINUSE)
    assert_unchanged(pair, before, "listen_port taken")
    result = pair.server.wg("set", SERVER_INTERFACE, "listen-port", str(TAKEN_PORT), check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == "Unable to modify interface: Address already in use", \
        result.stderr
    assert_unchanged(pair, before, "wg set listen-port (taken)")
    assert pair.server.bus_status()[TUNNEL]["listen_port"] == WIREGUARD_PORT


def test_oversized_lines_and_requests_end_the_connection(pair: WireguardPair) -> None:
    client = hex_key(pair.client_keys.public)
    stranger = hex_key(Keypair.generate().public)
    line = "allowed_ip=10.0.0.0/8\n"
    cases = [
        ("a 1 MiB line", f"set=1\npublic_key={'0' * (1 << 20)}\n\n".encode()),
        ("a line of 5000 bytes", f"set=1\npublic_key={client}\nendpoint={'1' * 4990}\n\n"
         .encode()),
        ("a 33 MiB request of short lines",
         f"set=1\npublic_key={stranger}\n".encode() +
         line.encode() * ((33 << 20) // len(line)) + b"\n"),
    ]
    for what, request in cases:
        before = snapshot(pair)
        with UapiConnection(pair.server_socket, timeout=30) as connection:
            sender = send_in_background(connection, request)
            assert connection.reply() == errno_reply(EIO), what
            assert connection.rest_until_closed(5) == b"", \
                f"{what}: the connection stays open after errno=-5"
            sender.join(30)
        assert_unchanged(pair, before, what)
    # A long line within the limit is refused for what it says, not for its length.
    long_line = f"endpoint={'1' * 4000}\n"
    before = snapshot(pair)
    assert uapi_request(pair.server_socket, f"set=1\npublic_key={client}\n{long_line}\n") == \
        errno_reply(EINVAL)
    assert_unchanged(pair, before, "a 4010-byte line")


def test_an_unknown_operation_is_closed_unanswered(pair: WireguardPair) -> None:
    failures = []
    for request in ("get=2\n\n", "set=0\n\n", "GET=1\n\n", "hello\n\n", "\n",
                    "get=1 \n\n", "put=1\nprivate_key=00\n\n", "get=1\x00\n\n"):
        before = snapshot(pair)
        with UapiConnection(pair.server_socket) as connection:
            connection.send(request)
            rest = connection.rest_until_closed(5)
        if rest != b"":
            failures.append(f"{request!r}: " + ("left open after 5 s" if rest is None
                                                 else f"answered {rest!r}"))
        assert_unchanged(pair, before, repr(request))
    assert not failures, "\n".join(failures)


def test_idle_clients_delay_nobody_and_are_closed(pair: WireguardPair) -> None:
    before = snapshot(pair)
    idle = UapiConnection(pair.server_socket)
    half = UapiConnection(pair.server_socket)
    half.send(f"set=1\npublic_key={hex_key(Keypair.generate().public)}\n")  # and no more
    opened = time.monotonic()
    try:
        started = time.monotonic()
        shown = pair.server.wg("show", SERVER_INTERFACE, "peers")
        assert time.monotonic() - started < 2.0, "wg show waited for the idle clients"
        assert shown.stdout == f"{pair.client_keys.public}\n"
        started = time.monotonic()
        uapi_request(pair.server_socket, "get=1\n\n", timeout=2)
        assert time.monotonic() - started < 1.0
        assert_unchanged(pair, before, "with idle clients")
        # The one that sent nothing is closed after 10 s, not much before or after.
        assert idle.rest_until_closed(IDLE_TIMEOUT + 5) == b"", \
            f"an idle client still open after {IDLE_TIMEOUT + 5:g} s"
        waited = time.monotonic() - opened
        assert waited >= IDLE_TIMEOUT - 1, f"closed after {waited:.1f} s"
    finally:
        idle.close()
        half.close()
    # The half request was never applied.
    assert_unchanged(pair, before, "a half request")


def test_seventy_idle_connections(pair: WireguardPair) -> None:
    before = snapshot(pair)
    pid = daemon_pid(pair.server)
    fds_before = open_fds(pid)
    connections: list[UapiConnection] = []
    refused = 0
    try:
        for _ in range(70):
            try:
                connections.append(UapiConnection(pair.server_socket, timeout=2))
            except OSError:  # a full backlog: EAGAIN, or a timeout
                refused += 1
        assert pair.server.alive()
        # At most 64 served at once: tunlabd holds no more than that many client sockets.
        assert open_fds(pid) <= fds_before + MAX_CONNECTIONS, \
            f"{open_fds(pid) - fds_before} more fds with 70 clients ({refused} refused)"
        started = time.monotonic()
        shown = pair.server.wg("show", SERVER_INTERFACE, "peers", check=False)
        took = time.monotonic() - started
        if shown.returncode == 0:
            assert shown.stdout == f"{pair.client_keys.public}\n"
        else:
            # Refused: cleanly, and it works once the others are gone.
            assert shown.stderr.startswith("Unable to access interface"), shown.stderr
    finally:
        for connection in connections:
            connection.close()
    print(f"70 idle clients: {refused} refused at connect; wg show "
          f"{'answered' if shown.returncode == 0 else 'refused'} after {took:.2f} s")
    assert pair.server.wg("show", SERVER_INTERFACE, "peers").stdout == \
        f"{pair.client_keys.public}\n"
    wait_until(lambda: open_fds(pid) <= fds_before, 5, "the client sockets to be closed")
    assert_unchanged(pair, before, "70 idle clients")


# ── other users ─────────────────────────────────────────────────────────────────────────


def connect_as_nobody(pair: WireguardPair) -> str:
    path = SYSTEM_UAPI_DIRECTORY / f"{SERVER_INTERFACE}.sock"
    argv = in_uapi_directory(pair.server.uapi_dir, as_user(
        [SYSTEM_PYTHON, "-c", CONNECT_PROGRAM, str(path), "5"]))
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_nobody_cannot_use_the_socket(pair: WireguardPair) -> None:
    before = snapshot(pair)
    shown = pair.server.wg("show", SERVER_INTERFACE, user=True, check=False)
    assert shown.returncode != 0
    assert "Permission denied" in shown.stderr, shown.stderr
    assert pair.client_keys.public not in shown.stdout
    changed = pair.server.wg("set", SERVER_INTERFACE, "peer", pair.client_keys.public,
                             "remove", user=True, check=False)
    assert changed.returncode != 0
    assert "Permission denied" in changed.stderr, changed.stderr
    assert connect_as_nobody(pair) == "connect EACCES"
    assert_unchanged(pair, before, "nobody")

    # Even with the file mode opened up on purpose, tunlabd checks who is calling: nobody
    # is closed unanswered.
    socket_file = pair.server_socket
    directory_mode = pair.server.uapi_dir.stat().st_mode & 0o7777
    os.chmod(socket_file, 0o777)
    os.chmod(pair.server.uapi_dir, 0o755)
    try:
        assert connect_as_nobody(pair) == "closed b''"
    finally:
        os.chmod(socket_file, 0o700)
        os.chmod(pair.server.uapi_dir, directory_mode)
    assert_unchanged(pair, before, "nobody, with the mode opened up")
    # Root still is served.
    assert f"allowed_ip={CLIENT_TUNNEL}/32\n" in uapi_request(pair.server_socket, "get=1\n\n")
