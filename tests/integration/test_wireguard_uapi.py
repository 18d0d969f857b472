"""Debian's stock `wg` on tunlab's `wireguard` tunnels, through WireGuard's cross-platform
userspace API (UAPI): every running wireguard tunnel is served on
`<uapi dir>/<interface>.sock`, and what `wg` shows and changes there is what the D-Bus API
shows and changes.

- Sockets: one per running wireguard tunnel (none for plain ones), srwx------ and root's
  (the daemon's user here), gone when the tunnel is deleted or the daemon stops.
- `get=1` answers exactly as wireguard-go does, with the D-Bus figures: keys, port, the
  learned endpoint, the latest handshake, the transfer (per-peer Counters tx/rx_bytes),
  allowed IPs; `wg show` in every form says the same. Several requests per connection.
- `wg set`/`setconf`/`syncconf` change the tunnel as one change each: the D-Bus objects and
  signals follow (PeerAdded, PeerRemoved, PropertiesChanged), an allowed IP given to one peer
  leaves the other, and the change was saved before `wg` returned (kill -9 right after, the
  restarted daemon has it). `wg showconf` round-trips. A new listen port restarts the tunnel:
  it listens there and traffic flows again after a new handshake.
- Metrics: `tunlabctl --json status` per peer equals `wg show all dump`, and the README's
  node_exporter textfile snippet turns the dump into valid Prometheus text with those figures.

Two tunlabd, U and S, set up with tunlabctl (harness/wireguard_pair.py); traffic is pings
inside the lab. The lab's IPv6 is off, so nothing but the tests' packets moves the counters;
still, the passive keepalive (10 s after the last data) can: figures are compared from a
snapshot taken between two equal D-Bus readings.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.dbus_client import PEER, TUNNEL as TUNNEL_INTERFACE, Client
from harness.lab import Lab
from harness.monitor import properties_changed, subscribed_monitor
from harness.process import wait_until
from harness.seed import SERVER_ADDRESS, U_ADDRESS
from harness.uapi import (UapiConnection, errno_reply, hex_key, in_uapi_directory, parse_get,
                          socket_path, uapi_request)
from harness.wireguard import WIREGUARD_PORT, Keypair, preshared_key
from harness.wireguard_pair import (CLIENT_ENDPOINT, CLIENT_INTERFACE, CLIENT_PORT,
                                    CLIENT_TUNNEL, SERVER_ENDPOINT, SERVER_INTERFACE,
                                    SERVER_TUNNEL, TUNNEL, TUNNEL_PATH, start_pair)

pytestmark = pytest.mark.usefixtures("tunlabctl")

README = Path(__file__).resolve().parents[2] / "README.md"
README_SNIPPET_MARKER = "# tunlab: wireguard textfile collector"
ZERO_KEY = "0" * 64
SNAPSHOT_TIMEOUT = 30.0  # a passive keepalive at most every 10 s: two quiet readings come soon


# ── helpers ─────────────────────────────────────────────────────────────────────────────


def live_figures(status: dict[str, Any]) -> dict[str, Any]:
    """What moves on its own in `tunlabctl --json status` (tunnel name → status): per peer
    its counters, endpoint and latest handshake."""
    return {name: {peer["public_key"]: (peer["counters"], peer["endpoint"],
                                        peer["latest_handshake"])
                   for peer in tunnel["peers"]}
            for name, tunnel in status.items()}


def quiet_snapshot(read_bus: Callable[[], dict[str, Any]], read_other: Callable[[], Any]
                   ) -> tuple[dict[str, Any], Any]:
    """(bus status, other) read while nothing moved: the bus status before and after
    `read_other()` agree on every live figure. Retries until they do."""
    def attempt() -> tuple[dict[str, Any], Any] | None:
        before = read_bus()
        other = read_other()
        after = read_bus()
        return (after, other) if live_figures(before) == live_figures(after) else None

    return wait_until(attempt, SNAPSHOT_TIMEOUT, "a reading with no traffic in between",
                      interval=0.2)


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def seconds(microseconds: int) -> int:
    return microseconds // 1_000_000


def dbus_peers(daemon, tunnel_path: str = TUNNEL_PATH) -> dict[str, dict[str, Any]]:
    """The tunnel's peers over D-Bus (Tunnel.Peers, then each Peer's properties), by public
    key; each with its object path under "path"."""
    with Client(daemon.bus.address) as bus:
        peers = {}
        for path in bus.get(tunnel_path, TUNNEL_INTERFACE, "Peers"):
            properties = bus.get_all(path, PEER)
            properties["path"] = path
            peers[properties["PublicKey"]] = properties
        return peers


def configured_peers(daemon) -> dict[str, tuple[list[str], str, int, bool]]:
    """Per public key what a user configures: sorted allowed IPs, endpoint, keepalive,
    whether it has a preshared key."""
    return {key: (sorted(peer["AllowedIPs"]), peer["Endpoint"], peer["Keepalive"],
                  peer["HasPresharedKey"])
            for key, peer in dbus_peers(daemon).items()}


def write_conf(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def parse_conf(text: str) -> list[tuple[str, dict[str, str]]]:
    """A wg(8) configuration as [(section, {key: value})], sections in order."""
    sections: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            sections.append((line, {}))
            continue
        key, _, value = line.partition("=")
        sections[-1][1][key.strip()] = value.strip()
    return sections


# ── sockets ─────────────────────────────────────────────────────────────────────────────


def test_a_socket_per_running_wireguard_tunnel_only(lab: Lab) -> None:
    daemon = lab.start_daemon("s")
    daemon.create_server_tunnel()  # plain, named "lab"
    plain_interface = daemon.bus_status()["lab"]["interface"]

    def sockets() -> list[str]:
        if not daemon.uapi_dir.exists():
            return []
        return sorted(os.listdir(daemon.uapi_dir))

    assert sockets() == [], "a plain tunnel has no UAPI socket"

    daemon.ctl("create", TUNNEL, "--protocol", "wireguard", "--interface", SERVER_INTERFACE,
               "--address", f"{SERVER_TUNNEL}/24", "--listen-port", str(WIREGUARD_PORT))
    path = socket_path(daemon.uapi_dir, SERVER_INTERFACE)
    wait_until(path.exists, 5, f"{path} to appear")
    assert sockets() == [f"{SERVER_INTERFACE}.sock"]
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode), oct(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o700, f"mode {stat.S_IMODE(info.st_mode):o}"
    assert info.st_uid == os.geteuid(), info.st_uid  # tunlabd runs as root here
    # `wg` sees the wireguard tunnel, and only it.
    assert daemon.wg("show", "interfaces").stdout.split() == [SERVER_INTERFACE]
    assert plain_interface not in daemon.wg("show", "all", "dump").stdout

    daemon.ctl("delete", TUNNEL)
    wait_until(lambda: not path.exists(), 5, f"{path} to go with its tunnel")
    assert daemon.wg("show", "interfaces").stdout.split() == []

    daemon.ctl("create", TUNNEL, "--protocol", "wireguard", "--interface", SERVER_INTERFACE,
               "--address", f"{SERVER_TUNNEL}/24", "--listen-port", str(WIREGUARD_PORT))
    wait_until(path.exists, 5, f"{path} to appear again")
    daemon.stop()
    assert not path.exists(), "the socket outlived the daemon"
    # The saved tunnel comes back with the daemon, and so does its socket.
    daemon.start()
    wait_until(path.exists, 5, f"{path} after a restart")
    assert sockets() == [f"{SERVER_INTERFACE}.sock"]


# ── reading: get=1 and wg show ──────────────────────────────────────────────────────────


def test_get_and_wg_show_say_what_dbus_says(lab: Lab, tmp_path: Path) -> None:
    pair = start_pair(lab, tmp_path)
    pair.ping(5)
    server_public, client_public = pair.server_keys.public, pair.client_keys.public

    status, reply = quiet_snapshot(pair.server.bus_status,
                                   lambda: uapi_request(pair.server_socket, "get=1\n\n"))
    tunnel = status[TUNNEL]
    assert tunnel["public_key"] == server_public
    peer = only(tunnel["peers"])
    handshake = peer["latest_handshake"]
    assert 0 < time.time() - handshake / 1e6 < 60, handshake
    assert peer["endpoint"] == CLIENT_ENDPOINT
    counters = peer["counters"]
    assert counters["tx_bytes"] > 0 and counters["rx_bytes"] > 0, counters

    interface, peers = parse_get(reply)
    nanoseconds = int(dict(only(peers))["last_handshake_time_nsec"])
    assert 0 <= nanoseconds < 10**9 and nanoseconds // 1000 == handshake % 10**6, \
        (nanoseconds, handshake)
    # Exactly wireguard-go's lines, in its order (no fwmark: it is 0).
    assert reply == (
        f"private_key={hex_key(pair.server_keys.private)}\n"
        f"listen_port={WIREGUARD_PORT}\n"
        f"public_key={hex_key(client_public)}\n"
        f"preshared_key={ZERO_KEY}\n"
        f"protocol_version=1\n"
        f"endpoint={CLIENT_ENDPOINT}\n"
        f"last_handshake_time_sec={seconds(handshake)}\n"
        f"last_handshake_time_nsec={nanoseconds}\n"
        f"tx_bytes={counters['tx_bytes']}\n"
        f"rx_bytes={counters['rx_bytes']}\n"
        f"persistent_keepalive_interval=0\n"
        f"allowed_ip={CLIENT_TUNNEL}/32\n"
        f"errno=0\n\n")

    # Several requests on one connection: get, an empty set, get again.
    with UapiConnection(pair.server_socket) as connection:
        first = connection.request("get=1\n\n")
        assert connection.request("set=1\n\n") == errno_reply(0)
        second = connection.request("get=1\n\n")
    for answer in (first, second):
        assert parse_get(answer)[0] == interface
        assert [key for key, _ in only(parse_get(answer)[1])] == \
            [key for key, _ in only(peers)]

    # wg show, every form, against the D-Bus figures of one quiet moment.
    def wg_show_all() -> dict[str, str]:
        forms = {"show": ["show"], "show-if": ["show", SERVER_INTERFACE],
                 "dump": ["show", SERVER_INTERFACE, "dump"], "all-dump": ["show", "all", "dump"]}
        for what in ("public-key", "listen-port", "peers", "latest-handshakes", "transfer",
                     "endpoints", "allowed-ips", "persistent-keepalive", "preshared-keys"):
            forms[what] = ["show", SERVER_INTERFACE, what]
        return {name: pair.server.wg(*args).stdout for name, args in forms.items()}

    status, shown = quiet_snapshot(pair.server.bus_status, wg_show_all)
    peer = only(status[TUNNEL]["peers"])
    rx, tx = peer["counters"]["rx_bytes"], peer["counters"]["tx_bytes"]
    handshake = seconds(peer["latest_handshake"])
    assert shown["public-key"] == f"{server_public}\n"
    assert shown["listen-port"] == f"{WIREGUARD_PORT}\n"
    assert shown["peers"] == f"{client_public}\n"
    assert shown["latest-handshakes"] == f"{client_public}\t{handshake}\n"
    assert shown["transfer"] == f"{client_public}\t{rx}\t{tx}\n"
    assert shown["endpoints"] == f"{client_public}\t{CLIENT_ENDPOINT}\n"
    assert shown["allowed-ips"] == f"{client_public}\t{CLIENT_TUNNEL}/32\n"
    assert shown["persistent-keepalive"] == f"{client_public}\toff\n"
    assert shown["preshared-keys"] == f"{client_public}\t(none)\n"
    dump = (f"{pair.server_keys.private}\t{server_public}\t{WIREGUARD_PORT}\toff\n"
            f"{client_public}\t(none)\t{CLIENT_ENDPOINT}\t{CLIENT_TUNNEL}/32\t{handshake}\t"
            f"{rx}\t{tx}\toff\n")
    assert shown["dump"] == dump
    assert shown["all-dump"] == "".join(f"{SERVER_INTERFACE}\t{line}\n"
                                        for line in dump.splitlines())
    for form in ("show", "show-if"):
        text = shown[form]
        assert text.startswith(f"interface: {SERVER_INTERFACE}\n"
                               f"  public key: {server_public}\n"
                               f"  private key: (hidden)\n"
                               f"  listening port: {WIREGUARD_PORT}\n\n"
                               f"peer: {client_public}\n"
                               f"  endpoint: {CLIENT_ENDPOINT}\n"
                               f"  allowed ips: {CLIENT_TUNNEL}/32\n"
                               f"  latest handshake: "), text
        assert re.search(r"\n  transfer: \S+ \S+ received, \S+ \S+ sent\n", text), text

    # The other end says the same of its side, and what one sent the other received.
    client_status, client_dump = quiet_snapshot(
        pair.client.bus_status, lambda: pair.client.wg("show", CLIENT_INTERFACE, "dump").stdout)
    client_peer = only(client_status[TUNNEL]["peers"])
    assert client_dump == (
        f"{pair.client_keys.private}\t{client_public}\t{CLIENT_PORT}\toff\n"
        f"{server_public}\t(none)\t{SERVER_ENDPOINT}\t10.7.0.0/24\t"
        f"{seconds(client_peer['latest_handshake'])}\t{client_peer['counters']['rx_bytes']}\t"
        f"{client_peer['counters']['tx_bytes']}\toff\n")
    server_peer = only(pair.server.bus_status()[TUNNEL]["peers"])
    client_peer = only(pair.client.bus_status()[TUNNEL]["peers"])
    assert client_peer["counters"]["tx_bytes"] == server_peer["counters"]["rx_bytes"]
    assert server_peer["counters"]["tx_bytes"] == client_peer["counters"]["rx_bytes"]


# ── changing: wg set, setconf, syncconf, showconf ───────────────────────────────────────


def test_wg_set_adds_moves_and_removes_peers(lab: Lab, tmp_path: Path) -> None:
    pair = start_pair(lab, tmp_path)
    pair.ping(1)
    server, client_public = pair.server, pair.client_keys.public
    monitor = subscribed_monitor(lab, server)
    client_path = dbus_peers(server)[client_public]["path"]

    # A new peer, with allowed IPs, an endpoint (in the lab's LAN, where nobody answers)
    # and a persistent keepalive.
    new = Keypair.generate().public
    server.wg("set", SERVER_INTERFACE, "peer", new, "allowed-ips", "10.7.0.50/32,10.8.0.0/24",
              "endpoint", "10.9.0.77:51820", "persistent-keepalive", "25")
    peers = dbus_peers(server)
    assert set(peers) == {client_public, new}
    new_path = peers[new]["path"]
    monitor.expect("PeerAdded", TUNNEL_PATH, {"peer": new_path})
    expected = {client_public: ([f"{CLIENT_TUNNEL}/32"], CLIENT_ENDPOINT, 0, False),
                new: (["10.7.0.50/32", "10.8.0.0/24"], "10.9.0.77:51820", 25, False)}
    assert configured_peers(server) == expected
    assert pair.server.wg("show", SERVER_INTERFACE, "peers").stdout.split() == \
        [client_public, new]  # in creation order

    # Saved before wg returned: kill -9 at once, and the restarted daemon has it (learned
    # endpoints are not saved: the client's comes back with its next message).
    server.crash()
    server.start()
    pair.wait_for_sockets()
    expected_saved = dict(expected)
    expected_saved[client_public] = ([f"{CLIENT_TUNNEL}/32"], "", 0, False)
    assert configured_peers(server) == expected_saved
    pair.restart_client()  # its session died with the server: start the handshakes over
    pair.ping(3)
    assert configured_peers(server) == expected

    monitor = subscribed_monitor(lab, server)
    peers = dbus_peers(server)
    client_path, new_path = peers[client_public]["path"], peers[new]["path"]

    # 10.7.0.50/32 given to the client's peer leaves the new one (wg set replaces the list).
    server.wg("set", SERVER_INTERFACE, "peer", client_public, "allowed-ips",
              f"{CLIENT_TUNNEL}/32,10.7.0.50/32")
    expected[client_public] = ([f"{CLIENT_TUNNEL}/32", "10.7.0.50/32"], CLIENT_ENDPOINT, 0,
                               False)
    expected[new] = (["10.8.0.0/24"], "10.9.0.77:51820", 25, False)
    assert configured_peers(server) == expected
    monitor.wait_for(properties_changed(new_path, PEER, "AllowedIPs", ["10.8.0.0/24"]),
                     "AllowedIPs of the peer that lost 10.7.0.50/32")
    changed = monitor.wait_for(
        lambda line: (line["signal"] == "PropertiesChanged" and line["path"] == client_path
                      and "AllowedIPs" in line["arguments"].get("changed", {})),
        "AllowedIPs of the peer that got 10.7.0.50/32")
    assert sorted(changed["arguments"]["changed"]["AllowedIPs"]) == \
        [f"{CLIENT_TUNNEL}/32", "10.7.0.50/32"], changed
    # And the endpoint, on its own.
    server.wg("set", SERVER_INTERFACE, "peer", new, "endpoint", "10.9.0.78:51820")
    monitor.wait_for(properties_changed(new_path, PEER, "Endpoint", "10.9.0.78:51820"),
                     "Endpoint of the new peer")
    expected[new] = (["10.8.0.0/24"], "10.9.0.78:51820", 25, False)
    assert configured_peers(server) == expected
    pair.ping(3)  # the session with the client was not touched

    # Removed: PeerRemoved, and still gone after kill -9.
    server.wg("set", SERVER_INTERFACE, "peer", new, "remove")
    monitor.expect("PeerRemoved", TUNNEL_PATH, {"peer": new_path})
    del expected[new]
    assert configured_peers(server) == expected
    assert [line["arguments"]["peer"] for line in monitor.signals("PeerRemoved")] == \
        [new_path], "only the removed peer was announced as removed"
    server.crash()
    server.start()
    pair.wait_for_sockets()
    pair.restart_client()
    pair.ping(3)
    assert configured_peers(server) == expected
    assert server.wg("show", SERVER_INTERFACE, "peers").stdout.split() == [client_public]


def test_setconf_syncconf_and_showconf(lab: Lab, tmp_path: Path) -> None:
    pair = start_pair(lab, tmp_path)
    pair.ping(1)
    server, client_public = pair.server, pair.client_keys.public
    monitor = subscribed_monitor(lab, server)
    client_path = dbus_peers(server)[client_public]["path"]

    # showconf: the configuration as wg writes it, private key and all.
    original = server.wg("showconf", SERVER_INTERFACE).stdout
    assert parse_conf(original) == [
        ("[Interface]", {"ListenPort": str(WIREGUARD_PORT),
                         "PrivateKey": pair.server_keys.private}),
        ("[Peer]", {"PublicKey": client_public, "AllowedIPs": f"{CLIENT_TUNNEL}/32",
                    "Endpoint": CLIENT_ENDPOINT}),
    ], original

    # setconf with two other peers: exactly those remain.
    first, second, psk = Keypair.generate().public, Keypair.generate().public, preshared_key()
    replacement = write_conf(tmp_path / "two.conf", (
        f"[Interface]\nPrivateKey = {pair.server_keys.private}\nListenPort = {WIREGUARD_PORT}\n\n"
        f"[Peer]\nPublicKey = {first}\nAllowedIPs = 10.7.0.60/32\n"
        f"Endpoint = 10.9.0.60:51820\n\n"
        f"[Peer]\nPublicKey = {second}\nPresharedKey = {psk}\n"
        f"AllowedIPs = 10.7.0.61/32, 10.61.0.0/16\nPersistentKeepalive = 15\n"))
    server.wg("setconf", SERVER_INTERFACE, str(replacement))
    expected = {first: (["10.7.0.60/32"], "10.9.0.60:51820", 0, False),
                second: (["10.61.0.0/16", "10.7.0.61/32"], "", 15, True)}
    assert configured_peers(server) == expected
    monitor.expect("PeerRemoved", TUNNEL_PATH, {"peer": client_path})
    peers = dbus_peers(server)
    for key in (first, second):
        monitor.wait_for(lambda line, path=peers[key]["path"]: (
            line["signal"] == "PeerAdded" and line["path"] == TUNNEL_PATH
            and line["arguments"].get("peer") == path), f"PeerAdded of {key}")
    shown = parse_conf(server.wg("showconf", SERVER_INTERFACE).stdout)
    assert shown[0] == ("[Interface]", {"ListenPort": str(WIREGUARD_PORT),
                                        "PrivateKey": pair.server_keys.private})
    for _, section in shown[1:]:  # the order of allowed IPs is the daemon's
        section["AllowedIPs"] = sorted(section["AllowedIPs"].split(", "))
    assert [section for _, section in shown[1:]] == [  # in creation order
        {"PublicKey": first, "AllowedIPs": ["10.7.0.60/32"], "Endpoint": "10.9.0.60:51820"},
        {"PublicKey": second, "PresharedKey": psk, "AllowedIPs": ["10.61.0.0/16", "10.7.0.61/32"],
         "PersistentKeepalive": "15"},
    ]
    # Saved before wg returned.
    server.crash()
    server.start()
    pair.wait_for_sockets()
    assert configured_peers(server) == expected
    assert pair.lab.ping("u", SERVER_TUNNEL, 1).received == 0, "the client's peer is gone"

    # The round trip: what showconf printed, set again, is the tunnel as it was; the server
    # has the client's endpoint now and starts the handshake itself.
    server.wg("setconf", SERVER_INTERFACE, str(write_conf(tmp_path / "original.conf", original)))
    assert server.wg("showconf", SERVER_INTERFACE).stdout == original
    assert configured_peers(server) == {
        client_public: ([f"{CLIENT_TUNNEL}/32"], CLIENT_ENDPOINT, 0, False)}
    pair.ping_eventually(role="s")
    pair.ping(3)

    # syncconf adds and removes what differs and leaves the rest: the client's session
    # carries on, no new handshake.
    monitor = subscribed_monitor(lab, server)
    client_path = dbus_peers(server)[client_public]["path"]
    handshakes = server.tunnel()["counters"]["handshakes_completed"]
    synced = write_conf(tmp_path / "synced.conf", (
        f"[Interface]\nPrivateKey = {pair.server_keys.private}\nListenPort = {WIREGUARD_PORT}\n\n"
        f"[Peer]\nPublicKey = {client_public}\nAllowedIPs = {CLIENT_TUNNEL}/32\n\n"
        f"[Peer]\nPublicKey = {first}\nAllowedIPs = 10.7.0.60/32\n"))
    server.wg("syncconf", SERVER_INTERFACE, str(synced))
    assert configured_peers(server) == {
        client_public: ([f"{CLIENT_TUNNEL}/32"], CLIENT_ENDPOINT, 0, False),
        first: (["10.7.0.60/32"], "", 0, False)}
    monitor.expect("PeerAdded", TUNNEL_PATH, {"peer": dbus_peers(server)[first]["path"]})
    assert dbus_peers(server)[client_public]["path"] == client_path
    pair.ping(3)
    assert server.tunnel()["counters"]["handshakes_completed"] == handshakes
    assert [line for line in monitor.signals("PeerRemoved")
            if line["path"] == TUNNEL_PATH] == [], "syncconf removed a peer it keeps"


def test_wg_set_listen_port_restarts_the_tunnel_there(lab: Lab, tmp_path: Path) -> None:
    pair = start_pair(lab, tmp_path)
    pair.ping(1)
    server, client = pair.server, pair.client
    before = only(server.bus_status()[TUNNEL]["peers"])["latest_handshake"]
    new_port, new_client_port = WIREGUARD_PORT + 1, CLIENT_PORT + 1

    server.wg("set", SERVER_INTERFACE, "listen-port", str(new_port))
    status = server.bus_status()[TUNNEL]
    assert status["listen_port"] == new_port
    assert (status["interface"], status["state"]) == (SERVER_INTERFACE, "up"), status
    assert server.wg("show", SERVER_INTERFACE, "listen-port").stdout == f"{new_port}\n"
    assert lab.udp_port_bound("s", new_port)
    assert not lab.udp_port_bound("s", WIREGUARD_PORT)

    # The client follows, through its own socket: a new port of its own (which starts its
    # handshakes over at once) and the server's new one.
    client.wg("set", CLIENT_INTERFACE, "listen-port", str(new_client_port), "peer",
              pair.server_keys.public, "endpoint", f"{SERVER_ADDRESS}:{new_port}")
    assert client.bus_status()[TUNNEL]["listen_port"] == new_client_port
    assert only(client.bus_status()[TUNNEL]["peers"])["endpoint"] == \
        f"{SERVER_ADDRESS}:{new_port}"
    pair.ping_eventually()
    pair.ping(3)
    peer = only(server.bus_status()[TUNNEL]["peers"])
    assert peer["latest_handshake"] > before, "no new handshake after the restart"
    assert peer["endpoint"] == f"{U_ADDRESS}:{new_client_port}"
    assert server.wg("show", SERVER_INTERFACE, "endpoints").stdout == \
        f"{pair.client_keys.public}\t{U_ADDRESS}:{new_client_port}\n"

    # Kept across a restart of the daemon.
    server.stop()
    server.start()
    pair.wait_for_sockets()
    assert server.bus_status()[TUNNEL]["listen_port"] == new_port
    assert lab.udp_port_bound("s", new_port)
    pair.restart_client()  # its session died with the server: start the handshakes over
    pair.ping(3)


def test_a_raw_set_is_one_change(lab: Lab, tmp_path: Path) -> None:
    """update_only, protocol_version, a preshared key, an IPv6 endpoint, allowed_ip added and
    removed ("-prefix"): one request, one change, with wireguard-go's meaning of each key."""
    pair = start_pair(lab, tmp_path)
    pair.ping(1)
    server, client_public = pair.server, pair.client_keys.public
    monitor = subscribed_monitor(lab, server)
    new, unknown, psk = Keypair.generate().public, Keypair.generate().public, preshared_key()
    reply = uapi_request(pair.server_socket, (
        "set=1\n"
        # allowed_ip without replace_allowed_ips adds to what the peer has
        f"public_key={hex_key(client_public)}\nupdate_only=true\nprotocol_version=1\n"
        f"allowed_ip=10.7.0.90/32\n"
        # update_only for a peer that does not exist: nothing is made
        f"public_key={hex_key(unknown)}\nupdate_only=true\nallowed_ip=10.7.0.91/32\n"
        f"public_key={hex_key(new)}\nprotocol_version=1\npreshared_key={hex_key(psk)}\n"
        f"endpoint=[fd09::77]:51820\npersistent_keepalive_interval=0\n"
        f"allowed_ip=10.7.0.92/32\nallowed_ip=10.92.0.0/16\nallowed_ip=-10.92.0.0/16\n\n"))
    assert reply == errno_reply(0)
    expected = {client_public: ([f"{CLIENT_TUNNEL}/32", "10.7.0.90/32"], CLIENT_ENDPOINT, 0,
                                False),
                new: (["10.7.0.92/32"], "[fd09::77]:51820", 0, True)}
    assert configured_peers(server) == expected
    peers = dbus_peers(server)
    monitor.expect("PeerAdded", TUNNEL_PATH, {"peer": peers[new]["path"]})
    assert [line["arguments"]["peer"] for line in monitor.signals("PeerAdded")] == \
        [peers[new]["path"]], "update_only made a peer"

    _, got = parse_get(uapi_request(pair.server_socket, "get=1\n\n"))
    assert [dict(peer)["public_key"] for peer in got] == [hex_key(client_public), hex_key(new)]
    assert sorted(value for key, value in got[0] if key == "allowed_ip") == \
        [f"{CLIENT_TUNNEL}/32", "10.7.0.90/32"]
    assert got[1] == [("public_key", hex_key(new)), ("preshared_key", hex_key(psk)),
                      ("protocol_version", "1"), ("endpoint", "[fd09::77]:51820"),
                      ("last_handshake_time_sec", "0"), ("last_handshake_time_nsec", "0"),
                      ("tx_bytes", "0"), ("rx_bytes", "0"),
                      ("persistent_keepalive_interval", "0"), ("allowed_ip", "10.7.0.92/32")]
    assert server.wg("show", SERVER_INTERFACE, "preshared-keys").stdout == \
        f"{client_public}\t(none)\n{new}\t{psk}\n"

    # "-prefix" on its own takes one allowed IP away; a peer may end with none.
    assert uapi_request(pair.server_socket, (
        f"set=1\npublic_key={hex_key(client_public)}\nallowed_ip=-10.7.0.90/32\n"
        f"public_key={hex_key(new)}\nallowed_ip=-10.7.0.92/32\n\n")) == errno_reply(0)
    expected[client_public] = ([f"{CLIENT_TUNNEL}/32"], CLIENT_ENDPOINT, 0, False)
    expected[new] = ([], "[fd09::77]:51820", 0, True)
    assert configured_peers(server) == expected
    pair.ping(3)

    # All of it saved before the replies: kill -9, and it is back.
    server.crash()
    server.start()
    pair.wait_for_sockets()
    expected[client_public] = ([f"{CLIENT_TUNNEL}/32"], "", 0, False)
    assert configured_peers(server) == expected
    assert server.wg("show", SERVER_INTERFACE, "preshared-keys").stdout == \
        f"{client_public}\t(none)\n{new}\t{psk}\n"


