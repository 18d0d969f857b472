#!/bin/bash
# The system test: the .deb installed into booted Debian 12 containers that play the SEED lab
# (docs/lab.md). One command, as root:
#
#   tests/system/run.sh [--deb FILE] [--keep] WORKDIR
#
# Without --deb, the package is built first with packaging/build-deb into WORKDIR (objects
# kept in WORKDIR/deb-build for the next run). See tests/system/README.md.
#
#   U (container)        server-router (container)              V (plain namespace)
#   eth0 10.9.0.5/24 --- eth0 10.9.0.11/24 | eth1 192.168.60.11 --- eth0 192.168.60.5/24
#
# 1. apt install ./tunlabd_*.deb in both: active, enabled, hardened (exposure <= 2.0, printed)
# 2. tunlabctl sets up the lab; U pings V (and bash completion offers the live names); a
#    tunnel file plus systemctl reload adds a tunnel
# 3. systemctl restart, kill -9, a burst of crashes, stop + D-Bus activation, a watchdog
#    timeout (SIGSTOP) and a reboot of both containers: every time tunlabd comes back with the
#    same configuration and U pings V again
# 4. an unprivileged user is refused every change (all mutating D-Bus methods, via tunlabctl
#    and busctl), may still read; a member of group tunlab may change; stock wg(8) reads and
#    changes a wireguard tunnel as root, through the unit's sandbox, and nobody else may
# 5. apt remove stops the service and removes its devices and routes, keeps the state (a
#    reinstall brings the tunnels back); apt purge removes the state
#
# Exit status: 0 passed, 1 failed, 77 skipped (not root, or systemd-nspawn/debootstrap
# missing).
set -euo pipefail
# (With pipefail, `cmd | grep -q` fails when grep quits early and cmd gets SIGPIPE: the checks
# below grep a captured output instead.)

readonly SUITE=bookworm
# What the containers need besides minbase, including every run-time dependency of the
# package so that `apt install ./file.deb` works offline. Changing this list changes the
# cache key, so a new root file system is made.
readonly PACKAGES=systemd,systemd-sysv,dbus,iproute2,iputils-ping,procps,libsdbus-c++1,libmnl0,liburing2,libsystemd0,libstdc++6,libssl3,libsodium23,bash-completion,wireguard-tools
readonly CACHE_FORMAT=1  # bump when the preparation of the cached root changes
readonly CACHE_ROOT=${TUNLAB_SYSTEM_TEST_CACHE:-/var/cache/tunlab-system-test}
readonly WATCHDOG_SECONDS=30  # WatchdogSec= of systemd/tunlabd.service
readonly BURST_CRASHES=8     # more than systemd's default start limit of 5 in 10 s

top=$(cd "$(dirname "$0")/../.." && pwd)
deb=""
keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --deb) deb=$(realpath "$2"); shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 1 ]; then
    echo "usage: $0 [--deb FILE] [--keep] WORKDIR" >&2
    exit 2
fi

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
for tool in systemd-nspawn debootstrap nsenter ip python3 flock; do
    command -v "$tool" >/dev/null || skip "needs $tool (apt-get install systemd-container debootstrap)"
done
[ -c /dev/net/tun ] || skip "needs /dev/net/tun"

mkdir -p "$1"
workdir=$(cd "$1" && pwd)
run=$workdir/run.$$
mkdir -p "$run"
started=$(date +%s)

# ── output ──────────────────────────────────────────────────────────────────────────────

say() { printf '%s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; }
step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }

# ── the containers and the namespaces ─────────────────────────────────────────────────────

declare -A NSPAWN=() LEADER=() NETNS=()
CONTAINERS=(u sr)
prefix=tlsys$$
NETNS=([u]=$prefix-u [sr]=$prefix-sr [v]=$prefix-v)

# Runs a command inside a container (all its namespaces), with a clean environment.
inside() {
    local name=$1
    shift
    timeout 180 nsenter -t "${LEADER[$name]}" -a -- \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# Polls `"$@"` every 0.2 s until it succeeds or SECONDS seconds have passed.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$(($(date +%s) + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            fail "timed out after ${seconds}s waiting for: $what"
        fi
        sleep 0.2
    done
}

