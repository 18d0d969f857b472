"""Lab task 6, tunnel breaking: a TCP session runs from U to V through the tunnel (the lab uses
telnet; here socat carries numbered lines, so that every byte can be checked); the tunnel is
broken, the session stalls; the tunnel comes back, and the SAME connection resumes, with every
byte delivered in order, because TCP retransmits what was lost.

Broken three ways:
- `tunlabctl delete tun0` on U, then the same tunlabctl commands again to recreate it;
- `kill -9` of U's tunlabd, then starting it again: the daemon saved the tunnel in its state
  directory, so it comes back by itself — nobody runs tunlabctl;
- `kill -9` of the server-router's tunlabd and a restart: it comes back listening on 9090 and
  learns U again from U's next (retransmitted) datagram.
"""

import pytest

from harness.seed import (PRIVATE_NETWORK, SERVER_ADDRESS, SERVER_PORT, U_ADDRESS, U_TUNNEL_ADDRESS,
                          V_ADDRESS)

from labkit import (TUNNEL, CounterStream, counter_text, create_client_tunnel, create_server_tunnel,
                    ctl, tunnel_names, tunnel_status)

# A stalled stream: nothing new for this long while we write a line every 20 ms.
QUIET_SECONDS = 1.0
# After the tunnel is back, TCP's next retransmission comes when its backed-off timer fires:
# about as long again as the outage lasted, a few seconds here.
RESUME_TIMEOUT = 30.0


def start_lab_session(lab):
    server = lab.start_daemon("s")
    client = lab.start_daemon("u")
    create_server_tunnel(server)
    create_client_tunnel(client)
    stream = CounterStream(lab, "u", "v", V_ADDRESS).start()
    # Flowing: a second's worth of lines arrived through the tunnel.
    stream.wait_received(50 * CounterStream.LINE_BYTES, 10, "the first 50 lines at V")
    return server, client, stream


def break_tunnel(lab, server, client, how):
    if how == "delete":
        ctl(client, "delete", TUNNEL)
        assert tunnel_names(client) == []
        assert lab.links_of_kind("u", "tun") == []
        assert lab.route_device("u", PRIVATE_NETWORK) is None
    elif how == "kill-client":
        client.proc.kill()  # SIGKILL: no shutdown code runs
        client.proc.wait(timeout=10)
        # The device lived only as long as the daemon's fd: the kernel removed it, and the
        # route with it.
        assert lab.links_of_kind("u", "tun") == []
        assert lab.route_device("u", PRIVATE_NETWORK) is None
    else:
        server.proc.kill()
        server.proc.wait(timeout=10)
        assert lab.links_of_kind("s", "tun") == []


def restore_tunnel(lab, server, client, how):
    if how == "delete":
        create_client_tunnel(client)  # the same three commands as at the start
    elif how == "kill-client":
        client.start()  # returns at READY=1; no tunlabctl
        tunnel = tunnel_status(client)
        assert tunnel["addresses"] == [f"{U_TUNNEL_ADDRESS}/24"]
        assert tunnel["routes"] == [PRIVATE_NETWORK]
        assert [p["endpoint"] for p in tunnel["peers"]] == [f"{SERVER_ADDRESS}:{SERVER_PORT}"]
        assert lab.route_device("u", PRIVATE_NETWORK) == tunnel["interface"]
    else:
        server.start()
        tunnel = tunnel_status(server)
        assert tunnel["listen_port"] == SERVER_PORT
        assert tunnel["peers"] == [], "learned peers are not saved: they are learned again"


@pytest.mark.parametrize("how", ["delete", "kill-client", "kill-server"])
def test_tcp_session_stalls_and_resumes_in_order(lab, how):
    server, client, stream = start_lab_session(lab)
    connection = stream.connection()
    retransmits_before = lab.snmp("u", "Tcp")["RetransSegs"]

    break_tunnel(lab, server, client, how)
    stalled_at = stream.wait_stalled(QUIET_SECONDS, timeout=10)
    # We kept writing: what U's TCP could not deliver waits in its send queue.
    backlog = 25 * CounterStream.LINE_BYTES
    assert stream.written_bytes > stalled_at + backlog, (stream.written_bytes, stalled_at)
    assert stream.send_queue() >= backlog
    restore_tunnel(lab, server, client, how)

    # Same connection, new bytes: it resumed.
    stream.wait_received(stalled_at + 1, RESUME_TIMEOUT, "the stream to resume")
    # Everything written up to now arrives (the backlog first, then live lines).
    caught_up = stream.written_bytes
    stream.wait_received(caught_up, RESUME_TIMEOUT, f"the {caught_up} bytes written so far")
    assert stream.connection() == connection, "a new TCP connection instead of the old one"
    retransmits = lab.snmp("u", "Tcp")["RetransSegs"] - retransmits_before
    if how == "kill-server":
        # U's tunnel stayed up: segments went out and died at the server's closed port, and
        # TCP sent them again once it was back.
        assert retransmits > 0
    # (When U's own tunnel is gone, U has no route to V: its TCP cannot send at all and
    # keeps the bytes queued until the route is back; nothing is lost, so nothing needs
    # retransmitting, except a segment that happened to be in flight at that moment.)

    received = stream.finish()
    lines = stream.written_lines
    assert len(received) == lines * CounterStream.LINE_BYTES, (len(received), lines)
    assert received == counter_text(lines), "lines lost, duplicated or out of order"

    # The tunnel that carries the session now is the restored one: the server has one peer
    # for U, at the port U's (new) tunnel sends from.
    client_port = tunnel_status(client)["listen_port"]
    server_peers = tunnel_status(server)["peers"]
    assert [(p["allowed_ips"], p["endpoint"]) for p in server_peers] == \
        [([f"{U_TUNNEL_ADDRESS}/32"], f"{U_ADDRESS}:{client_port}")], server_peers
    assert server_peers[0]["counters"]["rx_packets"] > 0