def test_wg_set_private_key_restarts_the_tunnel_with_it(lab: Lab, tmp_path: Path) -> None:
    pair = start_pair(lab, tmp_path)
    pair.ping(1)
    server, client = pair.server, pair.client
    before = only(server.bus_status()[TUNNEL]["peers"])["latest_handshake"]
    new_keys = Keypair.generate()

    server.wg("set", SERVER_INTERFACE, "private-key",
              str(new_keys.write_private(tmp_path / "new-server.key")))
    status = server.bus_status()[TUNNEL]
    assert status["public_key"] == new_keys.public
    assert (status["interface"], status["state"], status["listen_port"]) == \
        (SERVER_INTERFACE, "up", WIREGUARD_PORT)
    assert [(peer["public_key"], peer["allowed_ips"]) for peer in status["peers"]] == \
        [(pair.client_keys.public, [f"{CLIENT_TUNNEL}/32"])]
    assert server.wg("show", SERVER_INTERFACE, "public-key").stdout == f"{new_keys.public}\n"
    assert server.wg("show", SERVER_INTERFACE, "private-key").stdout == f"{new_keys.private}\n"

    # The client learns the new key (through its own socket): a handshake with it.
    client.wg("set", CLIENT_INTERFACE, "peer", pair.server_keys.public, "remove",
              "peer", new_keys.public, "endpoint", SERVER_ENDPOINT, "allowed-ips", "10.7.0.0/24")
    assert [peer["public_key"] for peer in client.bus_status()[TUNNEL]["peers"]] == \
        [new_keys.public]
    pair.ping_eventually()
    pair.ping(3)
    assert only(server.bus_status()[TUNNEL]["peers"])["latest_handshake"] > before

    server.crash()
    server.start()
    pair.wait_for_sockets()
    assert server.bus_status()[TUNNEL]["public_key"] == new_keys.public
    pair.restart_client()
    pair.ping(3)


