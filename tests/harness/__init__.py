"""The test harness of tunlab, shared by tests/integration, tests/lab and bench/: one job per
module.

  prerequisites  the binaries under test (TUNLABD, TUNLABCTL) and what the machine must have
  process        running commands: run(), as another user, this package's own programs,
                 wait_until()
  netns          network namespaces: commands and sockets inside them, Hosts (a set of them)
  seed           the SEED lab's addresses and ports, and the tunnel files of its two ends
  daemon         one tunlabd process and its private dbus-daemon (Daemon, PrivateBus)
  traffic        ping, TCP transfers, iperf3, latency figures between hosts (Traffic)
  lab            the SEED topology (Lab): hosts, daemons and traffic together
  counters       tunlabd's counters: drop reasons, deltas, datagram accounting, peers
  procfs         measuring a daemon from outside: RSS, fds, the kernel's UDP counters
  packets        packet builders and raw senders
  dbus_wire      a D-Bus client that speaks the wire protocol itself (sends anything)
  bus_storm      call storms from several processes over dbus_wire
  dbus_client    a python3-dbus client of org.tunlab1; also a program (python3 -m)
  bus_sweep      every introspected method at the largest size; also a program (python3 -m)
  monitor        `tunlabctl --json monitor` read as it prints
  plugin         the pytest hooks and fixtures both suites share

The suites find this package through their pytest.ini (`pythonpath = ..`) and load the
plugin from their conftest.py (`pytest_plugins`); bench/ through its `harness` symlink.
"""