diagnostics() {
    local name
    for name in "${CONTAINERS[@]}"; do
        if [ -z "${LEADER[$name]:-}" ] || ! kill -0 "${LEADER[$name]}" 2>/dev/null; then
            continue
        fi
        say "---- $name: systemctl status tunlabd; journalctl -u tunlabd"
        inside "$name" systemctl status --no-pager --lines=0 tunlabd 2>&1 || true
        inside "$name" journalctl --no-pager -o short-monotonic -n 60 -u tunlabd 2>&1 || true
    done
}

fail() {
    say ""
    say "FAIL: $*"
    diagnostics
    exit 1
}

# The root file system: debootstrap once per package list, kept unpacked (an overlay's lower
# layer, shared read-only by every container of every run).
base_root() {
    local key mirror
    key=$(printf '%s\n' "$SUITE" "$PACKAGES" "$CACHE_FORMAT" | sha256sum | cut -c1-16)
    base=$CACHE_ROOT/$SUITE-$key
    if [ -e "$base/complete" ]; then
        return
    fi
    mkdir -p "$CACHE_ROOT"
    exec {lock}>"$CACHE_ROOT/lock"
    flock "$lock"
    if [ ! -e "$base/complete" ]; then
        mirror=${TUNLAB_DEBIAN_MIRROR:-$(debian_mirror)}
        say "making the cached root file system (once): debootstrap $SUITE from $mirror"
        rm -rf "$base"
        mkdir -p "$base"
        debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$base/rootfs" "$mirror" \
            >"$base/debootstrap.log" 2>&1 ||
            { tail -n 20 "$base/debootstrap.log"; fail "debootstrap failed (log: $base/debootstrap.log)"; }
        chroot "$base/rootfs" apt-get clean
        printf '%s\n' "$PACKAGES" >"$base/packages"
        touch "$base/complete"
    fi
    flock -u "$lock"
}

# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list files).
debian_mirror() {
    local url
    url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk -v suite="$SUITE" '
            /^URIs:/ { uris = $2 } /^Suites:/ { suites = $0 }
            /^$/ { if (suites ~ "[ ]" suite "([ ]|$)" && uris != "") { print uris; exit } uris = ""; suites = "" }
            END { if (suites ~ "[ ]" suite "([ ]|$)" && uris != "") print uris }' | head -n 1)
    if [ -z "$url" ]; then
        url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk -v suite="$SUITE" '$1 == "deb" && $0 ~ " " suite " " {
                for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' | head -n 1)
    fi
    echo "${url:-http://deb.debian.org/debian}"
}

# The lab's wiring: U and the server-router are containers, V is a plain namespace.
make_network() {
    local ns
    for ns in "${NETNS[@]}"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    ip link add eth0 netns "${NETNS[u]}" type veth peer name eth0 netns "${NETNS[sr]}"
    ip link add eth1 netns "${NETNS[sr]}" type veth peer name eth0 netns "${NETNS[v]}"
    ip -n "${NETNS[u]}" addr add 10.9.0.5/24 dev eth0
    ip -n "${NETNS[sr]}" addr add 10.9.0.11/24 dev eth0
    ip -n "${NETNS[sr]}" addr add 192.168.60.11/24 dev eth1
    ip -n "${NETNS[v]}" addr add 192.168.60.5/24 dev eth0
    for ns in "${NETNS[@]}"; do
        ip -n "$ns" link set eth0 up
    done
    ip -n "${NETNS[sr]}" link set eth1 up
    ip -n "${NETNS[v]}" route add default via 192.168.60.11
    # The server-router forwards (a container cannot write its /proc/sys).
    ip netns exec "${NETNS[sr]}" sysctl -qw net.ipv4.ip_forward=1
}

# nspawn would give each container a copy of the host's /dev/net/tun, and a host without
# udev (like this CI machine) has it as 0600. On a Debian machine udev makes it 0666
# (50-udev-default.rules), and tunlabd, which runs as the unprivileged user tunlabd, relies
# on that; so the containers get a node with udev's mode from the moment they boot.
make_tun_node() {
    mknod -m 0666 "$run/tun" c 10 200
}

