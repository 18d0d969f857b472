"""tunlabd speaks the lab's wire format byte for byte: the lab's own Task 5 programs
(seed_lab/, run unchanged) work against it on either end."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from harness.counters import only_peer_with_allowed_ip
from harness.process import SYSTEM_PYTHON, wait_until
from harness.seed import (PRIVATE_NETWORK, SERVER_PORT, U_ADDRESS, U_TUNNEL_ADDRESS, V_ADDRESS,
                          client_config, server_config)

# The lab's own programs (Task 5's tun_client/tun_server), unchanged.
SEED_LAB_DIR = Path(__file__).resolve().parent / "seed_lab"

PINGS = 10
# The seed programs import scapy first, which takes a few seconds.
SEED_START_TIMEOUT = 60.0
# The lab leaves its TUN devices at the kernel's default MTU; tunlabd accepts the same
# "for lab fidelity" (docs/lab.md).
LAB_MTU = 1500
FULL_SIZE_PING = LAB_MTU - 28  # ICMP data bytes that make a 1500-byte IPv4 packet
TRANSFER_BYTES = 2 * 1024 * 1024


@pytest.fixture(autouse=True)
def needs_scapy():
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"the lab's programs need {SYSTEM_PYTHON}")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import scapy"], capture_output=True).returncode:
        pytest.skip(f"the lab's programs need scapy for {SYSTEM_PYTHON} (python3-scapy)")


def start_seed_program(lab, role, program, ready, what):
    """Runs a lab program and waits until `ready()`: the programs announce nothing, so the
    test watches the effects they produce."""
    # -u: their print() output goes straight to the log, useful when a test fails.
    proc = lab.spawn(role, [SYSTEM_PYTHON, "-u", str(SEED_LAB_DIR / program)],
                     log_name=f"{program}.log")

    def ready_or_dead():
        assert proc.poll() is None, f"{what} exited with {proc.returncode}, see {lab.workdir}"
        return ready()

    wait_until(ready_or_dead, SEED_START_TIMEOUT, what, interval=0.1)
    return proc


def start_seed_client(lab):
    # Its last setup step is the route into its TUN device.
    return start_seed_program(
        lab, "u", "tun_client.py",
        lambda: (lab.route_device("u", PRIVATE_NETWORK) or "").startswith("tun"),
        "the seed client's route into its TUN device")


def start_seed_server(lab):
    # It binds its socket after setting up its TUN device, so a bound port means ready.
    return start_seed_program(lab, "s", "tun_server.py",
                              lambda: lab.udp_port_bound("s", SERVER_PORT),
                              "the seed server's UDP socket on 9090")


def assert_all_answered(result, count):
    assert (result.transmitted, result.received) == (count, count), result.output


def assert_bulk_transfer_intact(lab):
    """TCP both ways: tunlabd hands the kernel's 64 KB segments to the lab's programs as
    separate, checksummed packets and coalesces theirs, and neither side may notice."""
    data = os.urandom(TRANSFER_BYTES)
    upload = lab.tcp_transfer("u", "v", V_ADDRESS, data)
    assert upload.sender_address == U_TUNNEL_ADDRESS
    assert upload.received_bytes == TRANSFER_BYTES
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    download = lab.tcp_transfer("v", "u", U_TUNNEL_ADDRESS, data, port=5002)
    assert download.received_bytes == TRANSFER_BYTES
    assert download.sha256 == hashlib.sha256(data).hexdigest()


def test_seed_client_with_tunlabd_server(lab):
    server = lab.start_daemon("s", {"lab": server_config()})
    seed_client = start_seed_client(lab)

    assert_all_answered(lab.ping("u", V_ADDRESS, PINGS), PINGS)
    assert_bulk_transfer_intact(lab)

    # tunlabd learned the lab client at its ephemeral port, as the lab's server does.
    peer = only_peer_with_allowed_ip(server.tunnel(), f"{U_TUNNEL_ADDRESS}/32")
    assert peer["learned"] and peer["endpoint"].startswith(f"{U_ADDRESS}:"), peer
    assert seed_client.poll() is None, "the seed client died"


def test_tunlabd_client_with_seed_server(lab):
    seed_server = start_seed_server(lab)
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS)})

    assert_all_answered(lab.ping("u", V_ADDRESS, PINGS), PINGS)

    # Nothing but the pings crossed (no IPv6 noise in the lab), and each daemon may bump its
    # counter a moment after ping saw the packet: poll, then compare exactly.
    counters = client.wait_for_tunnel(lambda t: t["counters"]["rx_packets"] >= PINGS,
                                      "U's rx_packets")["counters"]
    assert (counters["tx_packets"], counters["rx_packets"]) == (PINGS, PINGS), counters
    assert_bulk_transfer_intact(lab)
    assert seed_server.poll() is None, "the seed server died"


def test_full_size_packets_from_seed_client_to_tunlabd_server_at_mtu_1500(lab):
    """The lab's client sends 1500-byte packets (1528-byte datagrams, fragmented on the
    way); a tunlabd server configured with the lab's MTU takes them whole."""
    server = lab.start_daemon("s", {"lab": server_config(mtu=LAB_MTU)})
    start_seed_client(lab)

    assert_all_answered(lab.ping("u", V_ADDRESS, 3, size=FULL_SIZE_PING), 3)
    assert_bulk_transfer_intact(lab)
    assert server.tunnel()["counters"]["drop_too_big"] == 0


def test_full_size_packets_from_tunlabd_client_at_mtu_1500_to_seed_server(lab):
    client = lab.start_daemon("u", {"lab": client_config(U_TUNNEL_ADDRESS, mtu=LAB_MTU)})
    start_seed_server(lab)

    assert_all_answered(lab.ping("u", V_ADDRESS, 3, size=FULL_SIZE_PING), 3)
    assert_bulk_transfer_intact(lab)
    counters = client.tunnel()["counters"]
    assert counters["drop_send_error"] == counters["drop_too_big"] == 0, counters
