"""The SEED VPN lab's numbers (docs/lab.md): its hosts' addresses, the networks, the server's
port, the inner (tunnel) addresses, and the tunnel files of its two ends in the JSON that
tunlabd documents. lab.py builds the topology from them.

    U  10.9.0.5  ─┐
    U2 10.9.0.6  ─┼─ 10.9.0.0/24
    S  10.9.0.11 ─┘   S 192.168.60.11 ── V 192.168.60.5 (default route via .60.11)
"""

from __future__ import annotations

from typing import Any

U_ADDRESS = "10.9.0.5"
U2_ADDRESS = "10.9.0.6"
SERVER_ADDRESS = "10.9.0.11"
SERVER_PRIVATE_ADDRESS = "192.168.60.11"
V_ADDRESS = "192.168.60.5"
PRIVATE_NETWORK = "192.168.60.0/24"
TUNNEL_NETWORK = "192.168.53.0/24"
SERVER_PORT = 9090

# Inner addresses used throughout the lab report.
SERVER_TUNNEL_ADDRESS = "192.168.53.11"
U_TUNNEL_ADDRESS = "192.168.53.99"
U2_TUNNEL_ADDRESS = "192.168.53.98"


def server_config(**overrides: Any) -> dict[str, Any]:
    """The lab's server-router: listens on 9090 and learns its clients."""
    config: dict[str, Any] = {
        "addresses": [f"{SERVER_TUNNEL_ADDRESS}/24"],
        "listen_port": SERVER_PORT,
    }
    config.update(overrides)
    return config


def client_config(tunnel_address: str, **overrides: Any) -> dict[str, Any]:
    """The lab's client: routes the private network into the tunnel towards the server."""
    config: dict[str, Any] = {
        "addresses": [f"{tunnel_address}/24"],
        "routes": [PRIVATE_NETWORK],
        "peers": [{
            "endpoint": f"{SERVER_ADDRESS}:{SERVER_PORT}",
            "allowed_ips": [PRIVATE_NETWORK, TUNNEL_NETWORK],
        }],
    }
    config.update(overrides)
    return config
