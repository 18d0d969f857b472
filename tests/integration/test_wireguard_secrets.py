"""Nothing secret escapes tunlabd: the private keys of its WireGuard tunnels and the preshared
keys of their peers are "write only, never shown" (docs/dbus-api.md). Only the saved state holds
them, in files readable by root only.

One daemon, started with --debug (the most talkative log) and a umask of 0 (so that a file mode
that is right only by the grace of the umask shows), gets keys every way there is: a tunnel file
naming a private key file and a preshared key file; CreateTunnel with private_key inline and a
peer with preshared_key inline in its `peers` option; AddPeer with preshared_key inline; tunlabctl
create --private-key-file and add-peer --preshared-key-file (which read the files and send the
keys over the bus); CreateTunnel without a key (tunlabd makes one: the test reads it from the
state file). Refused attempts too: a tunnel file with an inline key, malformed keys over the bus,
a malformed key file for tunlabctl. Two wireguard-go peers in U complete handshakes with their
preshared keys, so that the keys are in use, not merely stored.

Then every place a user or an unprivileged local reader can see is searched for every secret,
in base64 (also unpadded and URL-safe), hex (both cases), raw bytes and decimal byte lists, and
for any 12-character piece of the base64 or 16-digit piece of the hex (a truncated key is a leak
too): every property of every object on the bus (walked from / by introspection) and the
introspection data itself, the signals tunlabctl monitor prints, D-Bus error messages,
status.json and everything else in the runtime directory, tunlabctl's output (status, stats,
plain and --json), tunlabd's log and its bus's log. All of it once more after a restart from the
saved state. The negative controls prove the search would have found a leak: every public key is
found where it is shown, and every private key is found in the state file.

A second test corrupts saved state files (a torn write, a bad edit): tunlabd sets them aside,
and its complaint in the log must not quote the keys they hold. A third checks the modes of
what tunlabd makes in its state directory under a umask of 0: files 0600, directories not
writable by others (who could otherwise put in a tunnel with a key of their choosing).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import dbus
import pytest

from harness.daemon import Daemon
from harness.dbus_client import (BUS_NAME, MANAGER, MANAGER_PATH, PEER, TUNNEL, Client,
                                 options)
from harness.monitor import Monitor, subscribed_monitor
from harness.wireguard import Keypair, WireguardGo, peer_config, preshared_key, tunnel_config
from harness.wireguard_messages import key_bytes, public_key

# Every test here drives tunlabd through tunlabctl or its bus.
pytestmark = pytest.mark.usefixtures("tunlabctl")

INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PROPERTIES = "org.freedesktop.DBus.Properties"
SERVER = "10.9.0.11"
# The tests' WireGuard network, 10.7.0.0/24 (harness.wireguard.WG_NETWORK), in four: one /26
# per tunnel.
FILE_NET, BUS_NET, CTL_NET, GEN_NET = "10.7.0.0", "10.7.0.64", "10.7.0.128", "10.7.0.192"
WINDOW_BASE64 = 12   # 72 bits: a piece this long of a random key turns up nowhere by chance
WINDOW_HEX = 16      # 64 bits
WINDOW_RAW = 8


def host(network: str, number: int) -> str:
    prefix, last = network.rsplit(".", 1)
    return f"{prefix}.{int(last) + number}"


# ── finding a key in any form ─────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Secret:
    name: str          # what it is, for failure messages
    key: bytes         # the 32 raw bytes

    @staticmethod
    def of(name: str, base64_key: str) -> "Secret":
        return Secret(name, key_bytes(base64_key))

    @property
    def base64(self) -> str:
        return base64.b64encode(self.key).decode()

    def needles(self) -> Iterator[tuple[str, bytes]]:
        """(form, bytes to look for): the whole key in every encoding a program might print,
        then every piece long enough to be a leak on its own."""
        standard = self.base64
        url_safe = base64.urlsafe_b64encode(self.key).decode()
        yield "base64", standard.encode()
        yield "base64url", url_safe.encode()
        yield "hex", self.key.hex().encode()
        yield "HEX", self.key.hex().upper().encode()
        yield "raw bytes", self.key
        yield "decimal list", ",".join(str(byte) for byte in self.key).encode()
        yield "decimal list", ", ".join(str(byte) for byte in self.key).encode()
        for text, width in ((standard.rstrip("="), WINDOW_BASE64),
                            (url_safe.rstrip("="), WINDOW_BASE64),
                            (self.key.hex(), WINDOW_HEX), (self.key.hex().upper(), WINDOW_HEX)):
            for start in range(len(text) - width + 1):
                yield f"piece {text[start:start + width]!r}", text[start:start + width].encode()
        for start in range(len(self.key) - WINDOW_RAW + 1):
            yield f"raw bytes {start}..{start + WINDOW_RAW}", self.key[start:start + WINDOW_RAW]


def found(secret: Secret, haystack: bytes) -> list[str]:
    """The forms of `secret` that occur in `haystack`."""
    return [form for form, needle in secret.needles() if needle in haystack]


def leaks(secrets: list[Secret], places: dict[str, bytes]) -> list[str]:
    return [f"{secret.name} in {place}: {forms[:3]}"
            for place, haystack in places.items() for secret in secrets
            if (forms := found(secret, haystack))]


def flatten(value: Any) -> bytes:
    """A D-Bus reply as bytes to search: strings as UTF-8, byte arrays raw, numbers in
    decimal, containers item by item."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return b"{" + b";".join(flatten(k) + b"=" + flatten(v) for k, v in value.items()) + b"}"
    if isinstance(value, (list, tuple)):
        # A byte array that came through as numbers is searched as bytes too.
        if value and all(isinstance(item, int) and 0 <= item <= 255 for item in value):
            return bytes(value) + b"|" + b",".join(str(int(item)).encode() for item in value)
        return b"[" + b",".join(flatten(item) for item in value) + b"]"
    return str(value).encode()