# Each container gets its own writable layer over the cached root.
make_root() {
    local name=$1
    mkdir -p "$run/$name/upper" "$run/$name/work" "$run/$name/root"
    mount -t overlay "overlay-$prefix-$name" \
        -o "lowerdir=$base/rootfs,upperdir=$run/$name/upper,workdir=$run/$name/work" \
        "$run/$name/root"
}

# Boots a container (in the background) and finds its PID 1.
start_container() {
    local name=$1
    # CAP_NET_ADMIN: nspawn grants it with --private-network only, not with a namespace path;
    # the namespace is the container's alone, so it is as safe here.
    systemd-nspawn -D "$run/$name/root" --register=no --keep-unit -b --console=pipe \
        --hostname="$name" --network-namespace-path="/run/netns/${NETNS[$name]}" \
        --capability=CAP_NET_ADMIN --bind="$run/tun:/dev/net/tun" \
        </dev/null >>"$run/$name/console.log" 2>&1 &
    NSPAWN[$name]=$!
    local deadline=$(($(date +%s) + 30)) leader=""
    while [ -z "$leader" ]; do
        leader=$(pgrep -P "${NSPAWN[$name]}" -x systemd || true)
        if [ -z "$leader" ]; then
            kill -0 "${NSPAWN[$name]}" 2>/dev/null ||
                { tail -n 20 "$run/$name/console.log"; fail "systemd-nspawn for $name exited"; }
            [ "$(date +%s)" -lt "$deadline" ] || fail "no systemd in container $name after 30s"
            sleep 0.1
        fi
    done
    LEADER[$name]=$leader
}

# Waits until the container's systemd has finished booting.
systemd_answers() {
    case $(inside "$1" systemctl is-system-running 2>/dev/null) in
        initializing | starting | running | degraded | maintenance) return 0 ;;
        *) return 1 ;;
    esac
}

wait_booted() {
    local name=$1 state
    # systemctl cannot connect until systemd has set itself up; then wait for the boot.
    wait_for 60 "systemd in container $name" systemd_answers "$name"
    state=$(inside "$name" timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
    case $state in
        running) ;;
        degraded) say "  note: $name is degraded: $(inside "$name" systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)" ;;
        *) fail "container $name did not boot (state '$state'; console: $run/$name/console.log)" ;;
    esac
}

stop_container() {
    local name=$1
    local pid=${NSPAWN[$name]:-}
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true  # nspawn asks the container's systemd to halt
        local deadline=$(($(date +%s) + 30))
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    NSPAWN[$name]=""
    LEADER[$name]=""
}

