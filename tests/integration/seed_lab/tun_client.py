#!/usr/bin/env python3
# The SEED VPN lab's Task 5 client ("Handling Traffic in Both Directions"), as printed in
# the lab report (the SEED Labs "VPN Tunneling Lab"). Only OCR damage is repaired
# (os.O_RDWR, 0x400454ca, IFF_NO_PI, ifname_bytes, SERVER_IP/SERVER_PORT, indentation);
# behaviour is the lab's: select loop over socket and TUN, 2048-byte reads, every TUN
# packet sent to the server at 10.9.0.11:9090 from an ephemeral port.
# It needs scapy: run it with Debian's /usr/bin/python3.
import fcntl
import struct
import os
import time
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

# Create the tun interface
tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'tun%d', IFF_TUN | IFF_NO_PI)
ifname_bytes = fcntl.ioctl(tun, TUNSETIFF, ifr)

# Get the interface name
ifname = ifname_bytes.decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))
os.system("ip addr add 192.168.53.99/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
SERVER_IP="10.9.0.11"
SERVER_PORT=9090
fds = [sock, tun]

while True:
        ready,_,_=select.select(fds,[],[])
        for fd in ready:
                if fd is sock:
                        data,(ip,port)=sock.recvfrom(2048)
                        pkt = IP(data)
                        print("From socket: {} --> {}".format(pkt.src,pkt.dst))
                        os.write(tun,data)
                if fd is tun:
                        packet = os.read(tun, 2048)
                        if packet:
                                pkt = IP(packet)
                                print(pkt.summary())
                                sock.sendto(packet,(SERVER_IP,SERVER_PORT))