# ── what a reader sees ───────────────────────────────────────────────────────────────────


def everything_on_the_bus(address: str) -> dict[str, bytes]:
    """Every object from / down (introspection: its XML too), every interface's GetAll and
    every property's Get. Errors count as replies: their messages are searched as well."""
    replies: dict[str, bytes] = {}
    bus = dbus.bus.BusConnection(address)

    def call(path: str, interface: str, member: str, signature: str = "", *args: Any) -> Any:
        try:
            return bus.call_blocking(BUS_NAME, path, interface, member, signature, args,
                                     timeout=10, byte_arrays=True)
        except dbus.exceptions.DBusException as error:
            return f"{error.get_dbus_name()}: {error.get_dbus_message()}"

    try:
        paths = ["/"]
        while paths:
            path = paths.pop()
            xml = call(path, INTROSPECTABLE, "Introspect")
            replies[f"Introspect {path}"] = flatten(xml)
            tree = ElementTree.fromstring(str(xml))
            paths += [f"{path.rstrip('/')}/{node.get('name')}" for node in tree.findall("node")]
            for interface in tree.findall("interface"):
                name = interface.get("name")
                replies[f"GetAll {path} {name}"] = flatten(call(path, PROPERTIES, "GetAll", "s",
                                                                name))
                for prop in interface.findall("property"):
                    replies[f"Get {path} {name}.{prop.get('name')}"] = flatten(
                        call(path, PROPERTIES, "Get", "ss", name, prop.get("name")))
    finally:
        bus.close()
    return replies


