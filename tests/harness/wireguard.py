"""WireGuard for the tests: key pairs (from wireguard-tools' `wg`, an implementation that is
not ours), tunlabd configurations for the protocol, and Debian's wireguard-go as a peer in a
lab namespace, configured with `wg set`.

wireguard-go is the userspace implementation of WireGuard in Go; it keeps its UAPI socket in
/var/run/wireguard/NAME.sock, which is not namespaced, so every interface gets a name unique
to this process.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.process import run, tail, wait_until

WIREGUARD_PORT = 51820
# The lab's tunnel network for WireGuard tests (distinct from the plain lab's 192.168.53.0/24,
# so that a stray route of one can never carry the other's pings).
WG_NETWORK = "10.7.0.0/24"

UAPI_DIRECTORY = Path("/var/run/wireguard")


@dataclass(frozen=True)
class Keypair:
    private: str
    public: str

    @staticmethod
    def generate() -> "Keypair":
        private = run(["wg", "genkey"]).stdout.strip()
        return Keypair(private, public_key_of(private))

    def write_private(self, path: Path, mode: int = 0o600) -> Path:
        """The private key as a key file (base64 and a newline, as `wg genkey` writes it)."""
        path.write_text(self.private + "\n")
        path.chmod(mode)
        return path


def public_key_of(private: str) -> str:
    result = subprocess.run(["wg", "pubkey"], input=private + "\n", capture_output=True,
                            text=True, check=True, timeout=10)
    return result.stdout.strip()


def preshared_key() -> str:
    return run(["wg", "genpsk"]).stdout.strip()


def tunnel_config(private_key_file: Path, addresses: list[str], peers: list[dict[str, Any]],
                  listen_port: int | None = None, **extra: Any) -> dict[str, Any]:
    """A tunlabd tunnel configuration speaking WireGuard."""
    config: dict[str, Any] = {"protocol": "wireguard", "private_key_file": str(private_key_file),
                              "addresses": addresses, "peers": peers, **extra}
    if listen_port is not None:
        config["listen_port"] = listen_port
    return config


def peer_config(public_key: str, allowed_ips: list[str], endpoint: str | None = None,
                preshared_key_file: Path | None = None, **extra: Any) -> dict[str, Any]:
    peer: dict[str, Any] = {"public_key": public_key, "allowed_ips": allowed_ips, **extra}
    if endpoint is not None:
        peer["endpoint"] = endpoint
    if preshared_key_file is not None:
        peer["preshared_key_file"] = str(preshared_key_file)
    return peer


_interface_sequence = itertools.count(1)


class WireguardGo:
    """One wireguard-go interface in namespace `ns`, running in the foreground until close()."""

    def __init__(self, ns: str, workdir: Path):
        self.ns = ns
        self.name = f"wg{os.getpid() % 100000}x{next(_interface_sequence)}"
        self.workdir = workdir
        self.log_path = workdir / f"wireguard-go-{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return UAPI_DIRECTORY / f"{self.name}.sock"

    def start(self) -> "WireguardGo":
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL="verbose")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "wireguard-go", "--foreground", self.name],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.socket_path.exists() or self.proc.poll() is not None, 10,
                   f"wireguard-go {self.name} to open its UAPI socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"wireguard-go ended ({self.proc.returncode}):\n"
                                 f"{tail(self.log_path)}")
        return self

    def wg(self, *args: str) -> str:
        return run(["ip", "netns", "exec", self.ns, "wg", *args]).stdout

    def set(self, *args: str) -> None:
        self.wg("set", self.name, *args)

    def configure(self, keys: Keypair, addresses: list[str], listen_port: int | None = None
                  ) -> None:
        """Private key, listening port, addresses, and the link up."""
        key_file = keys.write_private(self.workdir / f"{self.name}.key")
        self.set("private-key", str(key_file),
                 *(["listen-port", str(listen_port)] if listen_port is not None else []))
        for address in addresses:
            run(["ip", "-n", self.ns, "address", "add", address, "dev", self.name])
        run(["ip", "-n", self.ns, "link", "set", self.name, "up"])

    def add_peer(self, public_key: str, allowed_ips: list[str], endpoint: str | None = None,
                 preshared_key_file: Path | None = None) -> None:
        args = ["peer", public_key, "allowed-ips", ",".join(allowed_ips)]
        if endpoint is not None:
            args += ["endpoint", endpoint]
        if preshared_key_file is not None:
            args += ["preshared-key", str(preshared_key_file)]
        self.set(*args)

    def peers(self) -> dict[str, dict[str, Any]]:
        """`wg show NAME dump` per peer public key: endpoint, latest_handshake (Unix seconds,
        0 = never), rx_bytes, tx_bytes (the bytes of the peer's IP packets, as wg counts them)."""
        lines = self.wg("show", self.name, "dump").splitlines()[1:]
        peers = {}
        for line in lines:
            fields = line.split("\t")
            peers[fields[0]] = {"endpoint": fields[2], "allowed_ips": fields[3],
                                "latest_handshake": int(fields[4]), "rx_bytes": int(fields[5]),
                                "tx_bytes": int(fields[6])}
        return peers

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # A killed wireguard-go leaves its socket (and a stale one would confuse `wg`).
        self.socket_path.unlink(missing_ok=True)
        subprocess.run(["ip", "-n", self.ns, "link", "delete", self.name],
                       capture_output=True, check=False)



# ── For the integration tests: message sizes, and what wg and wireguard-go say ─────────────


def transport_message_size(inner_bytes: int) -> int:
    """The transport message (as `wg show` and tunlabd count its bytes) that carries an inner
    packet of `inner_bytes`, one well below the MTU: a 16-byte header, the packet zero-padded
    to a multiple of 16, a 16-byte tag (WIREGUARD.md, "Messages")."""
    return 16 + -(-inner_bytes // 16) * 16 + 16


def preshared_keys(interface: WireguardGo) -> dict[str, str | None]:
    """`wg show NAME preshared-keys`: per peer public key its preshared key, None for none."""
    keys: dict[str, str | None] = {}
    for line in interface.wg("show", interface.name, "preshared-keys").splitlines():
        public, preshared = line.split("\t")
        keys[public] = None if preshared == "(none)" else preshared
    return keys


def log_lines_with(interface: WireguardGo, text: str) -> int:
    """How many lines of wireguard-go's verbose log contain `text`, e.g. "Received packet
    with invalid mac1": what it did with messages that `wg show` does not count."""
    try:
        log = interface.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return sum(text in line for line in log.splitlines())
