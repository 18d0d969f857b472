"""Bulk TCP through the tunnel, both ways, arrives intact, and both daemons count the same
packets: the kernel hands tunlabd 64 KB TCP segments (TUN offload) that leave as separate
datagrams, and the receiving tunlabd writes runs of them back as one (coalescing), yet the
counters count datagrams, as on the wire."""

import hashlib
import os

import pytest

from harness.process import wait_until
from harness.seed import U_TUNNEL_ADDRESS, V_ADDRESS, client_config, server_config

TRANSFER_BYTES = 20 * 1024 * 1024


def assert_arrives_intact(transfer, data):
    assert transfer.received_bytes == len(data)
    assert transfer.sha256 == hashlib.sha256(data).hexdigest()


def assert_counted_alike(lab, sender, receiver):
    """What one daemon sent, the other received: packet for packet, byte for byte (nothing is
    lost on the lab's veth pairs unless a socket buffer overflows, which the kernel counts)."""
    def both_sides():
        sent, received = sender.tunnel()["counters"], receiver.tunnel()["counters"]
        # The last ACKs may still be on their way: wait until the two agree.
        if (received["rx_packets"], received["rx_bytes"]) == \
                (sent["tx_packets"], sent["tx_bytes"]):
            return sent, received
        return None

    if lab.udp_receive_errors("s") + lab.udp_receive_errors("u") > 0:
        # A slow build (sanitizers) let a socket buffer overflow: TCP resent what was lost,
        # and the receiver can only have counted less than was sent.
        sent, received = sender.tunnel()["counters"], receiver.tunnel()["counters"]
        assert received["rx_packets"] < sent["tx_packets"], (sent, received)
    else:
        sent, received = wait_until(both_sides, 5, "both daemons to count the same packets")
    for counters in (sent, received):
        assert not {k: v for k, v in counters.items() if k.startswith("drop_") and v}, counters


@pytest.mark.parametrize("mtu, client_args", [(None, ()), (1500, ()), (None, ("--no-offload",))],
                         ids=["default-mtu", "lab-mtu-1500", "client-without-offloads"])
def test_20_megabytes_each_way_arrive_intact(lab, mtu, client_args):
    # At the lab's MTU of 1500 a segment plus its UDP/IP header exceeds the 1500-byte path,
    # so the kernel refuses to segment UDP (EINVAL) and tunlabd sends datagram by datagram,
    # fragmented, as the lab's programs would. A client without offloads moves packets one
    # by one: the wire is the same, so it works with a server that has them.
    extra = {} if mtu is None else {"mtu": mtu}
    server = lab.start_daemon("s", {"lab": server_config(**extra)})
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS, **extra)},
                              args=client_args)
    data = os.urandom(TRANSFER_BYTES)

    upload = lab.tcp_transfer("u", "v", V_ADDRESS, data)
    # The connection really went through the tunnel: V saw U's tunnel address.
    assert upload.sender_address == U_TUNNEL_ADDRESS
    assert_arrives_intact(upload, data)
    assert client.tunnel()["counters"]["tx_bytes"] > TRANSFER_BYTES
    assert_counted_alike(lab, client, server)

    download = lab.tcp_transfer("v", "u", U_TUNNEL_ADDRESS, data, port=5002)
    assert_arrives_intact(download, data)
    assert server.tunnel()["counters"]["tx_bytes"] > TRANSFER_BYTES
    assert_counted_alike(lab, server, client)
