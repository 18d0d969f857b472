"""tunlabd ↔ tunlabd over the `wireguard` protocol: what the plain lab's tests check, and what
keys add.

- Two clients (U, U2) reach V (192.168.60.5, behind the server-router S) at the same time
  through one server, each its own peer by its public key.
- Counters are exact: `ping -c N` moves tx/rx packets by N on both sides, and what one side
  sent (bytes of WireGuard messages) the other received; a handshake is one initiation and
  one response, counted as such on both sides.
- A peer sending from an inner address outside its allowed IPs is dropped, and counted
  (drop_bad_source), once per packet.
- A tunnel made over D-Bus (tunlabctl create --protocol wireguard, add-peer --public-key,
  with a preshared key) keeps its keys across a SIGTERM restart and a kill -9: the same
  public keys, the same peers, the tunnel works again; the saved state, which holds the
  private and preshared keys, is mode 0600, and neither key is ever shown.
- Keys in tunnel files (README, "Key files"): a key file that holds no key, is missing, may
  be read or written by others, or belongs to another user is refused with the documented
  line naming the tunnel file, the field and the key file (its content never quoted); the
  other tunnels start anyway.
- Refused over the bus with InvalidArgument (and changing nothing): TAP with wireguard,
  learning peers, a peer without a public key or with a malformed one, keys on a plain
  tunnel; a public key twice is AlreadyExists.

The lab's IPv6 is off (harness/netns.py), so the only packets in the tunnel are the tests'.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.counters import counter_deltas
from harness.daemon import Daemon
from harness.dbus_client import MANAGER, MANAGER_PATH, Client, options
from harness.lab import Lab
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, U2_ADDRESS, U_ADDRESS, V_ADDRESS)
from harness.traffic import PING_PACKET_BYTES
from harness.wireguard import (WG_NETWORK, WIREGUARD_PORT, Keypair, peer_config,
                               preshared_key, public_key_of, transport_message_size,
                               tunnel_config)
from harness.wireguard_messages import INITIATION_SIZE, RESPONSE_SIZE

SERVER_TUNNEL = "10.7.0.1"
U_TUNNEL = "10.7.0.2"
U2_TUNNEL = "10.7.0.3"
SERVER_ENDPOINT = f"{SERVER_ADDRESS}:{WIREGUARD_PORT}"
PING_MESSAGE_BYTES = transport_message_size(PING_PACKET_BYTES)  # 84 → 128 on the wire

INVALID = "org.tunlab1.Error.InvalidArgument"
EXISTS = "org.tunlab1.Error.AlreadyExists"

# What tunlabd logs about a key file, after "'<path>' " (README, "Key files").
DOES_NOT_HOLD_A_KEY = ("does not hold a key: one line of 44 characters, 32 bytes in base64 "
                       "(as `tunlabctl genkey` or `wg genkey` print)")
NOBODY = 65534


# ── the lab over WireGuard, from tunnel files ───────────────────────────────────────────


def server_tunnel(workdir: Path, keys: Keypair, clients: dict[str, Keypair]) -> dict[str, Any]:
    """The server-router: listens on 51820, one peer per client (tunnel address → keys). Its
    tunnel address's /24 routes the replies from V back into the tunnel."""
    return tunnel_config(keys.write_private(workdir / "server.key"), [f"{SERVER_TUNNEL}/24"],
                         [peer_config(client_keys.public, [f"{address}/32"])
                          for address, client_keys in clients.items()],
                         listen_port=WIREGUARD_PORT)


def client_tunnel(workdir: Path, keys: Keypair, address: str, server: Keypair,
                  extra_addresses: tuple[str, ...] = ()) -> dict[str, Any]:
    """A client: the server is its one peer, for the tunnel network and the private network
    behind it, which is routed into the tunnel (as the plain lab's client_config does)."""
    return tunnel_config(keys.write_private(workdir / f"client-{address}.key"),
                         [f"{address}/24", *extra_addresses],
                         [peer_config(server.public, [WG_NETWORK, PRIVATE_NETWORK],
                                      endpoint=SERVER_ENDPOINT)],
                         routes=[PRIVATE_NETWORK])