cleanup() {
    local status=$? name ns
    trap - EXIT INT TERM
    for name in "${CONTAINERS[@]}"; do
        stop_container "$name"
        if mountpoint -q "$run/$name/root" 2>/dev/null; then
            umount "$run/$name/root" 2>/dev/null || umount -l "$run/$name/root" || true
        fi
    done
    for ns in "${NETNS[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    if [ "$keep" = 1 ] || [ "$status" -ne 0 ]; then
        say "logs and container layers: $run"
    else
        rm -rf "$run"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ── checks ───────────────────────────────────────────────────────────────────────────────

# The configuration part of `tunlabctl --json status`: what must come back after a restart, a
# crash or a reboot (not counters, timestamps, learned peers, an ephemeral port, or a device
# name the kernel picked).
configuration() {
    local name=$1
    inside "$name" tunlabctl --json status | python3 -c '
import json, sys
tunnels = json.load(sys.stdin)["tunnels"]
for t in tunnels:
    for key in ("counters", "path", "state"):
        t.pop(key)
    if t["listen_port"] not in (9090,):
        t.pop("listen_port")  # ephemeral: a new one after every start
    # Not configured here, so the kernel names the device (tunN in start order), and the
    # order of file tunnels and saved ones need not be the same after a restart.
    t.pop("interface")
    t["peers"] = sorted(
        [{k: p[k] for k in ("endpoint", "allowed_ips", "keepalive")}
         for p in t["peers"] if not p["learned"]], key=json.dumps)
print(json.dumps(sorted(tunnels, key=lambda t: t["name"]), sort_keys=True))'
}

main_pid() { inside "$1" systemctl show -P MainPID tunlabd.service; }

service_active() {
    [ "$(inside "$1" systemctl is-active tunlabd.service)" = active ]
}

# Active with a MainPID other than $2.
restarted() {
    local pid
    service_active "$1" && pid=$(main_pid "$1") && [ "$pid" != 0 ] && [ "$pid" != "$2" ]
}

ping_v() {
    inside u ping -n -q -c 3 -i 0.2 -W 2 -w 15 192.168.60.5 >"$run/ping.log" 2>&1 ||
        { cat "$run/ping.log"; fail "U cannot ping V through the tunnel ($*)"; }
    ok "U pings V ($*)"
}

expect_configuration() {
    local name=$1 expected=$2 why=$3 actual
    actual=$(configuration "$name")
    [ "$actual" = "$expected" ] ||
        fail "$name: configuration after $why differs:
  before: $expected
  after:  $actual"
    ok "$name: tunnels, peers, addresses and routes are back after $why"
}

# COMPREPLY of tunlabctl's bash completion for a command line ending in the word being typed.
complete_words() {
    local name=$1 line=$2
    # shellcheck disable=SC2016  # expanded by the bash inside the container
    inside "$name" bash -c '
        source /usr/share/bash-completion/bash_completion
        source /usr/share/bash-completion/completions/tunlabctl
        COMP_LINE=$1; COMP_POINT=${#1}
        read -ra COMP_WORDS <<<"$1"
        [[ $1 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _tunlabctl tunlabctl "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$line" | sort | xargs
}

# Dummy arguments for a D-Bus signature (busctl call syntax). The bus policy refuses the call
# before anything looks at them.
dummy_arguments() {
    local signature=$1 args=() rest
    rest=$signature
    while [ -n "$rest" ]; do
        case $rest in
            "a{sv}"*) args+=(0); rest=${rest#"a{sv}"} ;;
            a[sobqnuixtd]*) args+=(0); rest=${rest:2} ;;
            s*) args+=(x); rest=${rest:1} ;;
            o*) args+=(/org/tunlab1/x); rest=${rest:1} ;;
            b*) args+=(false); rest=${rest:1} ;;
            [qnuixt]*) args+=(1); rest=${rest:1} ;;
            *) fail "dummy_arguments: extend it for the signature '$signature'" ;;
        esac
    done
    printf '%s\n' "${args[@]}"
}

# ── the test ─────────────────────────────────────────────────────────────────────────────

if [ -z "$deb" ]; then
    step "0. building the package (packaging/build-deb)"
    # Compiled objects are kept in WORKDIR/deb-build: the next run recompiles what changed.
    deb=$(BUILD_DEB_CACHE=${BUILD_DEB_CACHE:-$workdir/deb-build} "$top/packaging/build-deb" "$workdir" | tail -n 1)
    ok "built $deb"
fi
[ -f "$deb" ] || fail "no package at $deb"

step "booting Debian 12 as U and as the server-router"
base_root
ok "root file system: $base"
make_network
make_tun_node
for name in "${CONTAINERS[@]}"; do
    make_root "$name"
    cp "$deb" "$run/$name/root/var/tmp/"
    start_container "$name"
done
for name in "${CONTAINERS[@]}"; do
    wait_booted "$name"
    ok "$name booted (systemd PID ${LEADER[$name]} on the host)"
done
package=/var/tmp/$(basename "$deb")

step "1. apt install ./$(basename "$deb")"
for name in "${CONTAINERS[@]}"; do
    inside "$name" apt-get install -y --no-install-recommends "$package" >"$run/$name/apt-install.log" 2>&1 ||
        { tail -n 30 "$run/$name/apt-install.log"; fail "$name: apt install failed"; }
    [ "$(inside "$name" systemctl is-active tunlabd.service)" = active ] ||
        fail "$name: tunlabd is not active after apt install"
    [ "$(inside "$name" systemctl is-enabled tunlabd.service)" = enabled ] ||
        fail "$name: tunlabd is not enabled after apt install"
    ok "$name: installed; tunlabd.service is active and enabled"