def everything_a_reader_sees(daemon: Daemon, monitor: Monitor,
                             extra: dict[str, bytes]) -> dict[str, bytes]:
    places = everything_on_the_bus(daemon.bus.address)
    daemon.status()   # a fresh status.json
    for path in sorted(daemon.runtime_dir.rglob("*")):
        if path.is_file():
            places[f"runtime file {path.name}"] = path.read_bytes()
    for args in (("status",), ("--json", "status"), ("version",)):
        places[f"tunlabctl {' '.join(args)}"] = daemon.ctl(*args).encode()
    for tunnel in daemon.bus_status():
        for json_flag in ((), ("--json",)):
            args = (*json_flag, "--tunnel", tunnel, "stats")
            places[f"tunlabctl {' '.join(args)}"] = daemon.ctl(*args).encode()
    places["tunlabctl monitor"] = json.dumps(monitor.lines).encode()
    places["tunlabd log"] = daemon.log_path.read_bytes()
    places["dbus-daemon log"] = daemon.bus.log_path.read_bytes()
    places.update(extra)
    return places


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """The daemon inherits the umask of the process that starts it."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def state_files(daemon: Daemon) -> list[Path]:
    return sorted(path for path in daemon.state_dir.rglob("*") if path.is_file())


def saved_keys(daemon: Daemon) -> dict[str, Any]:
    """The saved state by tunnel name (root reads what tunlabd keeps for itself)."""
    return {path.stem: json.loads(path.read_text())
            for path in (daemon.state_dir / "tunnels").glob("*.json")}


def only_owner_may_read(daemon: Daemon) -> None:
    """Every file tunlabd saved holds keys: none may be open to group or others, whatever the
    umask (it is 0 here)."""
    files = state_files(daemon)
    assert files, f"nothing saved under {daemon.state_dir}"
    for path in files:
        mode = path.stat().st_mode
        assert path.stat().st_uid == 0 and stat.S_IMODE(mode) & 0o077 == 0, \
            f"{path} has mode {stat.filemode(mode)}: it holds keys"


# ── the test ────────────────────────────────────────────────────────────────────────────


def test_no_private_or_preshared_key_is_shown_anywhere(lab, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)

    def key_file(name: str, text: str) -> Path:
        path = keys / name
        path.write_text(text + "\n")
        path.chmod(0o600)
        return path

    file_key, bus_key, ctl_key = Keypair.generate(), Keypair.generate(), Keypair.generate()
    refused_file_key, refused_bus_key = Keypair.generate(), Keypair.generate()
    file_peer, bus_peer, other_peer, ctl_peer = (Keypair.generate() for _ in range(4))
    file_psk, bus_psk, added_psk, ctl_psk, refused_psk = (preshared_key() for _ in range(5))

    # A tunnel file with key files (the way the docs ask for), and one with the key inline,
    # which tunlabd refuses: its complaint must not repeat the key.
    inline = tunnel_config(Path("unused"), [f"{host(FILE_NET, 33)}/26"], [])
    del inline["private_key_file"]
    inline["private_key"] = refused_file_key.private
    server = lab.start_daemon("s", {
        "wgfile": tunnel_config(
            file_key.write_private(keys / "wgfile.key"), [f"{host(FILE_NET, 1)}/26"],
            [peer_config(file_peer.public, [f"{host(FILE_NET, 2)}/32"],
                         preshared_key_file=key_file("wgfile-peer.psk", file_psk))],
            listen_port=51820),
        "wgbad": inline,
    }, start=False, args=("--debug",))
    with umask(0):
        server.start()
    assert "wgbad" not in server.bus_status(), "a tunnel file with an inline key was accepted"

    monitor = subscribed_monitor(lab, server)
    refusals: dict[str, bytes] = {}
    with Client(server.bus.address) as client:
        # Keys inline over the bus: CreateTunnel's own key and its `peers`, then AddPeer.
        bus_tunnel = client.call(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "wgbus",
                                 options({"protocol": ("s", "wireguard"),
                                          "private_key": ("s", bus_key.private),
                                          "addresses": ("as", [f"{host(BUS_NET, 1)}/26"]),
                                          "listen_port": ("q", 51830)})
                                 | {"peers": dbus.Array([options({
                                     "public_key": ("s", bus_peer.public),
                                     "preshared_key": ("s", bus_psk),
                                     "allowed_ips": ("as", [f"{host(BUS_NET, 2)}/32"])})],
                                     signature="a{sv}")})
        client.call(bus_tunnel, TUNNEL, "AddPeer", "sa{sv}", "", options({
            "public_key": ("s", other_peer.public), "preshared_key": ("s", added_psk),
            "allowed_ips": ("as", [f"{host(BUS_NET, 3)}/32"])}))
        # No key: tunlabd makes one.
        client.call(MANAGER_PATH, MANAGER, "CreateTunnel", "sa{sv}", "wggen", options({
            "protocol": ("s", "wireguard"), "addresses": ("as", [f"{host(GEN_NET, 1)}/26"])}))
        # Malformed keys are refused without being quoted back: one character too many, and
        # the padding replaced.
        for what, path, interface, member, name, arguments in (
                ("CreateTunnel", MANAGER_PATH, MANAGER, "CreateTunnel", "wgrefused",
                 {"protocol": ("s", "wireguard"),
                  "private_key": ("s", refused_bus_key.private + "A")}),
                ("AddPeer", bus_tunnel, TUNNEL, "AddPeer", "",
                 {"public_key": ("s", ctl_peer.public),
                  "preshared_key": ("s", refused_psk[:-1] + "!")})):
            error, message = client.error(path, interface, member, "sa{sv}", name,
                                          options(arguments))
            assert error == "org.tunlab1.Error.InvalidArgument", (what, error, message)
            refusals[f"{what} error"] = message.encode()

    # tunlabctl reads key files and sends the keys.
    server.ctl("create", "wgctl", "--protocol", "wireguard", "--private-key-file",
               str(ctl_key.write_private(keys / "wgctl.key")), "--address",
               f"{host(CTL_NET, 1)}/26")
    server.ctl("--tunnel", "wgctl", "add-peer", "--public-key", ctl_peer.public,
               "--preshared-key-file", str(key_file("wgctl-peer.psk", ctl_psk)),
               "--allowed-ips", f"{host(CTL_NET, 2)}/32")
    broken = key_file("broken.key", f"{refused_bus_key.private} trailing words")
    refused = server.tunlabctl("create", "wgbroken", "--protocol", "wireguard",
                               "--private-key-file", str(broken))
    assert refused.returncode != 0, refused.stdout
    refusals["tunlabctl with a malformed key file"] = (refused.stdout + refused.stderr).encode()

    generated = saved_keys(server)["wggen"]["config"]["private_key"]
    generated_key = Secret.of("the private key tunlabd generated", generated)

    # Both kinds of tunnel complete handshakes with their preshared keys (a wrong one would
    # fail them), so the keys have been used, not only stored.
    peers = []
    try:
        for keypair, tunnel_key, network, port, psk_file in (
                (file_peer, file_key, FILE_NET, 51820, keys / "wgfile-peer.psk"),
                (bus_peer, bus_key, BUS_NET, 51830, key_file("wgbus-peer.psk", bus_psk))):
            peer = WireguardGo(lab.ns["u"], tmp_path).start()
            peers.append(peer)
            peer.configure(keypair, [f"{host(network, 2)}/26"])
            peer.add_peer(tunnel_key.public, [f"{network}/26"], endpoint=f"{SERVER}:{port}",
                          preshared_key_file=psk_file)
            result = lab.ping("u", host(network, 1), 3, 0.05)
            assert result.received == 3, result.output
        tunnels = server.bus_status()
        for name in ("wgfile", "wgbus"):
            (peer_status,) = [peer for peer in tunnels[name]["peers"] if peer["latest_handshake"]]
            monitor.expect("HandshakeCompleted", peer_status["path"])
    finally:
        for peer in peers:
            peer.close()

    # The private keys tunlabd holds, by tunnel, then everything else that must not show.
    private = {"wgfile": Secret.of("wgfile's private key (key file)", file_key.private),
               "wgbus": Secret.of("wgbus's private key (CreateTunnel)", bus_key.private),
               "wgctl": Secret.of("wgctl's private key (tunlabctl --private-key-file)",
                                  ctl_key.private),
               "wggen": generated_key}
    secrets = [*private.values(),
               Secret.of("wgfile's peer's preshared key (key file)", file_psk),
               Secret.of("wgbus's peer's preshared key (CreateTunnel peers)", bus_psk),
               Secret.of("wgbus's second peer's preshared key (AddPeer)", added_psk),
               Secret.of("wgctl's peer's preshared key (tunlabctl --preshared-key-file)",
                         ctl_psk),
               Secret.of("the inline key of a refused tunnel file", refused_file_key.private),
               Secret.of("a malformed private key refused over the bus",
                         refused_bus_key.private),
               # Its padding was replaced: the whole key is still in the text sent.
               Secret.of("a malformed preshared key refused over the bus", refused_psk)]
    public_keys = {name: Secret.of(f"{name}'s public key", keypair.public)
                   for name, keypair in (("wgfile", file_key), ("wgbus", bus_key),
                                         ("wgctl", ctl_key))}
    public_keys["wggen"] = Secret("wggen's public key", public_key(generated_key.key))

    def check(when: str) -> None:
        places = everything_a_reader_sees(server, monitor, refusals)
        shown = leaks(secrets, places)
        assert not shown, f"{when}: secrets shown: {shown}"
        # Controls: the search finds what is shown (every public key on the bus, in
        # status.json and in tunlabctl status)...
        for name, public in public_keys.items():
            path = f"/org/tunlab1/tunnel/{name}"
            for place in (f"Get {path} {TUNNEL}.PublicKey", "runtime file status.json",
                          "tunlabctl status", "tunlabctl --json status"):
                assert "base64" in found(public, places[place]), (when, name, place)
        peer_keys = b"".join(haystack for place, haystack in places.items()
                             if place.startswith("GetAll") and place.endswith(PEER))
        for keypair in (file_peer, bus_peer, other_peer, ctl_peer):
            assert found(Secret.of("peer", keypair.public), peer_keys), (when, keypair.public)
        # ...and each saved private key is found in its state file (the encoding tunlabd uses
        # is one the search knows), which only root may read.
        saved = {path.name: path.read_bytes() for path in state_files(server)}
        for tunnel, secret in private.items():
            assert "base64" in found(secret, saved[f"{tunnel}.json"]), (when, secret.name)
        only_owner_may_read(server)

    # The search itself: every form is recognised inside other text.
    probe = private["wgfile"]
    for form, needle in list(probe.needles())[:7]:
        assert found(probe, b"xx" + needle + b"yy"), form
    assert not found(probe, b"".join(needle for _, needle in public_keys["wgfile"].needles()))

    check("running")
    # Restart from the saved state alone for the bus-made tunnels: same keys, nothing shown.
    server.stop()
    with umask(0):
        server.start()
    restarted = server.bus_status()
    for name, public in public_keys.items():
        assert restarted[name]["public_key"] == public.base64, (name, restarted[name])
    check("after a restart")


def test_a_corrupt_state_file_is_not_quoted_into_the_log(lab, tmp_path):
    """A state file cut short inside a key (a torn write, a bad edit) or broken right after
    one: tunlabd keeps it aside as .corrupt (still root's only) and says so in its log, but
    without the keys the file holds."""
    server = lab.start_daemon("s")
    tunnel_key, peer = Keypair.generate(), Keypair.generate()
    psk = preshared_key()
    key_file = tunnel_key.write_private(tmp_path / "tunnel.key")
    psk_file = tmp_path / "peer.psk"
    psk_file.write_text(psk + "\n")
    for name in ("torn", "edited"):
        server.ctl("create", name, "--protocol", "wireguard", "--private-key-file",
                   str(key_file), "--address", f"10.7.0.{1 if name == 'torn' else 65}/26")
        server.ctl("--tunnel", name, "add-peer", "--public-key", peer.public,
                   "--preshared-key-file", str(psk_file), "--allowed-ips",
                   f"10.7.0.{2 if name == 'torn' else 66}/32")
    server.stop()
    log_before = server.log_path.stat().st_size

    directory = server.state_dir / "tunnels"
    torn = (directory / "torn.json").read_text()
    assert psk in torn and tunnel_key.private in torn, "the state does not hold the keys"
    # Cut inside the string of the preshared key: the file ends in the middle of a value.
    (directory / "torn.json").write_text(torn[:torn.index(psk) + len(psk)])
    # An escape JSON does not have, right after the private key.
    edited = (directory / "edited.json").read_text()
    (directory / "edited.json").write_text(
        edited.replace(f'"{tunnel_key.private}"', f'"{tunnel_key.private}\\q"'))

    server.start()
    assert server.bus_status() == {}, "a corrupt state file was restored"
    for name in ("torn", "edited"):
        kept = directory / f"{name}.json.corrupt"
        assert kept.exists(), sorted(directory.iterdir())
        assert stat.S_IMODE(kept.stat().st_mode) & 0o077 == 0, stat.filemode(kept.stat().st_mode)
    with open(server.log_path, "rb") as log:
        log.seek(log_before)
        complaint = log.read()
    assert b"torn.json" in complaint and b"edited.json" in complaint, complaint
    secrets = [Secret.of("the tunnel's private key", tunnel_key.private),
               Secret.of("the peer's preshared key", psk)]
    shown = leaks(secrets, {"tunlabd log": complaint})
    assert not shown, f"{shown}:\n{complaint.decode(errors='replace')}"


def test_the_state_directory_is_not_open_to_others_whatever_the_umask(lab):
    """Where tunlabd keeps the keys and from where it restores tunnels as root: under a umask
    of 0, its state files are still 0600 (docs: "at most 0600, whatever the umask") and the
    directories it makes there must not be writable by others either, or any local user could
    put a state file of their own in (a tunnel with the private key they chose, their peers,
    their routes) or take one away."""
    server = lab.start_daemon("s", start=False)
    with umask(0):
        server.start()
    server.ctl("create", "wg", "--protocol", "wireguard", "--address", "10.7.0.1/24")
    only_owner_may_read(server)
    made = [path for path in server.state_dir.rglob("*") if path.is_dir()]
    assert made, f"no directory under {server.state_dir}"
    for path in made:
        mode = path.stat().st_mode
        assert stat.S_IMODE(mode) & 0o022 == 0, \
            f"{path}, made by tunlabd, has mode {stat.filemode(mode)}"