def start_pair(lab: Lab, workdir: Path, extra_client_addresses: tuple[str, ...] = ()
               ) -> tuple[Daemon, Daemon]:
    server_keys, client_keys = Keypair.generate(), Keypair.generate()
    server = lab.start_daemon("s", {"wg": server_tunnel(workdir, server_keys,
                                                        {U_TUNNEL: client_keys})})
    client = lab.start_daemon("u", {"wg": client_tunnel(workdir, client_keys, U_TUNNEL,
                                                        server_keys, extra_client_addresses)})
    return server, client


def ping_passes(lab: Lab, role: str = "u", destination: str = V_ADDRESS, count: int = 5
                ) -> None:
    result = lab.ping(role, destination, count, 0.02)
    assert (result.transmitted, result.received) == (count, count), result.output


def only_peer(tunnel: dict[str, Any]) -> dict[str, Any]:
    (peer,) = tunnel["peers"]
    return peer


def nonzero(counters: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in counters.items() if value}


def handshake_counters(counters: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in counters.items()
            if (key.startswith("handshake") or key == "rx_handshakes") and value}


# ── the plain lab's checks, over WireGuard ──────────────────────────────────────────────


def test_two_clients_ping_v_concurrently(lab: Lab, tmp_path: Path) -> None:
    server_keys, u_keys, u2_keys = Keypair.generate(), Keypair.generate(), Keypair.generate()
    server = lab.start_daemon("s", {"wg": server_tunnel(
        tmp_path, server_keys, {U_TUNNEL: u_keys, U2_TUNNEL: u2_keys})})
    clients = [lab.start_daemon("u", {"wg": client_tunnel(tmp_path, u_keys, U_TUNNEL,
                                                          server_keys)}),
               lab.start_daemon("u2", {"wg": client_tunnel(tmp_path, u2_keys, U2_TUNNEL,
                                                           server_keys)})]

    pings = 40
    from_u = lab.ping_in_background("u", V_ADDRESS, pings, interval=0.02)
    from_u2 = lab.ping_in_background("u2", V_ADDRESS, pings, interval=0.02)
    for result in (from_u.result(), from_u2.result()):
        assert (result.transmitted, result.received) == (pings, pings), result.output

    # Each client is the server's peer of its key, found at its real address, with a
    # handshake of its own, and carried its own pings: N requests in, the response to its
    # handshake and N replies out (polled: a counter moves just after its packet).
    def carried_all(tunnel: dict[str, Any]) -> bool:
        return sorted((peer["counters"]["rx_packets"], peer["counters"]["tx_packets"])
                      for peer in tunnel["peers"]) == [(pings, pings + 1)] * 2

    tunnel = server.wait_for_tunnel(carried_all, "every ping in the server's peer counters")
    peers = {peer["public_key"]: peer for peer in tunnel["peers"]}
    assert set(peers) == {u_keys.public, u2_keys.public}, tunnel["peers"]
    for keys, address, daemon in ((u_keys, U_ADDRESS, clients[0]),
                                  (u2_keys, U2_ADDRESS, clients[1])):
        peer = peers[keys.public]
        client_tunnel_status = daemon.tunnel()
        assert peer["endpoint"] == f"{address}:{client_tunnel_status['listen_port']}", peer
        assert peer["latest_handshake"] > 0, peer
        assert peer["allowed_ips"] == [f"{U_TUNNEL if keys is u_keys else U2_TUNNEL}/32"], peer
        assert client_tunnel_status["counters"]["handshakes_completed"] == 1
    assert tunnel["counters"]["handshakes_completed"] == 2, tunnel["counters"]