done
pid=$(main_pid u)
user=$(inside u ps -o user= -p "$pid" | xargs)
# shellcheck disable=SC2016  # awk's $2
capabilities=$(inside u awk '/^CapEff/ {print $2}' "/proc/$pid/status")
[ "$user" = tunlabd ] || fail "tunlabd runs as '$user', not as the user tunlabd"
[ "$capabilities" = 0000000000001000 ] ||
    fail "tunlabd's effective capabilities are $capabilities, not CAP_NET_ADMIN alone"
ok "tunlabd runs as user tunlabd with CAP_NET_ADMIN only (CapEff $capabilities)"
verify=$(inside u systemd-analyze verify --man=no tunlabd.service 2>&1) ||
    fail "systemd-analyze verify tunlabd.service: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify tunlabd.service complains: $verify"
ok "systemd-analyze verify tunlabd.service: no complaints"
status_text=$(inside u systemctl show -P StatusText tunlabd.service)
[ "$status_text" = "0 tunnel(s), 0 peer(s)" ] || fail "unexpected STATUS= '$status_text'"
ok "sd_notify STATUS: $status_text"
inside u systemd-analyze security --no-pager tunlabd.service >"$run/security.txt" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for tunlabd.service: \([0-9.]*\).*/\1/p' "$run/security.txt")
say "  systemd-analyze security tunlabd.service (what is still exposed):"
grep '✗' "$run/security.txt" | sed 's/^/    /' || true
say "    $(grep 'Overall exposure' "$run/security.txt")"
[ -n "$exposure" ] || { cat "$run/security.txt"; fail "no exposure score from systemd-analyze"; }
python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" ||
    fail "exposure $exposure is above 2.0"
ok "exposure $exposure <= 2.0"

step "2. tunlabctl sets up the lab"
inside sr tunlabctl create tun0 --address 192.168.53.11/24 --listen-port 9090 >/dev/null
inside u tunlabctl create tun0 --address 192.168.53.99/24 >/dev/null
inside u tunlabctl add-peer 10.9.0.11:9090 --allowed-ips 192.168.60.0/24,192.168.53.0/24 >/dev/null
inside u tunlabctl add-route 192.168.60.0/24
ok "server-router: tun0 192.168.53.11/24 on UDP 9090; U: tun0 192.168.53.99/24, peer 10.9.0.11:9090, route 192.168.60.0/24"
ping_v "first setup"
grep -q 'dev tun0' <<<"$(inside u ip route show 192.168.60.0/24)" || fail "U has no route 192.168.60.0/24 dev tun0"
# A tunnel file, as an admin writes it, and systemctl reload (SIGHUP): read from the
# read-only ConfigurationDirectory, started without a restart.
inside sr sh -c 'cat >/etc/tunlab/tunnels.d/lab2.json' <<'JSON'
{"addresses": ["10.77.0.1/24"], "listen_port": 9191}
JSON
before=$(main_pid sr)
inside sr systemctl reload tunlabd.service
if [ "$(main_pid sr)" != "$before" ] || ! service_active sr; then
    fail "sr: tunlabd did not survive systemctl reload"
fi
inside sr tunlabctl --tunnel lab2 status >/dev/null || fail "sr: no tunnel lab2 after systemctl reload"
grep -q '10.77.0.1/24' <<<"$(inside sr ip -br addr show)" || fail "sr: lab2's address is not on an interface"
ok "sr: /etc/tunlab/tunnels.d/lab2.json + systemctl reload: tunnel lab2 up, same PID"
declare -A config=()
for name in "${CONTAINERS[@]}"; do
    config[$name]=$(configuration "$name")
done
words=$(complete_words u "tunlabctl del")
[ "$words" = "del-route delete" ] || fail "completion of 'tunlabctl del': '$words'"
words=$(complete_words u "tunlabctl delete ")
[ "$words" = tun0 ] || fail "completion of 'tunlabctl delete ': '$words'"
words=$(complete_words u "tunlabctl del-route ")
[ "$words" = 192.168.60.0/24 ] || fail "completion of 'tunlabctl del-route ': '$words'"
words=$(complete_words u "tunlabctl remove-peer ")
grep -qw '10.9.0.11:9090' <<<"$words" || fail "completion of 'tunlabctl remove-peer ': '$words'"
words=$(complete_words u "tunlabctl --tunnel ")
[ "$words" = tun0 ] || fail "completion of 'tunlabctl --tunnel ': '$words'"
words=$(complete_words u "tunlabctl create x --mode ")
[ "$words" = "tap tun" ] || fail "completion of 'tunlabctl create x --mode ': '$words'"
ok "bash completion offers commands, options, tunnel names, peers and routes from the daemon"

