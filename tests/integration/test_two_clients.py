"""Lab task 5 with two clients: U and U2 ping V at the same time through one server."""

from harness.counters import only_peer_with_allowed_ip
from harness.seed import (U2_ADDRESS, U2_TUNNEL_ADDRESS, U_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS,
                          client_config, server_config)

PINGS = 40


def test_two_clients_ping_v_concurrently(lab):
    server = lab.start_daemon("s", {"lab": server_config()})
    lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS)})
    lab.start_daemon("u2", {"lab": client_config(U2_TUNNEL_ADDRESS)})

    from_u = lab.ping_in_background("u", V_ADDRESS, PINGS, interval=0.02)
    from_u2 = lab.ping_in_background("u2", V_ADDRESS, PINGS, interval=0.02)
    u_result, u2_result = from_u.result(), from_u2.result()

    assert (u_result.transmitted, u_result.received) == (PINGS, PINGS), u_result.output
    assert (u2_result.transmitted, u2_result.received) == (PINGS, PINGS), u2_result.output

    # The server learned each client as its own peer, at the client's real address.
    tunnel = server.tunnel()
    u_peer = only_peer_with_allowed_ip(tunnel, f"{U_TUNNEL_ADDRESS}/32")
    u2_peer = only_peer_with_allowed_ip(tunnel, f"{U2_TUNNEL_ADDRESS}/32")
    assert u_peer["learned"] and u2_peer["learned"]
    assert u_peer["endpoint"].startswith(f"{U_ADDRESS}:"), u_peer
    assert u2_peer["endpoint"].startswith(f"{U2_ADDRESS}:"), u2_peer
    assert len(tunnel["peers"]) == 2, tunnel["peers"]
