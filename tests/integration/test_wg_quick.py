"""wg-quick files: `tunlabctl import` and `export`, and tunnels.d/<name>.conf.

tunlabd is the client on U (10.9.0.5), inside the tunnel 10.7.0.2; Debian's wireguard-go is
the server on S (10.9.0.11, UDP 51820), inside 10.7.0.1, with a preshared key. The file tunlabd
gets is the one an admin writes for wg-quick on U (/etc/wireguard/wg0.conf), with wg-quick's
keys that tunlab does not do (DNS, PostUp), which must be named with their line, not dropped
in silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.daemon import Daemon
from harness.lab import Lab
from harness.process import wait_until
from harness.seed import SERVER_ADDRESS
from harness.wireguard import WIREGUARD_PORT, Keypair, WireguardGo, preshared_key
# The fixture that starts wireguard-go and closes it after the test, shared with the interop
# tests.
from test_wireguard_interop import StartWireguardGo, start_wireguard_go  # noqa: F401

NAME = "wg0"
SERVER_TUNNEL = "10.7.0.1"
CLIENT_TUNNEL = "10.7.0.2"
# The private network behind S: wg-quick adds a route for it (10.7.0.0/24 is on the link
# already, through the Address).
ROUTED = "192.168.60.0/24"
HANDSHAKE_TIMEOUT = 10.0


@dataclass
class Setup:
    daemon: Daemon
    wg: WireguardGo
    keys: Keypair       # tunlabd's
    wg_keys: Keypair    # wireguard-go's
    psk: str


def wg_quick_file(keys: Keypair, server: Keypair, psk: str) -> str:
    """What an admin writes in /etc/wireguard/wg0.conf on U for wg-quick. Line numbers matter:
    DNS is line 5, PostUp line 6."""
    return (
        "# U's tunnel to the server-router\n"          # 1
        "[Interface]\n"                                 # 2
        f"PrivateKey = {keys.private}\n"                # 3
        f"Address = {CLIENT_TUNNEL}/24\n"               # 4
        f"DNS = {SERVER_TUNNEL}\n"                      # 5
        "PostUp = logger wg0 is up\n"                   # 6
        "\n"                                            # 7
        "[Peer]\n"                                      # 8
        f"PublicKey = {server.public}\n"
        f"PresharedKey = {psk}\n"
        f"Endpoint = {SERVER_ADDRESS}:{WIREGUARD_PORT}\n"
        f"AllowedIPs = 10.7.0.0/24, {ROUTED}\n"
        "PersistentKeepalive = 25\n")


def start_server(lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path,
                 keys: Keypair, wg_keys: Keypair, psk: str) -> WireguardGo:
    wg = start_wireguard_go(lab, "s")
    wg.configure(wg_keys, [f"{SERVER_TUNNEL}/24"], listen_port=WIREGUARD_PORT)
    psk_path = tmp_path / "server.psk"
    psk_path.write_text(psk + "\n")
    psk_path.chmod(0o600)
    wg.add_peer(keys.public, [f"{CLIENT_TUNNEL}/32"], preshared_key_file=psk_path)
    return wg


def connect(lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path,
          start: bool = True) -> Setup:
    keys, wg_keys, psk = Keypair.generate(), Keypair.generate(), preshared_key()
    wg = start_server(lab, start_wireguard_go, tmp_path, keys, wg_keys, psk)
    return Setup(lab.start_daemon("u", start=start), wg, keys, wg_keys, psk)


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)
    path.chmod(mode)
    return path


def ping_through(lab: Lab, the: Setup) -> None:
    result = lab.ping("u", SERVER_TUNNEL, 3)
    assert (result.transmitted, result.received) == (3, 3), result.output
    # Both ends recorded the handshake.
    wait_until(lambda: the.wg.peers()[the.keys.public]["latest_handshake"] > 0,
               HANDSHAKE_TIMEOUT, "wireguard-go to record a handshake")
    (peer,) = the.daemon.tunnel(NAME)["peers"]
    assert peer["latest_handshake"] > 0, peer


def import_file(the: Setup, path: Path, *args: str) -> Any:
    result = the.daemon.tunlabctl("import", str(path), *args)
    assert result.returncode == 0, result.stderr
    return result


def comparable(tunnel: dict[str, Any]) -> dict[str, Any]:
    """`tunlabctl --json status` of a tunnel, without what traffic and time change."""
    volatile = {"counters", "path", "last_receive", "last_send", "latest_handshake", "state"}
    kept = {key: value for key, value in tunnel.items() if key not in volatile}
    kept["peers"] = [{key: value for key, value in peer.items() if key not in volatile}
                     for peer in tunnel["peers"]]
    return kept


def bus_tunnel(daemon: Daemon) -> dict[str, Any]:
    return daemon.bus_status()[NAME]


# ── (a) import a wg-quick file, ping the wireguard-go peer through it ──────────────────


def test_import_names_unsupported_keys_and_the_tunnel_works(
        lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path) -> None:
    the = connect(lab, start_wireguard_go, tmp_path)
    path = write_private(tmp_path / "wg0.conf", wg_quick_file(the.keys, the.wg_keys, the.psk))

    result = import_file(the, path)
    notes = result.stderr.splitlines()
    assert len(notes) == 2, result.stderr
    assert notes[0].startswith(f"{path}:5: DNS is not supported by tunlab"), notes
    assert notes[1].startswith(f"{path}:6: PostUp is not supported by tunlab"), notes
    assert notes[0].endswith("ignored") and notes[1].endswith("ignored"), notes
    # No value is repeated: not the resolver, not the command, not a key.
    for value in (SERVER_TUNNEL, "logger", the.keys.private, the.psk):
        assert value not in result.stderr
    assert result.stdout.strip() == f"created /org/tunlab1/tunnel/{NAME}"

    tunnel = bus_tunnel(the.daemon)
    assert (tunnel["interface"], tunnel["protocol"]) == (NAME, "wireguard")
    assert tunnel["public_key"] == the.keys.public
    assert tunnel["addresses"] == [f"{CLIENT_TUNNEL}/24"]
    assert tunnel["routes"] == [ROUTED]
    (peer,) = tunnel["peers"]
    assert peer["public_key"] == the.wg_keys.public
    assert peer["has_preshared_key"] is True
    assert peer["endpoint"] == f"{SERVER_ADDRESS}:{WIREGUARD_PORT}"
    assert (peer["allowed_ips"], peer["keepalive"]) == (["10.7.0.0/24", ROUTED], 25)

    ping_through(lab, the)


# ── (b) export → delete → import gives back the same tunnel ─────────────────────────────


def test_export_then_import_gives_back_the_same_tunnel(
        lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path) -> None:
    the = connect(lab, start_wireguard_go, tmp_path)
    import_file(the, write_private(tmp_path / "wg0.conf",
                                   wg_quick_file(the.keys, the.wg_keys, the.psk)))
    ping_through(lab, the)
    before = comparable(bus_tunnel(the.daemon))

    # As root, with the daemon's control sockets where wg-quick's tools look: the keys too.
    exported = the.daemon.tunlabctl("export", NAME, uapi=True)
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == "", exported.stderr
    assert f"PrivateKey = {the.keys.private}\n" in exported.stdout, exported.stdout
    assert f"PresharedKey = {the.psk}\n" in exported.stdout
    assert "# tunlab:" not in exported.stdout, exported.stdout

    # As nobody: everything but the keys, and a word on stderr saying why.
    unprivileged = the.daemon.tunlabctl("export", NAME, user=True, uapi=True)
    assert unprivileged.returncode == 0, unprivileged.stderr
    assert "PrivateKey =" not in unprivileged.stdout
    assert "PresharedKey =" not in unprivileged.stdout
    assert "# PrivateKey left out" in unprivileged.stdout
    assert (f"PrivateKey left out: only root can read keys (from /run/wireguard/{NAME}.sock)"
            in unprivileged.stderr), unprivileged.stderr
    assert the.keys.private not in unprivileged.stdout + unprivileged.stderr
    # Without the secrets, the rest of the file is the same.
    public_lines = [line for line in exported.stdout.splitlines() if "Key = " not in line
                    or line.startswith("PublicKey")]
    assert [line for line in unprivileged.stdout.splitlines()
            if not line.startswith("# P")] == public_lines

    # As root where no control socket is (the host's /run/wireguard has no wg0 of ours):
    # the file without keys, and why.
    if not Path(f"/run/wireguard/{NAME}.sock").exists():
        no_socket = the.daemon.tunlabctl("export", NAME)
        assert no_socket.returncode == 0, no_socket.stderr
        assert "PrivateKey =" not in no_socket.stdout
        assert f"/run/wireguard/{NAME}.sock does not exist" in no_socket.stderr

    saved = write_private(tmp_path / "exported.conf", exported.stdout)
    the.daemon.ctl("delete", NAME)
    assert NAME not in the.daemon.bus_status()
    result = import_file(the, saved, "--name", NAME)
    assert result.stderr == "", result.stderr

    after = comparable(bus_tunnel(the.daemon))
    assert after == before
    assert after["public_key"] == the.keys.public
    # The same keys: wireguard-go, which was never told anything, answers again.
    wait_until(lambda: lab.ping("u", SERVER_TUNNEL, 1).received == 1, HANDSHAKE_TIMEOUT,
               "a ping through the re-imported tunnel")


def test_import_from_stdin_needs_a_name(lab: Lab, tmp_path: Path) -> None:
    daemon = lab.start_daemon("u")
    result = daemon.tunlabctl("import", "-")
    assert result.returncode == 2, result
    assert "--name" in result.stderr
    assert daemon.bus_status() == {}


# ── (c) tunnels.d/<name>.conf ────────────────────────────────────────────────────────────


def test_conf_file_brings_the_tunnel_up_and_a_readable_one_is_refused(
        lab: Lab, start_wireguard_go: StartWireguardGo, tmp_path: Path) -> None:
    the = connect(lab, start_wireguard_go, tmp_path, start=False)
    text = wg_quick_file(the.keys, the.wg_keys, the.psk)
    write_private(the.daemon.config_dir / "wg0.conf", text)
    readable = write_private(the.daemon.config_dir / "wg1.conf",
                             text.replace(f"{CLIENT_TUNNEL}/24", "10.8.0.2/24"), 0o644)
    the.daemon.start()

    assert list(the.daemon.bus_status()) == [NAME]
    log = the.daemon.log_path.read_text(errors="replace")
    assert (f"{readable}: may be read or written by others (mode 0644): make it mode 600 "
            f"(chmod 600)") in log, log
    # What the file says that tunlab does not do, named with its line.
    assert f"{the.daemon.config_dir / 'wg0.conf'}: line 5: DNS is not supported" in log, log
    assert f"{the.daemon.config_dir / 'wg0.conf'}: line 6: PostUp is not supported" in log
    for secret in (the.keys.private, the.psk):
        assert secret not in log
    assert bus_tunnel(the.daemon)["public_key"] == the.keys.public
    ping_through(lab, the)


# ── (d) a malformed file: the line, and nothing created ─────────────────────────────────


def test_malformed_files_name_the_line_and_create_nothing(lab: Lab, tmp_path: Path) -> None:
    daemon = lab.start_daemon("u")
    keys, server = Keypair.generate(), Keypair.generate()
    good = wg_quick_file(keys, server, preshared_key())
    not_a_key = "c2VjcmV0LXRleHQtYnV0LW5vdC1hLWtleQ=="
    cases = {
        # A private key that is no key: line 3, and never quoted.
        "bad_key": (good.replace(keys.private, not_a_key), ":3: PrivateKey: not a key"),
        # A peer without its public key: the line of its [Peer].
        "no_public_key": ("\n".join(line for line in good.splitlines()
                                    if not line.startswith("PublicKey")) + "\n",
                          ":8: [Peer] has no PublicKey"),
        "no_section": (f"PrivateKey = {keys.private}\n", ":1: 'PrivateKey' is outside any section"),
        "huge_line": (good + "# " + "x" * 10000 + "\n", ":14: is longer than"),
    }
    for name, (text, expected) in cases.items():
        path = write_private(tmp_path / f"{name}.conf", text)
        result = daemon.tunlabctl("import", str(path))
        assert result.returncode == 2, (name, result)
        assert f"{path}{expected}" in result.stderr, (name, result.stderr)
        assert not_a_key not in result.stderr and keys.private not in result.stderr
    assert daemon.bus_status() == {}

    # What only tunlabd can refuse (a tunnel of that name exists already; a name that is
    # none) is refused over the bus the same way: an error, and nothing created or changed.
    path = write_private(tmp_path / "wg0.conf", good)
    import_file_ok = daemon.tunlabctl("import", str(path))
    assert import_file_ok.returncode == 0, import_file_ok.stderr
    before = daemon.bus_status()
    again = daemon.tunlabctl("import", str(path))
    assert again.returncode == 1, again
    assert "org.tunlab1.Error.AlreadyExists" in again.stderr, again.stderr
    bad_name = daemon.tunlabctl("import", str(path), "--name", "no such name")
    assert bad_name.returncode == 1, bad_name
    assert "org.tunlab1.Error.InvalidArgument" in bad_name.stderr, bad_name.stderr
    assert daemon.bus_status() == before