step "3a. systemctl restart tunlabd"
for name in "${CONTAINERS[@]}"; do
    before=$(main_pid "$name")
    inside "$name" systemctl restart tunlabd.service
    restarted "$name" "$before" || fail "$name: not active with a new PID after restart"
    expect_configuration "$name" "${config[$name]}" "systemctl restart"
done
# READY=1 comes once the saved tunnels are up, and STATUS= counts them.
status_text=$(inside u systemctl show -P StatusText tunlabd.service)
[ "$status_text" = "1 tunnel(s), 1 peer(s)" ] || fail "U: STATUS='$status_text' after the restart"
ok "U: STATUS=$status_text"
ping_v "after systemctl restart"

step "3b. kill -9 tunlabd"
for name in "${CONTAINERS[@]}"; do
    before=$(main_pid "$name")
    restarts=$(inside "$name" systemctl show -P NRestarts tunlabd.service)
    inside "$name" kill -KILL "$before"
    wait_for 20 "$name: systemd restarts tunlabd after kill -9" restarted "$name" "$before"
    [ "$(inside "$name" systemctl show -P NRestarts tunlabd.service)" -gt "$restarts" ] ||
        fail "$name: NRestarts did not grow"
    ok "$name: systemd restarted tunlabd (PID $before -> $(main_pid "$name"))"
    expect_configuration "$name" "${config[$name]}" "kill -9"
done
ping_v "after kill -9"

# systemd's default start limit (5 starts in 10 s) once turned five bad calls in ten seconds
# into a service that stayed down; the unit's limits let it restart after every crash.
step "3b'. a burst of crashes: kill -SEGV $BURST_CRASHES times in a row, each time it is back"
before_burst=$(inside u systemctl show -P NRestarts tunlabd.service)
burst_started=$(date +%s)
for crash in $(seq "$BURST_CRASHES"); do
    before=$(main_pid u)
    inside u kill -SEGV "$before"
    wait_for 20 "U: systemd restarts tunlabd after crash $crash of $BURST_CRASHES" restarted u "$before"
done
[ "$(inside u systemctl show -P NRestarts tunlabd.service)" -ge $((before_burst + BURST_CRASHES)) ] ||
    fail "U: NRestarts did not grow by $BURST_CRASHES"
service_active u || fail "U: tunlabd not active after $BURST_CRASHES crashes in a row"
ok "U: $BURST_CRASHES crashes in $(($(date +%s) - burst_started)) s, tunlabd restarted after each"
expect_configuration u "${config[u]}" "a burst of crashes"
ping_v "after a burst of crashes"

step "3c. systemctl stop, then a D-Bus call starts tunlabd again (activation)"
for name in "${CONTAINERS[@]}"; do
    inside "$name" systemctl stop tunlabd.service
    ! service_active "$name" || fail "$name: tunlabd still active after systemctl stop"
    ! inside "$name" ip link show tun0 >/dev/null 2>&1 || fail "$name: tun0 still there after stop"
    inside "$name" tunlabctl status >/dev/null || fail "$name: tunlabctl status did not start tunlabd"
    service_active "$name" || fail "$name: tunlabd not active after the D-Bus call"
    expect_configuration "$name" "${config[$name]}" "stop and D-Bus activation"
done
ping_v "after D-Bus activation"

step "3d. a hung daemon (SIGSTOP): the watchdog (WatchdogSec=${WATCHDOG_SECONDS}s) restarts it"
before=$(main_pid u)
inside u kill -STOP "$before"
wait_for $((WATCHDOG_SECONDS + 20)) "U: the watchdog restarts a stopped tunlabd" restarted u "$before"
grep -q 'Watchdog timeout' <<<"$(inside u journalctl --no-pager -u tunlabd.service)" ||
    fail "U: tunlabd was restarted, but not by the watchdog"