def test_counters_match_pings_exactly(lab: Lab, tmp_path: Path) -> None:
    server, client = start_pair(lab, tmp_path)

    # One ping first: the handshake, then both per-peer baselines exist.
    ping_passes(lab, count=1)
    client_before = client.wait_for_tunnel(
        lambda t: t["counters"]["rx_packets"] == 1, "the warm-up reply in U's counters")
    server_before = server.wait_for_tunnel(
        lambda t: t["counters"]["tx_packets"] == 2, "the warm-up reply in the server's counters")
    # One handshake: U initiated, the server answered, both count it complete.
    assert handshake_counters(client_before["counters"]) == {
        "handshake_initiations_sent": 1, "handshake_responses_received": 1,
        "handshakes_completed": 1, "rx_handshakes": 1}, client_before["counters"]
    assert handshake_counters(server_before["counters"]) == {
        "handshake_initiations_received": 1, "handshake_responses_sent": 1,
        "handshakes_completed": 1, "rx_handshakes": 1}, server_before["counters"]
    # tx counts every message sent (the handshake's too), in bytes as `wg show` does.
    assert (client_before["counters"]["tx_packets"], client_before["counters"]["tx_bytes"]) == \
        (2, INITIATION_SIZE + PING_MESSAGE_BYTES), client_before["counters"]
    assert (server_before["counters"]["tx_packets"], server_before["counters"]["tx_bytes"]) == \
        (2, RESPONSE_SIZE + PING_MESSAGE_BYTES), server_before["counters"]

    pings = 25
    result = lab.ping("u", V_ADDRESS, pings, interval=0.02)
    assert (result.transmitted, result.received) == (pings, pings), result.output

    # ping has its replies, but a daemon bumps a counter just after it moved the packet:
    # poll until the totals arrive, then compare exactly (an overshoot fails below).
    client_after = client.wait_for_tunnel(
        lambda t: t["counters"]["rx_packets"] >= client_before["counters"]["rx_packets"] + pings,
        "U's rx_packets")
    server_after = server.wait_for_tunnel(
        lambda t: t["counters"]["tx_packets"] >= server_before["counters"]["tx_packets"] + pings,
        "the server's tx_packets")
    client_delta = counter_deltas(client_before["counters"], client_after["counters"])
    server_delta = counter_deltas(server_before["counters"], server_after["counters"])

    # N requests out of U and into the server, N replies back; one 128-byte message each;
    # nothing else moved: no handshake, no keepalive, no drop.
    traffic = {"tx_packets": pings, "tx_bytes": pings * PING_MESSAGE_BYTES,
               "rx_packets": pings, "rx_bytes": pings * PING_MESSAGE_BYTES}
    assert nonzero(client_delta) == traffic, client_delta
    assert nonzero(server_delta) == traffic, server_delta
    # The per-peer counters tell the same story.
    for before, after in ((client_before, client_after), (server_before, server_after)):
        peer_before, peer_after = only_peer(before), only_peer(after)
        assert counter_deltas(peer_before["counters"], peer_after["counters"]) == traffic
        assert peer_after["last_receive"] > peer_before["last_receive"] > 0
        assert peer_after["last_send"] > peer_before["last_send"] > 0

    # Over the tunnel's whole life, handshake included: what one sent, the other received.
    assert client_after["counters"]["tx_bytes"] == server_after["counters"]["rx_bytes"]
    assert server_after["counters"]["tx_bytes"] == client_after["counters"]["rx_bytes"]


def test_inner_source_outside_allowed_ips_is_dropped_and_counted(lab: Lab,
                                                                  tmp_path: Path) -> None:
    # U's device gets a second address; the server allows only 10.7.0.2/32 from U's key.
    outside = "10.7.0.50"
    server, client = start_pair(lab, tmp_path, extra_client_addresses=(f"{outside}/32",))
    ping_passes(lab, destination=SERVER_TUNNEL, count=1)  # the session, first
    server_before = server.tunnel()["counters"]
    client_before = client.tunnel()["counters"]

    pings = 5
    result = lab.exec("u", ["ping", "-n", "-c", str(pings), "-i", "0.05", "-W", "1",
                            "-I", outside, SERVER_TUNNEL], check=False)
    assert " 0 received" in result.stdout, result.stdout

    # Every one of them was sealed by U, authenticated by the server, and refused there.
    server_after = server.wait_for_tunnel(
        lambda t: t["counters"]["drop_bad_source"] >= pings, "the drops to be counted")
    assert nonzero(counter_deltas(server_before, server_after["counters"])) == \
        {"drop_bad_source": pings}, server_after["counters"]
    client_delta = counter_deltas(client_before, client.tunnel()["counters"])
    assert nonzero(client_delta) == {"tx_packets": pings,
                                     "tx_bytes": pings * PING_MESSAGE_BYTES}, client_delta
    # The session is not harmed: U's own address still gets through.
    ping_passes(lab, destination=SERVER_TUNNEL)


