"""A bulk TCP transfer U → V through the tunnel arrives intact."""

import hashlib
import os

from lab import U_TUNNEL_ADDRESS, V_ADDRESS, client_config, server_config

TRANSFER_BYTES = 20 * 1024 * 1024


def test_20_megabytes_over_tcp_arrive_intact(lab):
    server = lab.start_daemon("s", {"lab": server_config()})
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS)})

    data = os.urandom(TRANSFER_BYTES)
    transfer = lab.tcp_transfer("u", "v", V_ADDRESS, data)

    # The connection really went through the tunnel: V saw U's tunnel address.
    assert transfer.sender_address == U_TUNNEL_ADDRESS
    assert transfer.received_bytes == TRANSFER_BYTES
    assert transfer.sha256 == hashlib.sha256(data).hexdigest()
    # Every payload byte crossed both daemons (plus TCP/IP headers).
    assert client.tunnel()["counters"]["tx_bytes"] > TRANSFER_BYTES
    assert server.tunnel()["counters"]["rx_bytes"] > TRANSFER_BYTES