# ── metrics ─────────────────────────────────────────────────────────────────────────────


def peer_figures(status: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(interface, peer public key) → (received bytes, sent bytes, latest handshake in Unix
    seconds), from `tunlabctl --json status`."""
    return {(tunnel["interface"], peer["public_key"]):
            (peer["counters"]["rx_bytes"], peer["counters"]["tx_bytes"],
             seconds(peer["latest_handshake"]))
            for tunnel in status.values() for peer in tunnel["peers"]}


def test_tunlabctl_json_status_equals_wg_show_all_dump(lab: Lab, tmp_path: Path) -> None:
    pair = start_pair(lab, tmp_path)
    pair.ping(5)
    # A second tunnel with a peer that never answered: zeros, and handshake 0 (never).
    silent = Keypair.generate().public
    pair.server.ctl("create", "quiet", "--protocol", "wireguard", "--interface", "wgq0",
                    "--address", "10.77.0.1/24", "--listen-port", "51830")
    pair.server.ctl("--tunnel", "quiet", "add-peer", "--public-key", silent,
                    "--allowed-ips", "10.77.0.2/32")
    wait_until(socket_path(pair.server.uapi_dir, "wgq0").exists, 5, "wgq0's socket")

    for daemon in (pair.server, pair.client):
        status, dump = quiet_snapshot(daemon.bus_status,
                                      lambda d=daemon: d.wg("show", "all", "dump").stdout)
        from_dump = {}
        for line in dump.splitlines():
            fields = line.split("\t")
            if len(fields) == 9:
                interface, public, _, endpoint, allowed, handshake, rx, tx, _ = fields
                from_dump[(interface, public)] = (int(rx), int(tx), int(handshake))
        assert from_dump == peer_figures(status), dump
    assert peer_figures(pair.server.bus_status())[("wgq0", silent)] == (0, 0, 0)


def readme_snippet() -> str:
    """The README's node_exporter textfile snippet: the fenced block with the marker."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)
    (snippet,) = [block for block in blocks if README_SNIPPET_MARKER in block]
    return snippet


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_prometheus_text(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Prometheus text exposition format 0.0.4, strictly: every line ends in a newline; HELP
    and TYPE at most once per family and before its samples; a family's samples together;
    well-formed label sets, none twice; float values. Returns family → label set → value."""
    assert text.endswith("\n"), repr(text[-50:])
    families: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    types: dict[str, str] = {}
    helps: set[str] = set()
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert name not in families, f"{parts[1]} after samples of {name}: {line!r}"
                if parts[1] == "TYPE":
                    assert name not in types, f"TYPE twice: {line!r}"
                    assert len(parts) == 4 and parts[3] in (
                        "counter", "gauge", "histogram", "summary", "untyped"), line
                    types[name] = parts[3]
                else:
                    assert name not in helps, f"HELP twice: {line!r}"
                    helps.add(name)
            continue
        assert line.strip(), "an empty line"
        match = SAMPLE.match(line)
        assert match, f"not a sample: {line!r}"
        name, _, label_text, value, _ = match.groups()
        labels: list[tuple[str, str]] = []
        position = 0
        while label_text and position < len(label_text):
            label = LABEL.match(label_text, position)
            assert label, f"bad labels in {line!r}"
            labels.append((label.group(1), label.group(2)))
            position = label.end()
        if name != current:
            assert name not in families, f"samples of {name} not together"
            families[name] = {}
            current = name
        key = tuple(sorted(labels))
        assert key not in families[name], f"{name}{key} twice"
        families[name][key] = float(value)
    for name in families:
        assert name in types, f"no TYPE for {name}"
    return families


def test_readme_textfile_snippet_gives_valid_prometheus_text(lab: Lab, tmp_path: Path) -> None:
    pair = start_pair(lab, tmp_path)
    pair.ping(5)
    snippet = readme_snippet()
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()

    def run_snippet() -> str:
        result = subprocess.run(in_uapi_directory(pair.server.uapi_dir, ["sh", "-c", snippet]),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=30, env=dict(os.environ, TEXTFILE_DIR=str(textfile_dir)))
        assert result.returncode == 0, result.stderr
        return (textfile_dir / "wireguard.prom").read_text()

    status, text = quiet_snapshot(pair.server.bus_status, run_snippet)
    assert os.listdir(textfile_dir) == ["wireguard.prom"], "a temporary file was left"
    families = parse_prometheus_text(text)
    assert set(families) == {"wireguard_sent_bytes_total", "wireguard_received_bytes_total",
                             "wireguard_latest_handshake_seconds"}, text
    ((interface, public), (rx, tx, handshake)), = peer_figures(status).items()
    labels = (("interface", interface), ("public_key", public))
    assert families["wireguard_sent_bytes_total"] == {labels: tx}
    assert families["wireguard_received_bytes_total"] == {labels: rx}
    assert families["wireguard_latest_handshake_seconds"] == {labels: handshake}
    assert (interface, public) == (SERVER_INTERFACE, pair.client_keys.public)
    assert rx > 0 and tx > 0 and handshake > 0
