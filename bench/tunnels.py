"""The tunnels bench/run measures U → V through, each between U (client) and the server-router
S, with the lab's tunnel addresses (U 192.168.53.99, S 192.168.53.1) and U's route to the
private network 192.168.60.0/24 through it:

  TunlabTunnel       two tunlabd, protocol "plain" (the lab's) or "wireguard" (keys made here),
  WireguardGoTunnel  two Debian wireguard-go, configured with `wg set`: the peer to compare the
                     wireguard protocol with,
  OpenVpnTunnel      two Debian OpenVPN 2.6 in peer-to-peer mode with `--cipher none --auth
                     none`: the peer to compare the plain protocol with (nothing encrypted
                     either, one packet per datagram plus OpenVPN's opcode and packet id).

start() brings both ends up and returns what the tunnel carries (its MTU); stop() takes them
down and returns a problem found on the way (a daemon that did not stop cleanly), or None;
pids() names the processes that move the packets, server first, for their CPU time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.daemon import Daemon
from harness.process import WaitTimeout, tail, wait_until
from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, SERVER_TUNNEL_ADDRESS,
                          TUNNEL_NETWORK, U_TUNNEL_ADDRESS, client_config, server_config)
from harness.wireguard import Keypair, WireguardGo

# What the client sends into the tunnel: the private network and the tunnel's own.
CLIENT_ALLOWED_IPS = [PRIVATE_NETWORK, TUNNEL_NETWORK]


def stop_daemons(the_lab) -> str | None:
    """Clean shutdown of the lab's daemons (Lab.stop_daemons and its checks); if that
    fails, kills what is left so that the next case starts clean, and returns the problem."""
    try:
        the_lab.stop_daemons()
        return None
    except Exception as error:
        the_lab.kill_daemons()
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"


class TunlabTunnel:
    def __init__(self, protocol: str, settings: dict[str, Any] | None = None):
        self.protocol = protocol
        self.settings = settings or {}
        self.daemons: list[Daemon] = []  # server, client

    @property
    def label(self) -> str:
        return f"tunlabd, {self.protocol}"

    def configs(self, workdir: Path, extra_server_peers: list[dict[str, Any]] = ()
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The server's and the client's tunnel files."""
        if self.protocol == "plain":
            assert not extra_server_peers, "plain servers learn their peers"
            return (server_config(**self.settings),
                    client_config(U_TUNNEL_ADDRESS, **self.settings))
        server_keys, client_keys = Keypair.generate(), Keypair.generate()
        server = server_config(
            protocol="wireguard", private_key_file=str(server_keys.write_private(
                workdir / "server.key")),
            peers=[{"public_key": client_keys.public, "allowed_ips": [f"{U_TUNNEL_ADDRESS}/32"]},
                   *extra_server_peers], **self.settings)
        client = client_config(
            U_TUNNEL_ADDRESS, protocol="wireguard",
            private_key_file=str(client_keys.write_private(workdir / "client.key")),
            peers=[{"endpoint": f"{SERVER_ADDRESS}:{SERVER_PORT}",
                    "public_key": server_keys.public, "allowed_ips": CLIENT_ALLOWED_IPS}],
            **self.settings)
        self.server_public_key = server_keys.public
        return server, client

    def start(self, the_lab, workdir: Path, extra_server_peers: list[dict[str, Any]] = ()
              ) -> int:
        server, client = self.configs(workdir, extra_server_peers)
        self.daemons = [the_lab.start_daemon("s", {"lab": server}),
                        the_lab.start_daemon("u", {"lab": client})]
        device = self.daemons[1].interfaces["lab"]
        if the_lab.route_device("u", PRIVATE_NETWORK) != device:
            raise RuntimeError(f"U does not route {PRIVATE_NETWORK} into {device}")
        return self.daemons[1].tunnel()["mtu"]

    def stop(self, the_lab) -> str | None:
        return stop_daemons(the_lab)

    def pids(self) -> list[int]:
        return [daemon.proc.pid for daemon in self.daemons]


class WireguardGoTunnel:
    label = "wireguard-go"

    def __init__(self):
        self.ends: list[WireguardGo] = []
        self.daemons: list[Daemon] = []  # no tunlab bus to measure

    def start(self, the_lab, workdir: Path) -> int:
        server_keys, client_keys = Keypair.generate(), Keypair.generate()
        server = WireguardGo(the_lab.ns["s"], workdir).start()
        self.ends.append(server)
        client = WireguardGo(the_lab.ns["u"], workdir).start()
        self.ends.append(client)
        server.configure(server_keys, [f"{SERVER_TUNNEL_ADDRESS}/24"], listen_port=SERVER_PORT)
        server.add_peer(client_keys.public, [f"{U_TUNNEL_ADDRESS}/32"])
        client.configure(client_keys, [f"{U_TUNNEL_ADDRESS}/24"])
        client.add_peer(server_keys.public, CLIENT_ALLOWED_IPS,
                        endpoint=f"{SERVER_ADDRESS}:{SERVER_PORT}")
        the_lab.ip("u", "route", "add", PRIVATE_NETWORK, "dev", client.name)
        return int(the_lab.ip("u", "-o", "link", "show", client.name).stdout.split(" mtu ")[1]
                   .split()[0])

    def stop(self, the_lab) -> str | None:
        for end in self.ends:
            end.close()
        self.ends = []
        return None

    def pids(self) -> list[int]:
        return [end.proc.pid for end in self.ends]


class OpenVpnTunnel:
    label = "OpenVPN, --cipher none --auth none"

    def __init__(self, device: str = "ovpn0", port: int = SERVER_PORT,
                 addresses: tuple[str, str] = (SERVER_TUNNEL_ADDRESS, U_TUNNEL_ADDRESS),
                 route: tuple[str, ...] = (PRIVATE_NETWORK,)):
        """`addresses`: the server's and U's tunnel addresses; `route`: what U routes into
        it (`ip route add` arguments before "dev")."""
        self.device = device
        self.port = port
        self.addresses = addresses
        self.route = route
        self.procs = []
        self.daemons: list[Daemon] = []  # no tunlab bus to measure

    def start(self, the_lab, workdir: Path) -> int:
        common = ["openvpn", "--dev", self.device, "--dev-type", "tun", "--proto", "udp",
                  "--cipher", "none", "--auth", "none", "--verb", "3"]
        server, client = self.addresses
        ends = {"s": ["--lport", str(self.port), "--ifconfig", server, client],
                "u": ["--remote", SERVER_ADDRESS, str(self.port), "--nobind",
                      "--ifconfig", client, server]}
        logs = {}
        for role, options in ends.items():
            logs[role] = the_lab.workdir / f"openvpn-{self.device}-{role}.log"
            logs[role].unlink(missing_ok=True)
            self.procs.append(the_lab.spawn(role, common + options, log_name=logs[role].name))
        for role, log in logs.items():
            try:
                wait_until(lambda: "Initialization Sequence Completed"
                           in log.read_text(errors="replace"), 15, f"OpenVPN in {role} to start")
            except WaitTimeout:
                raise RuntimeError(f"OpenVPN in {role} did not start:\n{tail(log)}") from None
        the_lab.ip("u", "route", "add", *self.route, "dev", self.device)
        return int(the_lab.ip("u", "-o", "link", "show", self.device).stdout.split(" mtu ")[1]
                   .split()[0])

    def stop(self, the_lab) -> str | None:
        problem = None
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
                proc.wait()
                problem = "OpenVPN did not stop on SIGTERM"
        self.procs = []
        return problem

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]