# ── made over D-Bus, kept across restarts ───────────────────────────────────────────────


def configured(daemon: Daemon) -> dict[str, Any]:
    """What the user configured, as tunlabctl shows it: keys, addresses, routes, peers
    (without endpoints: the server's peer has only the one it learned, which is not saved;
    the client's is checked on its own)."""
    result = {}
    for name, tunnel in daemon.bus_status().items():
        result[name] = {key: tunnel[key] for key in ("protocol", "public_key", "listen_port",
                                                     "mtu", "addresses", "routes", "state")}
        result[name]["peers"] = sorted(
            (peer["public_key"], tuple(peer["allowed_ips"]), peer["has_preshared_key"])
            for peer in tunnel["peers"])
    return result


def saved_state(daemon: Daemon) -> dict[str, Any]:
    """The saved state of tunnel "wg", checked first to be private: it holds the keys, so
    only its owner may read it (and it is the only tunnel saved)."""
    files = sorted((daemon.state_dir / "tunnels").glob("*.json"))
    assert [path.name for path in files] == ["wg.json"], files
    mode = stat.S_IMODE(files[0].stat().st_mode)
    assert mode == 0o600, f"{files[0]} has mode {mode:o}"
    return json.loads(files[0].read_text())


def assert_secrets_not_shown(daemon: Daemon, secrets: list[str]) -> None:
    """Neither tunlabctl, nor status.json, nor the log shows a private or preshared key."""
    shown = daemon.ctl("--json", "status") + daemon.status_path.read_text()
    shown += daemon.log_path.read_text()
    for secret in secrets:
        assert secret not in shown


@pytest.mark.usefixtures("tunlabctl")
def test_bus_made_wireguard_tunnels_survive_sigterm_and_kill_9(lab: Lab, tmp_path: Path) -> None:
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    client_keys = Keypair.generate()
    psk = tmp_path / "pair.psk"
    psk.write_text(preshared_key() + "\n")
    psk.chmod(0o600)

    # The server makes its own key; the client's comes from a file tunlabctl reads.
    server.ctl("create", "wg", "--protocol", "wireguard", "--address", f"{SERVER_TUNNEL}/24",
               "--listen-port", str(WIREGUARD_PORT))
    client.ctl("create", "wg", "--protocol", "wireguard", "--private-key-file",
               str(client_keys.write_private(tmp_path / "client.key")),
               "--address", f"{U_TUNNEL}/24", "--listen-port", "40001")
    server_public = server.bus_status()["wg"]["public_key"]
    assert client.bus_status()["wg"]["public_key"] == client_keys.public
    server.ctl("add-peer", "--public-key", client_keys.public, "--allowed-ips",
               f"{U_TUNNEL}/32", "--preshared-key-file", str(psk))
    client.ctl("add-peer", SERVER_ENDPOINT, "--public-key", server_public, "--allowed-ips",
               f"{WG_NETWORK},{PRIVATE_NETWORK}", "--preshared-key-file", str(psk))
    client.ctl("add-route", PRIVATE_NETWORK)
    expected = {"server": configured(server), "client": configured(client)}
    assert expected["client"]["wg"]["peers"] == [
        (server_public, (WG_NETWORK, PRIVATE_NETWORK), True)]
    assert expected["server"]["wg"]["peers"] == [(client_keys.public, (f"{U_TUNNEL}/32",), True)]
    # The key tunlabd made for the server is saved (it is the one the public key is of).
    server_private = saved_state(server)["config"]["private_key"]
    assert public_key_of(server_private) == server_public
    secrets = [server_private, client_keys.private, psk.read_text().strip()]

    def assert_restored() -> None:
        assert configured(server) == expected["server"]
        assert configured(client) == expected["client"]
        assert only_peer(client.bus_status()["wg"])["endpoint"] == SERVER_ENDPOINT
        for daemon in (server, client):
            saved_state(daemon)
            assert_secrets_not_shown(daemon, secrets)
        # The handshake, with the preshared key on both sides, proves the private and
        # preshared keys came back as they were.
        ping_passes(lab)
        assert client.tunnel()["counters"]["handshakes_completed"] == 1

    assert_restored()

    # Clean restart of both.
    client.stop()
    server.stop()
    server.start()
    client.start()
    assert_restored()

    # A change, and at once kill -9: it must have been on disk when the call returned.
    u2_keys = Keypair.generate()
    server.ctl("add-peer", "--public-key", u2_keys.public, "--allowed-ips", f"{U2_TUNNEL}/32")
    expected["server"]["wg"]["peers"] = sorted(
        expected["server"]["wg"]["peers"] + [(u2_keys.public, (f"{U2_TUNNEL}/32",), False)])
    client.crash()
    server.crash()
    server.start()
    client.start()
    assert_restored()


