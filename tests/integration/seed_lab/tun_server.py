#!/usr/bin/env python3
# The SEED VPN lab's Task 5 server-router program, as printed in a student's report of the
# SEED Labs "VPN Tunneling Lab". Only OCR damage is repaired (os.O_RDWR, 0x400454ca,
# IFF_TUN/IFF_NO_PI, ifname_bytes, SERVER_IP/SERVER_PORT, socket.SOCK_DGRAM, a wrapped
# print, indentation); behaviour is the lab's: bound to 0.0.0.0:9090, select loop over
# socket and TUN, 2048-byte reads, and return traffic goes to whatever address:port the
# last datagram came from (10.9.0.5:10000 until one arrives). Its
# "ip route add 192.168.60.0/24 dev tun0" fails with "File exists" on the server-router,
# exactly as it did in the lab (the network is directly connected there); harmless.
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
os.system("ip addr add 192.168.53.11/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
SERVER_IP = "0.0.0.0"
SERVER_PORT = 9090
ip = '10.9.0.5'
port = 10000
sock.bind((SERVER_IP, SERVER_PORT))
fds = [sock,tun]

while True:
        ready,_,_=select.select(fds,[],[])
        for fd in ready:
                if fd is sock:
                        print("sock...")
                        data,(ip, port) = sock.recvfrom(2048)
                        print("{}:{} --> {}:{}".format(ip, port, SERVER_IP, SERVER_PORT))
                        pkt = IP(data)
                        print("Inside: {} --> {}".format(pkt.src, pkt.dst))
                        os.write(tun, data)
                if fd is tun:
                        print("tun...")
                        packet = os.read(tun, 2048)
                        pkt = IP(packet)
                        print("Return: {}--{}".format(pkt.src,pkt.dst))
                        sock.sendto(packet,(ip,port))
