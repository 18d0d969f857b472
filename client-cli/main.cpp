// tunlabctl: a small client of the org.tunlab1 D-Bus API. It never touches the kernel itself;
// everything it does, busctl can do too (see docs/dbus-api.md), but for the keys `export`
// reads from a tunnel's WireGuard control socket (no key ever travels over D-Bus).
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>
#include <thread>

#include "api.hpp"
#include "keys.hpp"
#include "monitor.hpp"
#include "output.hpp"
#include "wg_quick_commands.hpp"

namespace tunlabctl {

namespace {

// Exit codes (documented in tunlabctl(1)).
constexpr int kSuccess = 0;
constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kUnreachable = 3;

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Unreachable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

bool means_daemon_absent(const std::string& error_name) {
    return error_name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
           error_name == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
           error_name == "org.freedesktop.DBus.Error.NoReply" ||
           error_name == "org.freedesktop.DBus.Error.Disconnected";
}

struct Settings {
    bool json = false;
    std::optional<std::string> tunnel;
};

// With one tunnel, commands that act on a tunnel need no --tunnel.
std::string selected_tunnel_path(Api& api, const Settings& settings) {
    if (settings.tunnel) {
        return api.tunnel_path(*settings.tunnel);
    }
    const auto paths = api.tunnel_paths();
    if (paths.size() == 1) {
        return paths.front();
    }
    if (paths.empty()) {
        throw UsageError("there is no tunnel yet; create one with: tunlabctl create NAME");
    }
    std::string names;
    for (const auto& path : paths) {
        names += (names.empty() ? "" : ", ") + api.tunnel(path).name;
    }
    throw UsageError("there are several tunnels (" + names + "): choose one with --tunnel NAME");
}

std::vector<PeerInfo> peers_of(Api& api, const TunnelInfo& tunnel) {
    std::vector<PeerInfo> peers;
    for (const auto& path : tunnel.peer_paths) {
        peers.push_back(api.peer(path));
    }
    return peers;
}

// A peer named by id ("3"), object path, endpoint ("10.9.0.11:9090") or, in a wireguard
// tunnel, public key.
std::string find_peer_path(Api& api, const TunnelInfo& tunnel, const std::string& peer) {
    // Ids and paths first: they need no call per peer, which with 10,000 peers is seconds.
    for (const auto& path : tunnel.peer_paths) {
        if (path == peer || path.substr(path.rfind('/') + 1) == peer) {
            return path;
        }
    }
    for (const auto& path : tunnel.peer_paths) {
        const PeerInfo info = api.peer(path);
        if (info.endpoint == peer || (!info.public_key.empty() && info.public_key == peer)) {
            return path;
        }
    }
    throw UsageError("tunnel " + tunnel.name + " has no peer '" + peer +
                     "' (give its id, object path, endpoint or public key; see tunlabctl status)");
}

void print_result(const Settings& settings, const std::string& key, const std::string& value,
                  const std::string& human) {
    if (settings.json) {
        std::cout << nlohmann::json{{key, value}}.dump() << "\n";
    } else {
        std::cout << human << "\n";
    }
}

int status(Api& api, const Settings& settings) {
    std::vector<std::string> paths;
    if (settings.tunnel) {
        paths.push_back(api.tunnel_path(*settings.tunnel));
    } else {
        paths = api.tunnel_paths();
    }
    nlohmann::json all = nlohmann::json::array();
    for (const auto& path : paths) {
        const auto tunnel = api.tunnel(path);
        const auto peers = peers_of(api, tunnel);
        if (settings.json) {
            all.push_back(to_json(tunnel, peers));
        } else {
            std::cout << describe_tunnel(tunnel, peers);
        }
    }
    if (settings.json) {
        std::cout << nlohmann::json{{"tunnels", all}}.dump(2) << "\n";
    } else if (paths.empty()) {
        std::cout << "no tunnels\n";
    }
    return kSuccess;
}

volatile std::sig_atomic_t g_interrupted = 0;

int stats(Api& api, const Settings& settings, bool watch, double interval) {
    const std::string path = selected_tunnel_path(api, settings);
    if (!watch) {
        const auto tunnel = api.tunnel(path);
        if (settings.json) {
            std::cout
                << nlohmann::json{{"tunnel", tunnel.name}, {"counters", tunnel.counters}}.dump()
                << "\n";
        } else {
            std::cout << "tunnel " << tunnel.name << "\n";
            for (const auto& [name, value] : tunnel.counters) {
                std::cout << "  " << name
                          << std::string(20 - std::min<size_t>(name.size(), 19), ' ') << value
                          << "\n";
            }
        }
        return kSuccess;
    }
    std::signal(SIGINT, [](int) { g_interrupted = 1; });
    auto previous = api.tunnel(path).counters;
    auto previous_time = std::chrono::steady_clock::now();
    while (!g_interrupted) {
        std::this_thread::sleep_for(std::chrono::duration<double>(interval));
        const auto tunnel = api.tunnel(path);
        const auto now = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(now - previous_time).count();
        auto rate = [&](const std::string& name) {
            return static_cast<double>(tunnel.counters.at(name) - previous.at(name)) / seconds;
        };
        if (settings.json) {
            std::cout << nlohmann::json{{"tunnel", tunnel.name},
                                        {"counters", tunnel.counters},
                                        {"rx_packets_per_second", rate("rx_packets")},
                                        {"tx_packets_per_second", rate("tx_packets")},
                                        {"rx_bits_per_second", rate("rx_bytes") * 8},
                                        {"tx_bits_per_second", rate("tx_bytes") * 8}}
                             .dump()
                      << std::endl;
        } else {
            std::cout << tunnel.name << ": rx " << static_cast<uint64_t>(rate("rx_packets"))
                      << " pkt/s " << human_bytes(rate("rx_bytes")) << "/s, tx "
                      << static_cast<uint64_t>(rate("tx_packets")) << " pkt/s "
                      << human_bytes(rate("tx_bytes")) << "/s | "
                      << describe_counters(tunnel.counters) << std::endl;
        }
        previous = tunnel.counters;
        previous_time = now;
    }
    return kSuccess;
}

std::vector<std::string> split_commas(const std::vector<std::string>& items) {
    std::vector<std::string> result;
    for (const auto& item : items) {
        size_t start = 0;
        while (start <= item.size()) {
            const size_t comma = std::min(item.find(',', start), item.size());
            if (comma > start) {
                result.push_back(item.substr(start, comma - start));
            }
            start = comma + 1;
        }
    }
    return result;
}

}  // namespace

int run(int argc, char** argv) {
    CLI::App app{"tunlabctl: control tunlabd, the tunlab VPN tunnel service, over D-Bus"};
    app.require_subcommand(1);
    // --json and --tunnel may also come after the command: tunlabctl add-peer X --tunnel t0
    app.fallthrough();
    Settings settings;
    app.add_flag("--json", settings.json, "Print machine-readable JSON");
    std::string tunnel_option;
    app.add_option("-t,--tunnel", tunnel_option,
                   "Tunnel to act on (may be left out when there is exactly one)");

    std::function<int(Api&)> action;
    std::function<int()> offline;  // a command that needs no tunlabd (keys)
    auto command = [&](const char* name, const char* help) {
        return app.add_subcommand(name, help);
    };

    command("status", "Show all tunnels, peers and counters")->callback([&] {
        action = [&](Api& api) { return status(api, settings); };
    });
    command("version", "Show the versions of tunlabctl and tunlabd")->callback([&] {
        action = [&](Api& api) {
            const std::string daemon = api.version();
            if (settings.json) {
                std::cout
                    << nlohmann::json{{"tunlabctl", TUNLAB_VERSION}, {"tunlabd", daemon}}.dump()
                    << "\n";
            } else {
                std::cout << "tunlabctl " << TUNLAB_VERSION << "\ntunlabd " << daemon << "\n";
            }
            return kSuccess;
        };
    });

    command("genkey", "Print a new private key (base64), as `wg genkey` does")->callback([&] {
        action = nullptr;
        offline = [] { return print_new_private_key(); };
    });
    command("pubkey", "Read a private key on stdin, print its public key, as `wg pubkey` does")
        ->callback([&] {
            action = nullptr;
            offline = [] { return print_public_key(std::cin); };
        });

    std::string name;
    std::string mode;
    std::string protocol;
    std::string private_key_file;
    std::vector<std::string> addresses;
    std::optional<uint16_t> listen_port;
    std::string listen_address;
    std::optional<uint32_t> mtu;
    auto* create = command("create", "Create a tunnel");
    create->add_option("NAME", name, "Tunnel name (letters, digits, '_', '-'; at most 15)")
        ->required();
    std::string interface;
    create->add_option("--interface", interface,
                       "Kernel name of the device (default: the kernel picks tunN/tapN)");
    create->add_option("--mode", mode, "tun (IP packets, default) or tap (Ethernet frames)")
        ->check(CLI::IsMember({"tun", "tap"}));
    create
        ->add_option("--protocol", protocol,
                     "plain (the lab's, default) or wireguard (encrypted, authenticated)")
        ->check(CLI::IsMember({"plain", "wireguard"}));
    create->add_option("--private-key-file", private_key_file,
                       "wireguard: our private key, read here and sent to tunlabd (default: "
                       "tunlabd makes one)");
    create->add_option("--address", addresses, "Address of the interface, CIDR (repeatable)");
    create->add_option("--listen-port", listen_port, "UDP port (default: ephemeral)");
    create->add_option("--listen-address", listen_address, "UDP address (default: ::, dual stack)");
    create->add_option(
        "--mtu", mtu,
        "Interface MTU (default: plain, the largest that does not fragment on a 1500 path; "
        "wireguard, 1420)");
    create->callback([&] {
        action = [&](Api& api) {
            Options options;
            if (!mode.empty()) {
                options["mode"] = mode;
            }
            if (!protocol.empty()) {
                options["protocol"] = protocol;
            }
            if (!private_key_file.empty()) {
                options["private_key"] = read_key_file(private_key_file, "--private-key-file");
            }
            if (!interface.empty()) {
                options["interface"] = interface;
            }
            if (!addresses.empty()) {
                options["addresses"] = addresses;
            }
            if (listen_port) {
                options["listen_port"] = *listen_port;
            }
            if (!listen_address.empty()) {
                options["listen_address"] = listen_address;
            }
            if (mtu) {
                options["mtu"] = *mtu;
            }
            const auto path = api.create_tunnel(name, options);
            print_result(settings, "tunnel", path, "created " + path);
            return kSuccess;
        };
    });

    auto* remove = command("delete", "Delete a tunnel");
    remove->add_option("NAME", name, "Tunnel name")->required();
    remove->callback([&] {
        action = [&](Api& api) {
            api.delete_tunnel(name);
            return kSuccess;
        };
    });

    std::string endpoint;
    std::vector<std::string> allowed_ips;
    std::optional<uint16_t> keepalive;
    std::string public_key;
    std::string preshared_key_file;
    auto* add_peer = command("add-peer", "Add a peer to the tunnel");
    auto* endpoint_option = add_peer->add_option(
        "ENDPOINT", endpoint,
        "host:port or [IPv6]:port of the peer (\"\" or, with --public-key, none: it will call us)");
    add_peer->add_option("--allowed-ips", allowed_ips,
                         "Inner prefixes routed to and accepted from the peer (CIDR[,CIDR]...)");
    add_peer->add_option("--keepalive", keepalive, "Send a keepalive every S seconds (0: off)");
    add_peer->add_option("--public-key", public_key, "wireguard: the peer's public key (base64)");
    add_peer->add_option("--preshared-key-file", preshared_key_file,
                         "wireguard: a preshared key for this peer, read here and sent");
    add_peer->callback([&] {
        action = [&](Api& api) {
            // An empty ENDPOINT ("") is a plain peer that will call us; none at all is a
            // forgotten argument, unless the public key names a wireguard peer.
            if (endpoint_option->count() == 0 && public_key.empty()) {
                throw UsageError(
                    "add-peer needs the peer's ENDPOINT (\"\": it will call us), "
                    "or the --public-key of a wireguard peer");
            }
            Options options;
            const auto prefixes = split_commas(allowed_ips);
            if (!prefixes.empty()) {
                options["allowed_ips"] = prefixes;
            }
            if (keepalive) {
                options["keepalive"] = *keepalive;
            }
            if (!public_key.empty()) {
                options["public_key"] = public_key;
            }
            if (!preshared_key_file.empty()) {
                options["preshared_key"] =
                    read_key_file(preshared_key_file, "--preshared-key-file");
            }
            const auto path = api.add_peer(selected_tunnel_path(api, settings), endpoint, options);
            print_result(settings, "peer", path, "added " + path);
            return kSuccess;
        };
    });

    std::string peer;
    auto* remove_peer =
        command("remove-peer", "Remove a peer (by id, object path, endpoint or public key)");
    remove_peer->add_option("PEER", peer, "Peer id, object path, endpoint or public key")
        ->required();
    remove_peer->callback([&] {
        action = [&](Api& api) {
            const auto tunnel = api.tunnel(selected_tunnel_path(api, settings));
            api.remove_peer(tunnel.path, find_peer_path(api, tunnel, peer));
            return kSuccess;
        };
    });

    std::string cidr;
    auto simple = [&](const char* command_name, const char* help, const char* argument,
                      void (Api::*call)(const std::string&, const std::string&)) {
        auto* sub = command(command_name, help);
        sub->add_option(argument, cidr, "CIDR")->required();
        sub->callback([&, call] {
            action = [&, call](Api& api) {
                (api.*call)(selected_tunnel_path(api, settings), cidr);
                return kSuccess;
            };
        });
    };
    simple("add-address", "Add an address to the tunnel's interface", "CIDR", &Api::add_address);
    simple("remove-address", "Remove an address from the tunnel's interface", "CIDR",
           &Api::remove_address);
    simple("add-route", "Route a destination into the tunnel", "CIDR", &Api::add_route);
    simple("del-route", "Stop routing a destination into the tunnel", "CIDR", &Api::remove_route);

    std::string import_file;
    std::optional<std::string> import_name;
    auto* import_command =
        command("import", "Create a tunnel from a wg-quick file (e.g. /etc/wireguard/wg0.conf)");
    import_command->add_option("FILE", import_file, "The wg-quick file, or - for stdin")
        ->required();
    import_command->add_option("--name", import_name,
                               "Tunnel name (default: the file's name without .conf)");
    import_command->callback([&] {
        action = [&](Api& api) {
            const auto path = import_wg_quick(api, import_file, import_name);
            print_result(settings, "tunnel", path, "created " + path);
            return kSuccess;
        };
    });
    auto* export_command =
        command("export", "Print a wireguard tunnel as a wg-quick file (keys: root only)");
    export_command->add_option("NAME", name, "Tunnel name")->required();
    export_command->callback(
        [&] { action = [&](Api& api) { return export_wg_quick(api, name); }; });

    bool watch = false;
    double interval = 1.0;
    auto* stats_command = command("stats", "Show the tunnel's counters (and rates with --watch)");
    stats_command->add_flag("-w,--watch", watch, "Print counters and rates until interrupted");
    stats_command->add_option("-i,--interval", interval, "Seconds between lines with --watch")
        ->check(CLI::Range(0.1, 3600.0));
    stats_command->callback(
        [&] { action = [&](Api& api) { return stats(api, settings, watch, interval); }; });
    command("reset-counters", "Set the tunnel's and its peers' counters to zero")->callback([&] {
        action = [&](Api& api) {
            api.reset_counters(selected_tunnel_path(api, settings));
            return kSuccess;
        };
    });
    command("monitor", "Print tunlabd's signals as they come")->callback([&] {
        action = [&](Api& api) { return monitor(api, settings.json); };
    });

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& help) {
        return app.exit(help);
    } catch (const CLI::CallForAllHelp& help) {
        return app.exit(help);
    } catch (const CLI::ParseError& error) {
        app.exit(error);
        return kUsage;
    }
    if (!tunnel_option.empty()) {
        settings.tunnel = tunnel_option;
    }
    if (offline) {
        try {
            return offline();
        } catch (const KeyError& error) {
            std::cerr << "tunlabctl: " << error.what() << "\n";
            return kUsage;
        }
    }