# ── keys in tunnel files ────────────────────────────────────────────────────────────────


def error_lines(daemon: Daemon) -> list[str]:
    return [line for line in daemon.log_path.read_text().splitlines() if line.startswith("<3>")]


@pytest.fixture
def key_dir() -> Iterator[Path]:
    """A directory for key files with a short path: tunlabd quotes at most 64 characters of
    a path in its messages (then "…"), and pytest's tmp_path is longer."""
    directory = Path(tempfile.mkdtemp(prefix="tlk-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_key_files_that_hold_no_key_are_refused(lab: Lab, key_dir: Path) -> None:
    keys, peer = Keypair.generate(), Keypair.generate()
    good = keys.write_private(key_dir / "good.key")
    # Secret-looking but not 32 bytes: never to be quoted back.
    not_a_key = key_dir / "not-a-key.key"
    not_a_key.write_text("c2VjcmV0LWJ1dC1ub3QtMzItYnl0ZXM=\n")
    empty = key_dir / "empty.key"
    empty.write_text("")
    missing = key_dir / "missing.key"
    for path in (not_a_key, empty):
        path.chmod(0o600)

    def tunnel(key_file: Path, number: int, **peer_options: Any) -> dict[str, Any]:
        return tunnel_config(key_file, [f"10.7.{number}.1/24"],
                             [peer_config(peer.public, [f"10.7.{number}.2/32"],
                                          **peer_options)])

    # A key inline in a tunnel file (which others may read) is refused as well.
    inline = tunnel(good, 5)
    del inline["private_key_file"]
    inline["private_key"] = keys.private
    daemon = lab.start_daemon("s", {
        "good": tunnel(good, 0),
        "notakey": tunnel(not_a_key, 1),
        "empty": tunnel(empty, 2),
        "missing": tunnel(missing, 3),
        "badpsk": tunnel(good, 4, preshared_key_file=not_a_key),
        "inline": inline,
    })

    assert list(daemon.status()["tunnels"]) == ["good"]
    config = daemon.config_dir
    # One line per bad file, in the files' order, as the README lists them.
    assert error_lines(daemon) == [
        f"<3>{config}/badpsk.json: peers[0].preshared_key_file: '{not_a_key}' "
        f"{DOES_NOT_HOLD_A_KEY}",
        f"<3>{config}/empty.json: private_key_file: '{empty}' {DOES_NOT_HOLD_A_KEY}",
        f"<3>{config}/inline.json: private_key: keys do not belong in this file, which others "
        f"may read: put it in a file of its own (mode 600, owned by tunlabd's user) and name "
        f"that file in private_key_file",
        f"<3>{config}/missing.json: private_key_file: '{missing}' cannot be opened: "
        f"No such file or directory",
        f"<3>{config}/notakey.json: private_key_file: '{not_a_key}' {DOES_NOT_HOLD_A_KEY}",
    ]
    log = daemon.log_path.read_text()
    assert "<4>5 bad configuration file(s), 0 tunnel(s) failed to start; the others run" in log
    # The content of a key file, right or wrong, is never repeated.
    assert "c2VjcmV0LWJ1dC1ub3QtMzItYnl0ZXM=" not in log
    assert keys.private not in log


@pytest.mark.parametrize("mode, owner, problem", [
    (0o644, 0, "may be read or written by others (mode 0644): make it mode 600 (chmod 600)"),
    (0o640, 0, "may be read or written by others (mode 0640): make it mode 600 (chmod 600)"),
    (0o620, 0, "may be read or written by others (mode 0620): make it mode 600 (chmod 600)"),
    (0o600, NOBODY, f"belongs to uid {NOBODY}, not to tunlabd's user (uid 0): chown it"),
], ids=["world-readable", "group-readable", "group-writable", "another-owner"])
def test_private_key_file_others_could_read_or_swap_is_refused(
        lab: Lab, key_dir: Path, mode: int, owner: int, problem: str) -> None:
    """Like ssh with its private keys: a key file that others may read or write, or that
    another user owns, is refused (and its key not used), with the documented line."""
    keys = Keypair.generate()
    good = keys.write_private(key_dir / "good.key")
    loose = keys.write_private(key_dir / "loose.key", mode)
    os.chown(loose, owner, owner)
    daemon = lab.start_daemon("s", {"good": tunnel_config(good, ["10.7.0.1/24"], []),
                                    "loose": tunnel_config(loose, ["10.7.1.1/24"], [])})

    assert list(daemon.status()["tunnels"]) == ["good"]
    assert error_lines(daemon) == [
        f"<3>{daemon.config_dir}/loose.json: private_key_file: '{loose}' {problem}"]


# ── refused over the bus ────────────────────────────────────────────────────────────────


@pytest.mark.usefixtures("tunlabctl")
def test_wireguard_refusals_over_the_bus(lab: Lab) -> None:
    daemon = lab.start_daemon("u")
    daemon.ctl("create", "wg", "--protocol", "wireguard", "--address", f"{U_TUNNEL}/24")
    daemon.ctl("create", "plain", "--address", "192.168.53.99/24")
    peer_key = Keypair.generate().public
    daemon.ctl("--tunnel", "wg", "add-peer", "--public-key", peer_key, "--allowed-ips",
               f"{SERVER_TUNNEL}/32")
    client = Client(daemon.bus.address)
    before = client.snapshot()
    links_before = lab.ip("u", "-o", "link").stdout

    def refused(*args: str) -> tuple[str, str]:
        result = daemon.tunlabctl(*args)
        assert result.returncode == 1, (args, result.returncode, result.stderr)
        match = re.fullmatch(r"tunlabctl: (org\.[\w.]+): (.*)\n", result.stderr, re.S)
        assert match, result.stderr
        return match.group(1), match.group(2)

    # TAP carries Ethernet frames; WireGuard carries IP packets only.
    assert refused("create", "tapwg", "--mode", "tap", "--protocol", "wireguard") == \
        (INVALID, "mode: WireGuard carries IP packets only: protocol wireguard needs mode tun")
    # A wireguard tunnel does not learn peers (tunlabctl has no option for it: the bus).
    name, message = client.error(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "learner",
                                 options({"protocol": ("s", "wireguard"),
                                          "learn_peers": ("b", True)}))
    assert (name, message.split(":")[0]) == (INVALID, "learn_peers"), message
    # A wireguard peer is its public key: none, a malformed one, the same one twice.
    assert refused("--tunnel", "wg", "add-peer", SERVER_ENDPOINT, "--allowed-ips",
                   "10.7.0.9/32") == \
        (INVALID, "public_key: a wireguard peer is its public key: it must be given")
    name, message = refused("--tunnel", "wg", "add-peer", "--public-key", "abc")
    assert (name, message.split(":")[0]) == (INVALID, "public_key"), message
    name, message = refused("--tunnel", "wg", "add-peer", "--public-key", peer_key,
                            "--allowed-ips", "10.7.0.9/32")
    assert name == EXISTS, (name, message)
    # Keys are for wireguard only.
    assert refused("--tunnel", "plain", "add-peer", "10.9.0.11:9090", "--public-key",
                   peer_key) == \
        (INVALID, "public_key: keys are for protocol wireguard; this tunnel's is plain")

    # Nothing changed: objects, properties, devices, saved state.
    assert client.snapshot() == before
    assert lab.ip("u", "-o", "link").stdout == links_before
    assert sorted(path.name for path in (daemon.state_dir / "tunnels").iterdir()) == \
        ["plain.json", "wg.json"]
    client.close()
