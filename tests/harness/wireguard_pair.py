"""Two tunlabd speaking WireGuard to each other in the lab, made with tunlabctl only, for the
tests of the UAPI socket (tests/integration/test_wireguard_uapi.py, test_hostile_uapi.py).

    U (10.9.0.5)  tunnel "wg", device wgc0, 10.7.0.2/24, UDP 40001,
                  one peer: the server at 10.9.0.11:51820, allowed 10.7.0.0/24
    S (10.9.0.11) tunnel "wg", device wgs0, 10.7.0.1/24, UDP 51820,
                  one peer: the client (no endpoint: learned), allowed 10.7.0.2/32

Both private keys come from key files the test made, so that the tests know them (the UAPI
socket hands them out in hex, `wg showconf` in base64). Each daemon serves its socket in its
own directory (Daemon.uapi_dir); `Daemon.wg()` runs Debian's `wg` against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.daemon import Daemon
from harness.lab import Lab
from harness.process import wait_until
from harness.seed import SERVER_ADDRESS, U_ADDRESS
from harness.uapi import socket_path
from harness.wireguard import WIREGUARD_PORT, Keypair

TUNNEL = "wg"
TUNNEL_PATH = "/org/tunlab1/tunnel/wg"
SERVER_INTERFACE = "wgs0"
CLIENT_INTERFACE = "wgc0"
SERVER_TUNNEL = "10.7.0.1"
CLIENT_TUNNEL = "10.7.0.2"
CLIENT_PORT = 40001
SERVER_ENDPOINT = f"{SERVER_ADDRESS}:{WIREGUARD_PORT}"
CLIENT_ENDPOINT = f"{U_ADDRESS}:{CLIENT_PORT}"
SOCKET_TIMEOUT = 5.0


@dataclass
class WireguardPair:
    lab: Lab
    server: Daemon
    client: Daemon
    server_keys: Keypair
    client_keys: Keypair

    @property
    def server_socket(self) -> Path:
        return socket_path(self.server.uapi_dir, SERVER_INTERFACE)

    @property
    def client_socket(self) -> Path:
        return socket_path(self.client.uapi_dir, CLIENT_INTERFACE)

    def wait_for_sockets(self) -> None:
        for path in (self.server_socket, self.client_socket):
            wait_until(path.exists, SOCKET_TIMEOUT, f"the UAPI socket {path}")

    def ping(self, count: int = 3) -> None:
        """Pings from U to the server's tunnel address: every one answered."""
        result = self.lab.ping("u", SERVER_TUNNEL, count, 0.02)
        assert (result.transmitted, result.received) == (count, count), result.output

    def ping_eventually(self, role: str = "u", timeout: float = 20.0) -> None:
        """After a change that starts the handshakes over: one ping answered within
        `timeout` (a stale session may need REKEY_TIMEOUT and more to be replaced)."""
        destination = SERVER_TUNNEL if role == "u" else CLIENT_TUNNEL
        wait_until(lambda: self.lab.ping(role, destination, 1).received == 1, timeout,
                   f"a ping from {role} to {destination} to be answered")

    def restart_client(self) -> None:
        """A clean restart of U's daemon: its tunnel starts its handshakes over at once."""
        self.client.stop()
        self.client.start()
        wait_until(self.client_socket.exists, SOCKET_TIMEOUT, f"{self.client_socket}")

    def server_peers(self) -> dict[str, dict[str, Any]]:
        """The server tunnel's peers by public key, from `tunlabctl --json status`."""
        return {peer["public_key"]: peer for peer in self.server.bus_status()[TUNNEL]["peers"]}


def start_pair(lab: Lab, workdir: Path) -> WireguardPair:
    server_keys, client_keys = Keypair.generate(), Keypair.generate()
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    server.ctl("create", TUNNEL, "--protocol", "wireguard", "--interface", SERVER_INTERFACE,
               "--private-key-file", str(server_keys.write_private(workdir / "server.key")),
               "--address", f"{SERVER_TUNNEL}/24", "--listen-port", str(WIREGUARD_PORT))
    server.ctl("--tunnel", TUNNEL, "add-peer", "--public-key", client_keys.public,
               "--allowed-ips", f"{CLIENT_TUNNEL}/32")
    client.ctl("create", TUNNEL, "--protocol", "wireguard", "--interface", CLIENT_INTERFACE,
               "--private-key-file", str(client_keys.write_private(workdir / "client.key")),
               "--address", f"{CLIENT_TUNNEL}/24", "--listen-port", str(CLIENT_PORT))
    client.ctl("--tunnel", TUNNEL, "add-peer", SERVER_ENDPOINT, "--public-key",
               server_keys.public, "--allowed-ips", "10.7.0.0/24")
    pair = WireguardPair(lab, server, client, server_keys, client_keys)
    pair.wait_for_sockets()
    return pair
