"""tunlabd's `wireguard` protocol against WireGuard itself: Debian's wireguard-go, configured
with `wg`, in both roles (tunlabd the client that initiates towards a wireguard-go server, and
a wireguard-go client calling a tunlabd server).

Byte for byte WireGuard means more than "ping works": both ends agree on the handshake (one,
recorded on both sides), on the bytes (`wg show`'s transfer equals tunlabd's per-peer
counters), on IPv4 and IPv6 inside and outside, on the preshared key, on what a wrong key
does (no handshake completes, and tunlabd counts each refused attempt under its exact
reason), and on roaming (an authenticated message moves the endpoint, a replayed one does
not).

The lab (docs/lab.md) carries the outer packets: the client is U (10.9.0.5), the server S
(10.9.0.11, UDP port 51820); inside the tunnel the server is 10.7.0.1 / fd07::1, the client
10.7.0.2 / fd07::2. IPv6 is off in the lab's namespaces unless a test asks for it (lab6), so
that no background traffic moves the counters the tests compare exactly.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness.counters import counter_deltas
from harness.daemon import Daemon
from harness.lab import Lab
from harness.process import wait_until
from harness.seed import SERVER_ADDRESS, U_ADDRESS
from harness.traffic import PING_PACKET_BYTES
from harness.wireguard import (WIREGUARD_PORT, Keypair, WireguardGo, log_lines_with,
                               peer_config, preshared_key, preshared_keys,
                               transport_message_size, tunnel_config)
from harness.wireguard_messages import INITIATION_SIZE, RESPONSE_SIZE, TRANSPORT, Capture

SERVER_TUNNEL = "10.7.0.1"
CLIENT_TUNNEL = "10.7.0.2"
SERVER_TUNNEL6 = "fd07::1"
CLIENT_TUNNEL6 = "fd07::2"
# The lab's LAN has no IPv6 addresses of its own: these are added for the outer-IPv6 test.
U_ADDRESS6 = "fd09::5"
SERVER_ADDRESS6 = "fd09::11"

PINGS = 10
PING_MESSAGE_BYTES = transport_message_size(PING_PACKET_BYTES)  # 84 → 128 on the wire
TRANSFER_BYTES = 20 * 1024 * 1024

ROLES = [True, False]
ROLE_IDS = ["tunlabd-client", "tunlabd-server"]

StartWireguardGo = Callable[[Lab, str], WireguardGo]


# ── fixtures ────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def start_wireguard_go(tmp_path: Path) -> Iterator[StartWireguardGo]:
    """Starts wireguard-go interfaces in lab hosts; every one is closed after the test (its
    UAPI socket is outside the namespaces and would outlive them)."""
    started: list[WireguardGo] = []

    def start(lab: Lab, role: str) -> WireguardGo:
        interface = WireguardGo(lab.ns[role], tmp_path)
        started.append(interface)
        return interface.start()

    yield start
    for interface in started:
        interface.close()


@pytest.fixture
def lab6(request: pytest.FixtureRequest, tmp_path: Path, tunlabd: Path) -> Iterator[Lab]:
    """The lab with IPv6 on (the `lab` fixture's rules otherwise), plus IPv6 addresses on the
    LAN for U and S, so that the outer packets can be IPv6 too."""
    with Lab(tmp_path, ipv6=True) as the_lab:
        # nodad: usable at once, no wait for duplicate address detection.
        the_lab.ip("u", "address", "add", f"{U_ADDRESS6}/64", "dev", "eth0", "nodad")
        the_lab.ip("s", "address", "add", f"{SERVER_ADDRESS6}/64", "dev", "eth0", "nodad")
        yield the_lab
        if getattr(request.node, "test_body_passed", False):
            the_lab.stop_daemons()


# ── one tunlabd and one wireguard-go, connected ─────────────────────────────────────────


@dataclass
class Pair:
    """A tunlabd and a wireguard-go that should talk to each other."""
    lab: Lab
    daemon: Daemon
    wg: WireguardGo
    tunlabd_keys: Keypair
    wg_keys: Keypair          # the key pair tunlabd expects wireguard-go to have
    tunlabd_is_client: bool
    workdir: Path

    def tunlabd_peer(self) -> dict[str, Any]:
        (peer,) = self.daemon.tunnel()["peers"]
        return peer

    def wg_peer(self) -> dict[str, Any]:
        """What `wg show` says about the peer tunlabd (under the key it is configured with)."""
        (peer,) = self.wg.peers().values()
        return peer

    def key_file(self, keys: Keypair, name: str) -> Path:
        return keys.write_private(self.workdir / f"{name}.key")


def psk_file(workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.psk"
    path.write_text(preshared_key() + "\n")
    path.chmod(0o600)
    return path


def connect(lab: Lab, start_wireguard_go: StartWireguardGo, workdir: Path,
            tunlabd_is_client: bool, *, ipv6: bool = False, outer_ipv6: bool = False,
            client_port: int | None = None, tunlabd_psk: Path | None = None,
            wg_psk: Path | None = None, wg_really_uses: Keypair | None = None,
            wg_believes_tunlabd_is: str | None = None) -> Pair:
    """tunlabd in one role, wireguard-go in the other. The server listens on 51820 and has no
    endpoint for its client; the client has the server's. The last four arguments break the
    pair on purpose: different preshared keys, a wireguard-go with another private key than
    tunlabd knows, a wireguard-go that has another public key for tunlabd."""
    tunlabd_keys, wg_keys = Keypair.generate(), Keypair.generate()
    server_host = f"[{SERVER_ADDRESS6}]" if outer_ipv6 else SERVER_ADDRESS
    server_endpoint = f"{server_host}:{WIREGUARD_PORT}"

    def addresses(v4: str, v6: str) -> list[str]:
        return [f"{v4}/24"] + ([f"{v6}/64"] if ipv6 else [])

    server_allows = [f"{CLIENT_TUNNEL}/32"] + ([f"{CLIENT_TUNNEL6}/128"] if ipv6 else [])
    client_allows = ["10.7.0.0/24"] + (["fd07::/64"] if ipv6 else [])

    if tunlabd_is_client:
        tunlabd_addresses = addresses(CLIENT_TUNNEL, CLIENT_TUNNEL6)
        wg_addresses = addresses(SERVER_TUNNEL, SERVER_TUNNEL6)
        tunlabd_peer = peer_config(wg_keys.public, client_allows, endpoint=server_endpoint,
                                   preshared_key_file=tunlabd_psk)
        tunlabd_port, wg_port = client_port, WIREGUARD_PORT
    else:
        tunlabd_addresses = addresses(SERVER_TUNNEL, SERVER_TUNNEL6)
        wg_addresses = addresses(CLIENT_TUNNEL, CLIENT_TUNNEL6)
        tunlabd_peer = peer_config(wg_keys.public, server_allows, preshared_key_file=tunlabd_psk)
        tunlabd_port, wg_port = WIREGUARD_PORT, client_port

    def start_tunlabd() -> Daemon:
        return lab.start_daemon("u" if tunlabd_is_client else "s", {"wg": tunnel_config(
            tunlabd_keys.write_private(workdir / "tunlabd.key"), tunlabd_addresses,
            [tunlabd_peer], listen_port=tunlabd_port)})

    # The server first: the client's first initiation then finds it listening.
    daemon = None if tunlabd_is_client else start_tunlabd()
    wg = start_wireguard_go(lab, "s" if tunlabd_is_client else "u")
    wg.configure(wg_really_uses or wg_keys, wg_addresses, listen_port=wg_port)
    wg.add_peer(wg_believes_tunlabd_is or tunlabd_keys.public,
                server_allows if tunlabd_is_client else client_allows,
                endpoint=None if tunlabd_is_client else server_endpoint,
                preshared_key_file=wg_psk)
    if daemon is None:
        daemon = start_tunlabd()
    return Pair(lab, daemon, wg, tunlabd_keys, wg_keys, tunlabd_is_client, workdir)


# ── checks ──────────────────────────────────────────────────────────────────────────────


def ping_answered(lab: Lab, destination: str, count: int = PINGS) -> None:
    # Always from the client (U): it has the server's endpoint, so it can start the handshake.
    result = lab.ping("u", destination, count)
    assert (result.transmitted, result.received) == (count, count), result.output


def ping_eventually_answered(lab: Lab, destination: str, timeout: float = 15.0) -> None:
    """For a pair just repaired: the next handshake attempt may be up to REKEY_TIMEOUT (5 s
    and a bit) away, so ping until one is answered."""
    wait_until(lambda: lab.ping("u", destination, 1).received == 1, timeout,
               f"a ping to {destination} to be answered")


def nonzero(counters: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in counters.items() if value}


def wait_until_transfer_agrees(pair: Pair) -> tuple[dict[str, Any], dict[str, Any]]:
    """tunlabd's per-peer counters and `wg show`'s transfer, once they agree: what one side
    sent the other received (the last message may still be on its way: poll)."""
    def agreeing() -> tuple[dict[str, Any], dict[str, Any]] | None:
        ours, theirs = pair.tunlabd_peer(), pair.wg_peer()
        counters = ours["counters"]
        if (counters["tx_bytes"], counters["rx_bytes"]) == (theirs["rx_bytes"],
                                                            theirs["tx_bytes"]):
            return ours, theirs
        return None

    try:
        return wait_until(agreeing, 5, "tunlabd's and wg's byte counts to agree")
    except AssertionError as error:
        raise AssertionError(f"{error}: tunlabd {pair.tunlabd_peer()['counters']}, "
                             f"wg {pair.wg_peer()}") from None


# ── tests ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("tunlabd_is_client", ROLES, ids=ROLE_IDS)
def test_ping_transfer_and_wg_show_agree(lab: Lab, start_wireguard_go: StartWireguardGo,
                                         tmp_path: Path, tunlabd_is_client: bool) -> None:
    began = time.time()
    pair = connect(lab, start_wireguard_go, tmp_path, tunlabd_is_client, client_port=40001)

    ping_answered(lab, SERVER_TUNNEL)

    # Exactly one handshake, and it completed on tunlabd's side in its role.
    counters = pair.daemon.tunnel()["counters"]
    if tunlabd_is_client:
        expected = {"handshake_initiations_sent": 1, "handshake_responses_received": 1}
    else:
        expected = {"handshake_initiations_received": 1, "handshake_responses_sent": 1}
    handshakes = {key: value for key, value in counters.items()
                  if key.startswith("handshake") and value}
    assert handshakes == {**expected, "handshakes_completed": 1}, counters
    assert counters["rx_handshakes"] == 1, counters

    # Both ends recorded it, at the same moment (wg shows whole seconds).
    ours, theirs = wait_until_transfer_agrees(pair)
    now = time.time()
    assert began <= ours["latest_handshake"] / 1e6 <= now, ours
    assert int(began) <= theirs["latest_handshake"] <= now, theirs
    assert abs(theirs["latest_handshake"] - ours["latest_handshake"] / 1e6) <= 1, (ours, theirs)

    # The bytes are WireGuard's messages, as wg counts them: one handshake message each way
    # and one 128-byte transport message per ping and per reply, nothing else.
    sent_handshake, received_handshake = ((INITIATION_SIZE, RESPONSE_SIZE) if tunlabd_is_client
                                          else (RESPONSE_SIZE, INITIATION_SIZE))
    assert ours["counters"] == {
        "tx_packets": 1 + PINGS, "tx_bytes": sent_handshake + PINGS * PING_MESSAGE_BYTES,
        "rx_packets": PINGS, "rx_bytes": received_handshake + PINGS * PING_MESSAGE_BYTES,
    }, ours
    # Each end has the other where it really is (the server learned its client's endpoint
    # from the handshake).
    client_endpoint, server_endpoint = f"{U_ADDRESS}:40001", f"{SERVER_ADDRESS}:{WIREGUARD_PORT}"
    if tunlabd_is_client:
        assert (ours["endpoint"], theirs["endpoint"]) == (server_endpoint, client_endpoint)
    else:
        assert (ours["endpoint"], theirs["endpoint"]) == (client_endpoint, server_endpoint)

    # 20 MB each way over TCP, through the tunnel (the far end sees the tunnel address).
    data = os.urandom(TRANSFER_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    upload = lab.tcp_transfer("u", "s", SERVER_TUNNEL, data)
    assert upload.sender_address == CLIENT_TUNNEL
    assert (upload.received_bytes, upload.sha256) == (TRANSFER_BYTES, digest)
    download = lab.tcp_transfer("s", "u", CLIENT_TUNNEL, data, port=5002)
    assert download.sender_address == SERVER_TUNNEL
    assert (download.received_bytes, download.sha256) == (TRANSFER_BYTES, digest)

    # Every message wireguard-go sent authenticated, and nothing was refused.
    tunnel = pair.daemon.tunnel()
    assert {key: value for key, value in tunnel["counters"].items()
            if key.startswith("drop_") and value} == {}, tunnel["counters"]
    assert tunnel["counters"]["handshakes_completed"] == 1, tunnel["counters"]


@pytest.mark.parametrize("tunlabd_is_client", ROLES, ids=ROLE_IDS)
def test_ipv4_and_ipv6_inside_an_ipv6_outer_path(lab6: Lab,
                                                 start_wireguard_go: StartWireguardGo,
                                                 tmp_path: Path,
                                                 tunlabd_is_client: bool) -> None:
    client_port = 40001
    pair = connect(lab6, start_wireguard_go, tmp_path, tunlabd_is_client, ipv6=True,
                   outer_ipv6=True, client_port=client_port)

    ping_answered(lab6, SERVER_TUNNEL)
    ping_answered(lab6, SERVER_TUNNEL6)
    # And from the server's side, into the client: both directions carry both families.
    for destination in (CLIENT_TUNNEL, CLIENT_TUNNEL6):
        result = lab6.ping("s", destination, PINGS)
        assert result.received == PINGS, result.output

    # Both ends see each other at their IPv6 addresses.
    client_endpoint = f"[{U_ADDRESS6}]:{client_port}"
    server_endpoint = f"[{SERVER_ADDRESS6}]:{WIREGUARD_PORT}"
    ours, theirs = pair.tunlabd_peer(), pair.wg_peer()
    if tunlabd_is_client:
        assert (ours["endpoint"], theirs["endpoint"]) == (server_endpoint, client_endpoint)
    else:
        assert (ours["endpoint"], theirs["endpoint"]) == (client_endpoint, server_endpoint)
    assert pair.daemon.tunnel()["counters"]["handshakes_completed"] == 1


@pytest.mark.parametrize("tunlabd_is_client", ROLES, ids=ROLE_IDS)
def test_preshared_key(lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path,
                       tunlabd_is_client: bool) -> None:
    psk = psk_file(tmp_path, "shared")
    pair = connect(lab, start_wireguard_go, tmp_path, tunlabd_is_client, tunlabd_psk=psk,
                   wg_psk=psk)

    ping_answered(lab, SERVER_TUNNEL)

    peer = pair.tunlabd_peer()
    assert peer["has_preshared_key"] is True, peer
    assert peer["latest_handshake"] > 0, peer
    # The key itself is never shown.
    assert psk.read_text().strip() not in pair.daemon.status_path.read_text()
    assert preshared_keys(pair.wg) == {pair.tunlabd_keys.public: psk.read_text().strip()}
    assert pair.wg_peer()["latest_handshake"] > 0


@dataclass(frozen=True)
class Mismatch:
    """A pair that must not complete a handshake: tunlabd's role and what is broken (always
    on the wireguard-go side, so that `wg set` can repair it afterwards)."""
    tunlabd_is_client: bool
    broken: str   # "tunlabd-has-wrong-key", "wg-has-wrong-key" or "preshared-keys-differ"


MISMATCHES = [Mismatch(client, broken)
              for client in (True, False)
              for broken in ("tunlabd-has-wrong-key", "wg-has-wrong-key",
                             "preshared-keys-differ")]


def mismatch_id(case: Mismatch) -> str:
    return f"{'tunlabd-client' if case.tunlabd_is_client else 'tunlabd-server'}-{case.broken}"


def refused_attempts(case: Mismatch, pair: Pair) -> int | None:
    """How many handshakes were attempted and refused, counted on the OTHER side (not by
    tunlabd, whose counters are checked against this): wireguard-go's verbose log when
    tunlabd initiates, `wg show`'s sent bytes when wireguard-go does (a wireguard-go
    without a session sends initiations only, 148 bytes each)."""
    if case.tunlabd_is_client:
        # What wireguard-go made of each initiation from tunlabd.
        line = {"tunlabd-has-wrong-key": "Received packet with invalid mac1",
                "wg-has-wrong-key": "Received invalid initiation message",
                "preshared-keys-differ": "Sending handshake response"}[case.broken]
        return log_lines_with(pair.wg, line)
    sent = pair.wg_peer()["tx_bytes"]
    return sent // INITIATION_SIZE if sent % INITIATION_SIZE == 0 else None


def expected_counters(case: Mismatch, attempts: int) -> dict[str, int]:
    """tunlabd's counters (those not zero) after `attempts` refused handshakes. A handshake
    message tunlabd drops counts under its drop reason only; one it takes, in rx_handshakes
    (docs/dbus-api.md, "Counters")."""
    n = attempts
    if case.tunlabd_is_client:
        sent = {"handshake_initiations_sent": n, "tx_packets": n, "tx_bytes": n * INITIATION_SIZE}
        if case.broken == "preshared-keys-differ":
            # wireguard-go answers; the answer does not authenticate under our preshared key.
            return {**sent, "drop_decrypt_failed": n}
        return sent  # wireguard-go refuses the initiation silently
    return {
        # The initiation's mac1 is for a key that is not ours.
        "wg-has-wrong-key": {"drop_bad_mac": n},
        # Its mac1 is right, but the sender's static key is no peer of ours.
        "tunlabd-has-wrong-key": {"drop_unknown_peer": n},
        # We take it and answer (and count the bytes of both); wireguard-go refuses the answer.
        "preshared-keys-differ": {"rx_handshakes": n, "handshake_initiations_received": n,
                                  "handshake_responses_sent": n, "rx_bytes": n * INITIATION_SIZE,
                                  "tx_packets": n, "tx_bytes": n * RESPONSE_SIZE},
    }[case.broken]


@pytest.mark.parametrize("case", MISMATCHES, ids=mismatch_id)
def test_wrong_key_completes_no_handshake_and_is_counted(
        lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path, case: Mismatch) -> None:
    stranger = Keypair.generate()
    psk = psk_file(tmp_path, "tunlabd")
    other_psk = psk_file(tmp_path, "other")
    broken = {
        # tunlabd has a public key for its peer that is not the peer's.
        "tunlabd-has-wrong-key": {"wg_really_uses": stranger},
        # wireguard-go has a public key for tunlabd that is not tunlabd's.
        "wg-has-wrong-key": {"wg_believes_tunlabd_is": stranger.public},
        "preshared-keys-differ": {"tunlabd_psk": psk, "wg_psk": other_psk},
    }[case.broken]
    pair = connect(lab, start_wireguard_go, tmp_path, case.tunlabd_is_client, **broken)

    lab.ping_unanswered("u", SERVER_TUNNEL, 3)

    # tunlabd's counters, exactly, against the attempts the other side counted. Polled: the
    # last attempt may still be on its way; a retry (every 5 s) just raises both sides.
    last: list[Any] = []

    def settled() -> int | None:
        counters = nonzero(pair.daemon.tunnel()["counters"])
        attempts = refused_attempts(case, pair)
        last[:] = [counters, attempts]
        if attempts and counters == expected_counters(case, attempts):
            return attempts
        return None

    try:
        wait_until(settled, 5, "tunlabd's counters to account for every refused handshake")
    except AssertionError as error:
        counters, attempts = last
        raise AssertionError(f"{error}: {attempts} attempt(s) seen by wireguard-go, tunlabd "
                             f"counted {counters}, expected "
                             f"{expected_counters(case, attempts or 0)}") from None
    # No handshake on either side.
    assert pair.tunlabd_peer()["latest_handshake"] == 0
    assert pair.wg_peer()["latest_handshake"] == 0
    if case.broken == "preshared-keys-differ" and not case.tunlabd_is_client:
        # wireguard-go refused every response tunlabd sent (polled like the counters).
        wait_until(lambda: log_lines_with(pair.wg, "Received invalid response message") ==
                   pair.daemon.tunnel()["counters"]["handshake_responses_sent"], 5,
                   "wireguard-go to refuse every response tunlabd sent")

    # Repaired on wireguard-go's side, the same pair completes a handshake: the key (and
    # nothing else in the setup) was what stopped it.
    if case.broken == "tunlabd-has-wrong-key":
        pair.wg.set("private-key", str(pair.key_file(pair.wg_keys, "wg-repaired")))
    elif case.broken == "wg-has-wrong-key":
        pair.wg.set("peer", stranger.public, "remove")
        pair.wg.add_peer(pair.tunlabd_keys.public,
                         [f"{CLIENT_TUNNEL}/32"] if case.tunlabd_is_client else ["10.7.0.0/24"],
                         endpoint=None if case.tunlabd_is_client
                         else f"{SERVER_ADDRESS}:{WIREGUARD_PORT}")
    else:
        pair.wg.set("peer", pair.tunlabd_keys.public, "preshared-key", str(psk))
    ping_eventually_answered(lab, SERVER_TUNNEL)
    assert pair.daemon.tunnel()["counters"]["handshakes_completed"] == 1
    assert pair.tunlabd_peer()["latest_handshake"] > 0


def test_wireguard_go_client_roams_and_a_replay_does_not_move_it(
        lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path) -> None:
    """wireguard-go (the client) moves to a new port: its next authenticated message moves
    tunlabd's endpoint for it, under the same session (no new handshake). A genuine message
    replayed from elsewhere authenticates no one: dropped as a replay, endpoint unchanged."""
    pair = connect(lab, start_wireguard_go, tmp_path, tunlabd_is_client=False,
                   client_port=40001)
    with Capture(lab.ns["s"]) as capture:
        ping_answered(lab, SERVER_TUNNEL)
        # The pings as an attacker on the path recorded them.
        recorded = [datagram.payload for datagram in capture.datagrams()
                    if not datagram.outgoing
                    and datagram.destination == (SERVER_ADDRESS, WIREGUARD_PORT)
                    and datagram.payload[0] == TRANSPORT
                    and len(datagram.payload) == PING_MESSAGE_BYTES]
    assert len(recorded) == PINGS, f"captured {len(recorded)} pings of {PINGS}"
    assert pair.tunlabd_peer()["endpoint"] == f"{U_ADDRESS}:40001"

    pair.wg.set("listen-port", "40002")
    ping_answered(lab, SERVER_TUNNEL)
    tunnel = pair.daemon.tunnel()
    assert tunnel["peers"][0]["endpoint"] == f"{U_ADDRESS}:40002", tunnel["peers"]
    # The session carried on: still the one handshake.
    assert tunnel["counters"]["handshakes_completed"] == 1, tunnel["counters"]

    before = tunnel["counters"]
    replayer = lab.socket("u")
    replayer.bind((U_ADDRESS, 40003))
    replayer.sendto(recorded[0], (SERVER_ADDRESS, WIREGUARD_PORT))
    after = pair.daemon.wait_for_tunnel(
        lambda t: t["counters"]["drop_replay"] > before["drop_replay"],
        "the replayed message to be dropped")["counters"]
    assert nonzero(counter_deltas(before, after)) == {"drop_replay": 1}
    assert pair.tunlabd_peer()["endpoint"] == f"{U_ADDRESS}:40002"
    ping_answered(lab, SERVER_TUNNEL)


def test_restarted_tunlabd_client_on_a_new_port_is_followed(
        lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path) -> None:
    """tunlabd (the client) restarts from another port: a new handshake from there moves
    wireguard-go's endpoint for it, and the tunnel carries on."""
    pair = connect(lab, start_wireguard_go, tmp_path, tunlabd_is_client=True,
                   client_port=40001)
    ping_answered(lab, SERVER_TUNNEL)
    first_handshake = pair.wg_peer()["latest_handshake"]
    assert pair.wg_peer()["endpoint"] == f"{U_ADDRESS}:40001"

    pair.daemon.stop()
    config = pair.daemon.tunnels["wg"]
    pair.daemon.write_config({"wg": {**config, "listen_port": 40002}})
    pair.daemon.start()
    ping_answered(lab, SERVER_TUNNEL)

    theirs = pair.wg_peer()
    assert theirs["endpoint"] == f"{U_ADDRESS}:40002", theirs
    assert theirs["latest_handshake"] >= first_handshake > 0
    counters = pair.daemon.tunnel()["counters"]
    assert counters["handshakes_completed"] == 1, counters