ok "U: watchdog timeout, restarted (PID $before -> $(main_pid u))"
expect_configuration u "${config[u]}" "a watchdog restart"
ping_v "after the watchdog restart"

step "3e. reboot both containers"
for name in "${CONTAINERS[@]}"; do
    stop_container "$name"
done
for name in "${CONTAINERS[@]}"; do
    start_container "$name"
done
for name in "${CONTAINERS[@]}"; do
    wait_booted "$name"
    service_active "$name" || fail "$name: tunlabd is not active after the reboot"
    expect_configuration "$name" "${config[$name]}" "a reboot"
done
ping_v "after a reboot of both"

step "4. an unprivileged user is refused every change"
inside u useradd --create-home alice
inside u useradd --create-home --groups tunlab bob
snapshot=$(configuration u)
refused() {  # as alice: must exit 1 (refused), with an access error
    local output code=0
    output=$(inside u runuser -u alice -- "$@" 2>&1) || code=$?
    # tunlabctl prints the error name, busctl the text for EACCES.
    if [ "$code" != 1 ] || ! grep -qE 'AccessDenied|PermissionDenied|Access denied' <<<"$output"; then
        fail "alice: '$*' was not refused as expected (exit $code): $output"
    fi
}
for command in "create evil0 --address 10.99.0.1/24" "delete tun0" "add-peer 10.9.0.99:9090" \
    "remove-peer 10.9.0.11:9090" "add-address 192.168.53.98/24" "remove-address 192.168.53.99/24" \
    "add-route 10.98.0.0/24" "del-route 192.168.60.0/24" "reset-counters"; do
    # shellcheck disable=SC2086  # the command's words
    refused tunlabctl $command