    std::unique_ptr<Api> api;
    try {
        api = std::make_unique<Api>();
    } catch (const sdbus::Error& error) {
        std::cerr << "tunlabctl: cannot connect to the system bus (" << error.getMessage()
                  << "); is dbus running? Start it with: systemctl start dbus\n";
        return kUnreachable;
    }
    try {
        return action(*api);
    } catch (const UsageError& error) {
        std::cerr << "tunlabctl: " << error.what() << "\n";
        return kUsage;
    } catch (const KeyError& error) {
        std::cerr << "tunlabctl: " << error.what() << "\n";
        return kUsage;
    } catch (const WgQuickCommandError& error) {
        std::cerr << "tunlabctl: " << error.what() << "\n";
        return kUsage;
    } catch (const sdbus::Error& error) {
        if (means_daemon_absent(error.getName())) {
            std::cerr << "tunlabctl: tunlabd is not running (" << error.getName()
                      << "); start it with: systemctl start tunlabd\n";
            return kUnreachable;
        }
        std::cerr << "tunlabctl: " << error.getName() << ": " << error.getMessage() << "\n";
        return kRefused;
    }
}

}  // namespace tunlabctl

int main(int argc, char** argv) {
    try {
        return tunlabctl::run(argc, argv);
    } catch (const std::exception& error) {
        std::cerr << "tunlabctl: " << error.what() << "\n";
        return 1;
    }
}
