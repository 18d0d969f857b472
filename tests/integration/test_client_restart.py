"""A client that restarts comes back from a new ephemeral port; the server follows it."""

from harness.counters import only_peer_with_allowed_ip
from harness.seed import U_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS, client_config, server_config

U_PREFIX = f"{U_TUNNEL_ADDRESS}/32"


def ping_passes(lab, count=5):
    result = lab.ping("u", V_ADDRESS, count)
    assert (result.transmitted, result.received) == (count, count), result.output


def restart_until_port_changes(client, old_port, attempts=3):
    """Restarts tunlabd; the kernel may (rarely) hand out the same ephemeral port again,
    which would not test roaming, so restart until it differs."""
    for _ in range(attempts):
        client.stop()
        client.start()
        new_port = client.tunnel()["listen_port"]
        if new_port != old_port:
            return new_port
    raise AssertionError(f"ephemeral port stayed {old_port} over {attempts} restarts")


def test_server_follows_restarted_client_to_its_new_port(lab):
    server = lab.start_daemon("s", {"lab": server_config()})
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS)})

    ping_passes(lab)
    old_port = client.tunnel()["listen_port"]
    assert old_port != 0
    peer = only_peer_with_allowed_ip(server.tunnel(), U_PREFIX)
    assert peer["endpoint"] == f"{U_ADDRESS}:{old_port}"

    new_port = restart_until_port_changes(client, old_port)

    ping_passes(lab)
    tunnel = server.tunnel()
    # Still ONE peer for U's address (it roamed), now at the new port.
    peer = only_peer_with_allowed_ip(tunnel, U_PREFIX)
    assert peer["endpoint"] == f"{U_ADDRESS}:{new_port}", peer
    assert len(tunnel["peers"]) == 1, tunnel["peers"]