done
ok "tunlabctl: create, delete, add-peer, remove-peer, add-/remove-address, add-/del-route, reset-counters: all refused (exit 1)"
# Every method of every org.tunlab1 interface (GetTunnel, which only reads, aside), on the
# manager, the tunnel and its peer, straight over the bus.
tunnel_path=$(inside u busctl call org.tunlab1 /org/tunlab1 org.tunlab1.Manager GetTunnel s tun0 | awk '{print $2}' | tr -d '"')
peer_path=$(inside u busctl get-property org.tunlab1 "$tunnel_path" org.tunlab1.Tunnel Peers | awk '{print $3}' | tr -d '"')
[ -n "$peer_path" ] || fail "U: no peer object below $tunnel_path"
methods=0
for path in /org/tunlab1 "$tunnel_path" "$peer_path"; do
    while read -r interface method signature; do
        [ "$method" = GetTunnel ] && continue
        mapfile -t arguments < <(dummy_arguments "$signature")
        refused busctl call org.tunlab1 "$path" "$interface" "$method" "$signature" "${arguments[@]}"
        methods=$((methods + 1))
    done < <(inside u busctl introspect --no-pager --no-legend org.tunlab1 "$path" | awk '
        $2 == "interface" { interface = $1 }
        $2 == "method" && interface ~ /^org\.tunlab1\./ {
            print interface, substr($1, 2), ($3 == "-" ? "" : $3) }')
done
[ "$methods" -ge 10 ] || fail "only $methods methods found by introspection"
ok "busctl: all $methods changing methods of Manager, Tunnel and Peer refused"
[ "$(configuration u)" = "$snapshot" ] || fail "U: the configuration changed under alice's refused calls"
inside u runuser -u alice -- tunlabctl status >/dev/null || fail "alice may not read (tunlabctl status)"
ok "nothing changed; alice may still read (tunlabctl status)"
inside u runuser -u bob -- tunlabctl add-route 10.97.0.0/24 || fail "bob (group tunlab) may not add a route"
inside u runuser -u bob -- tunlabctl del-route 10.97.0.0/24 || fail "bob (group tunlab) may not delete a route"
ok "bob, a member of group tunlab, may change (add-route, del-route)"
inside u tunlabctl create wgsys --protocol wireguard --interface wgsys0 --listen-port 51820 \
    --address 10.66.0.1/24 >/dev/null
socket_owner=$(inside u stat -c '%A %U' /run/wireguard/wgsys0.sock) ||
    fail "U: no wg control socket /run/wireguard/wgsys0.sock"
[ "$socket_owner" = "srwx------ tunlabd" ] || fail "U: wgsys0.sock is '$socket_owner'"
[ "$(inside u wg show wgsys0 listen-port)" = 51820 ] || fail "U: wg show wgsys0 listen-port"
peer_key=$(inside u sh -c 'wg genkey | wg pubkey')
inside u wg set wgsys0 peer "$peer_key" allowed-ips 10.66.0.2/32 || fail "U: wg set as root"
peers=$(inside u tunlabctl --tunnel wgsys --json status)
grep -q "$peer_key" <<<"$peers" || fail "U: the peer added with wg set is not on the bus: $peers"
for user in alice bob; do
    if inside u runuser -u "$user" -- wg show wgsys0 >/dev/null 2>&1; then
        fail "$user may use wg's control socket"
    fi
done
inside u tunlabctl delete wgsys
inside u test ! -e /run/wireguard/wgsys0.sock || fail "U: wgsys0.sock outlived its tunnel"
ok "wg show/set work as root through the unit's sandbox (socket srwx------ tunlabd); alice and bob (group tunlab) may not; the socket goes with its tunnel"

step "5. apt remove, reinstall, apt purge"
for name in "${CONTAINERS[@]}"; do
    inside "$name" apt-get remove -y tunlabd >"$run/$name/apt-remove.log" 2>&1 ||
        { tail -n 30 "$run/$name/apt-remove.log"; fail "$name: apt remove failed"; }
    ! inside "$name" pgrep -x tunlabd >/dev/null || fail "$name: tunlabd still runs after apt remove"
    ! inside "$name" ip link show tun0 >/dev/null 2>&1 || fail "$name: tun0 is still there after apt remove"
    ! inside "$name" busctl status org.tunlab1 >/dev/null 2>&1 || fail "$name: org.tunlab1 still on the bus"
    inside "$name" test -f /var/lib/tunlab/tunnels/tun0.json || fail "$name: apt remove removed the state"
    ok "$name: removed; tunlabd stopped, tun0 gone, state kept"
done
[ -z "$(inside u ip route show 192.168.60.0/24)" ] || fail "U: the route into the tunnel is still there"
ok "U: the route 192.168.60.0/24 went with tun0"
for name in "${CONTAINERS[@]}"; do
    inside "$name" apt-get install -y --no-install-recommends "$package" >"$run/$name/apt-install.log" 2>&1 ||
        { tail -n 30 "$run/$name/apt-install.log"; fail "$name: reinstall failed"; }
    service_active "$name" || fail "$name: tunlabd is not active after the reinstall"
    expect_configuration "$name" "${config[$name]}" "remove and reinstall"
done
ping_v "after remove and reinstall"
for name in "${CONTAINERS[@]}"; do
    inside "$name" apt-get purge -y tunlabd >"$run/$name/apt-purge.log" 2>&1 ||
        { tail -n 30 "$run/$name/apt-purge.log"; fail "$name: apt purge failed"; }
    ! inside "$name" pgrep -x tunlabd >/dev/null || fail "$name: tunlabd still runs after apt purge"
    ! inside "$name" test -e /var/lib/tunlab || fail "$name: /var/lib/tunlab is still there after purge"
    ! inside "$name" test -e /etc/tunlab/tunnels.d/README || fail "$name: the conffile is still there after purge"
    if [ "$name" = sr ]; then
        # The admin's own tunnel file is not the package's to delete.
        inside sr test -f /etc/tunlab/tunnels.d/lab2.json || fail "sr: purge deleted the admin's lab2.json"
    else
        ! inside "$name" test -e /etc/tunlab || fail "$name: /etc/tunlab is still there after purge"
    fi
    ! inside "$name" sh -c 'ls /etc/systemd/system/*/tunlabd.service /etc/systemd/system/dbus-org.tunlab1.service' >/dev/null 2>&1 ||
        fail "$name: unit symlinks left after purge"
    ok "$name: purged; no state, conffile or unit links left$([ "$name" = sr ] && echo "; the admin's lab2.json kept")"
done

say ""
say "PASS: system test in $(($(date +%s) - started))s (exposure $exposure)"
