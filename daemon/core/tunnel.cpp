#include "core/tunnel.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <set>

#include "core/error.hpp"
#include "crypto/encoding.hpp"
#include "crypto/x25519.hpp"
#include "util/log.hpp"

namespace tunlab {

namespace {

RequestError failed(const std::string& what, const std::exception& cause) {
    return RequestError(ErrorKind::Failed, what + ": " + cause.what());
}

}  // namespace

namespace {
std::atomic<uint64_t> g_next_serial{1};
}

Tunnel::Tunnel(const TunnelConfig& config, Netlink& netlink, bool offload)
    : config_(config),
      netlink_(netlink),
      device_(config.mode, config.interface_or_template(), offload),
      socket_(config.listen_address, config.listen_port, offload) {
    serial_ = g_next_serial.fetch_add(1);
    // The name the kernel picked for "tun%d" is kept, so that the tunnel comes back on the
    // same device after a restart (firewall rules name it).
    config_.interface = device_.name();
    mtu_ = config.effective_mtu();  // with the peers: an IPv6 endpoint lowers the default
    config_.peers.clear();
    try {
        configure_device(config);
    } catch (...) {
        undo_device_configuration();
        throw;
    }
    DataPlaneSettings settings;
    settings.mode = config_.mode;
    settings.protocol = config_.protocol;
    settings.mtu = mtu_;
    settings.learning.enabled = config_.learn_peers;
    settings.learning.max_peers = config_.max_learned_peers;
    settings.learning.idle_timeout_us = uint64_t{config_.learned_peer_timeout_seconds} * 1'000'000;
    settings.device_offloads = device_.offloads();
    settings.udp_segmentation = socket_.segmentation_offload();
    settings.batched_device_reads = offload;
    settings.busy_poll_us = config_.busy_poll_us;
    settings.private_key = config_.private_key;
    data_plane_ =
        std::make_unique<DataPlane>(device_.fd(), socket_.fd(), socket_.family(), settings);
    for (const auto& peer : config.peers) {
        configured_peers_.set(data_plane_->allocate_peer_id(), peer);
    }
    // One command for all of them, posted before start(): the peers are in place before the
    // first packet, and the data plane publishes one snapshot, not one per peer.
    data_plane_->post([peers = configured_peers_.peers()](PeerTable& table) {
        for (const auto& [id, peer] : peers) {
            table.upsert(id, peer);
        }
    });
    configured_peers_.forget_changes();  // the first save of a tunnel saves every peer
    data_plane_->start();
}

Tunnel::~Tunnel() {
    data_plane_.reset();
    undo_device_configuration();
}

TunnelConfig Tunnel::config() const {
    TunnelConfig current = config_;
    current.peers.reserve(configured_peers_.size());
    for (const auto& [id, peer] : configured_peers_.peers()) {
        current.peers.push_back(peer);
    }
    return current;
}

// config_ holds the addresses and routes that are on the device because we put them there,
// one by one as each is added: if one fails, undo_device_configuration() takes off exactly the
// ones before it, never one that was there before us (adding that one is what failed).
void Tunnel::configure_device(const TunnelConfig& wanted) {
    const unsigned index = device_.index();
    config_.addresses.clear();
    config_.routes.clear();
    netlink_.set_mtu(index, mtu_);
    for (const auto& address : wanted.addresses) {
        netlink_.add_address(index, address);
        config_.addresses.push_back(address);
    }
    netlink_.set_link_up(index, true);
    for (const auto& route : wanted.routes) {
        netlink_.add_route(index, route);
        config_.routes.push_back(route);
    }
}

void Tunnel::undo_device_configuration() noexcept {
    // A device we created vanishes with its fd, and its addresses and routes with it. One that
    // existed before us loses what we added and gets back the MTU and link state it had.
    const auto& found = device_.found_settings();  // only for a device that was there
    if (!found) {
        return;
    }
    auto undo = [this](const char* what, auto&& action) {
        try {
            action();
        } catch (const std::exception& error) {
            log::debug(device_.name(), ": could not ", what, ": ", error.what());
        }
    };
    for (const auto& route : config_.routes) {
        undo("remove a route", [&] { netlink_.remove_route(device_.index(), route); });
    }
    for (const auto& address : config_.addresses) {
        undo("remove an address", [&] { netlink_.remove_address(device_.index(), address); });
    }
    undo("restore the MTU", [&] { netlink_.set_mtu(device_.index(), found->mtu); });
    if (!found->up) {
        undo("set the link down again", [&] { netlink_.set_link_up(device_.index(), false); });
    }
}

void Tunnel::require_data_plane(bool responded) const {
    if (!responded) {
        throw RequestError(ErrorKind::Failed,
                           "the data plane of tunnel " + config_.name + " is not responding");
    }
}

void Tunnel::execute(DataPlane::Command command) {
    require_data_plane(data_plane_->execute(std::move(command)));
}

std::string Tunnel::public_key() const {
    if (config_.private_key.empty()) {
        return {};
    }
    return crypto::key_to_base64(crypto::public_key_of(config_.private_key.key()));
}

IpAddress Tunnel::socket_address() const {
    if (socket_.family() == AF_INET && config_.listen_address.family == Family::V6) {
        return *IpAddress::parse("0.0.0.0");
    }
    return config_.listen_address;
}

uint32_t Tunnel::fitting_mtu() const {
    // Without an MTU of its own, the tunnel keeps the default that fits its peers: adding a
    // peer with an IPv6 endpoint lowers it, so that full-size packets are not fragmented.
    // Not config().effective_mtu(): that would copy every peer on every change.
    return config_.mtu ? *config_.mtu
                       : config_.effective_mtu(configured_peers_.any_ipv6_endpoint());
}

void Tunnel::set_mtu(uint32_t mtu) {
    if (mtu == mtu_) {
        return;
    }
    try {
        netlink_.set_mtu(device_.index(), mtu);
        mtu_ = mtu;
    } catch (const std::system_error& error) {
        throw failed("set MTU " + std::to_string(mtu), error);
    }
}

template <typename Apply, typename Undo>
void Tunnel::commit(Apply&& apply, Undo&& undo) {
    apply();  // throws having changed nothing
    const uint32_t mtu_before = mtu_;
    try {
        set_mtu(fitting_mtu());
        if (change_listener_) {
            change_listener_(*this);
        }
        configured_peers_.forget_changes();
    } catch (...) {
        try {
            undo();
            set_mtu(mtu_before);
        } catch (const std::exception& error) {
            // Kernel or data plane refusing to go back where they were a moment ago: say so,
            // the caller still gets the first error.
            log::error("tunnel ", config_.name,
                       ": could not undo a change that failed: ", error.what());
        }
        throw;
    }
}

void Tunnel::check_peer(PeerId id, const PeerConfig& peer) const {
    configured_peers_.check(id, peer);
}

std::shared_ptr<const PeerView> Tunnel::find_peer(PeerId id) const {
    const auto views = data_plane_->peers();
    // The views are in id order.
    const auto found = std::lower_bound(views->begin(), views->end(), id,
                                        [](const std::shared_ptr<const PeerView>& view,
                                           PeerId wanted) { return view->id < wanted; });
    if (found != views->end() && (*found)->id == id) {
        return *found;
    }
    throw RequestError(ErrorKind::NotFound,
                       "tunnel " + config_.name + " has no peer " + std::to_string(id));
}

void Tunnel::put_peer(PeerId id, const PeerConfig& in_data_plane,
                      const std::optional<PeerConfig>& configured) {
    execute([id, in_data_plane](PeerTable& table) { table.upsert(id, in_data_plane); });
    if (configured) {
        configured_peers_.set(id, *configured);
    }
}

PeerId Tunnel::add_peer(const PeerConfig& peer) {
    const PeerId id = data_plane_->allocate_peer_id();
    check_peer(id, peer);
    commit([&] { put_peer(id, peer, peer); },
           [&] {
               configured_peers_.erase(id);
               execute([id](PeerTable& table) { table.remove(id); });
           });
    return id;
}

void Tunnel::set_peers(const std::vector<PeerConfig>& wanted) {
    // What changes, checked against the peers as they will be (a prefix may move from one peer
    // to another in the same change), before anything is touched.
    struct Put {
        PeerId id;
        PeerConfig config;
        bool keep_endpoint;  // the configured endpoint stays: keep the one the peer roamed to
    };
    std::vector<Put> puts;
    std::vector<PeerId> removed;
    std::set<PeerId> kept;
    ConfiguredPeers next = configured_peers_;
    for (const auto& peer : wanted) {
        if (!peer.public_key) {
            throw RequestError(ErrorKind::InvalidArgument, "a peer without a public key");
        }
        const auto running = configured_peers_.find_by_public_key(*peer.public_key);
        if (!running || !kept.insert(*running).second) {
            puts.push_back({data_plane_->allocate_peer_id(), peer, false});
            continue;
        }
        const PeerConfig& before = *configured_peers_.find(*running);
        if (!(before == peer)) {
            puts.push_back({*running, peer, before.endpoint == peer.endpoint});
            next.erase(*running);
        }
    }
    for (const auto& [id, peer] : configured_peers_.peers()) {
        if (peer.public_key && !kept.contains(id)) {
            removed.push_back(id);
            next.erase(id);
        }
    }
    if (puts.empty() && removed.empty()) {
        return;
    }
    for (const auto& put : puts) {
        next.check(put.id, put.config);
        next.set(put.id, put.config);
    }
    // The peers this touches as the data plane has them, to put back if the change cannot be
    // saved.
    std::set<PeerId> touched(removed.begin(), removed.end());
    for (const auto& put : puts) {
        touched.insert(put.id);
    }
    std::vector<std::pair<PeerId, PeerConfig>> in_data_plane;
    for (const auto& view : *data_plane_->peers()) {
        if (touched.contains(view->id)) {
            in_data_plane.emplace_back(view->id, view->config);
        }
    }
    const ConfiguredPeers before = configured_peers_;
    commit(
        [&] {
            execute([&puts, &removed](PeerTable& table) {
                for (PeerId id : removed) {
                    table.remove(id);
                }
                for (const auto& put : puts) {
                    PeerConfig config = put.config;
                    if (const Peer* peer = table.find(put.id); peer && put.keep_endpoint) {
                        config.endpoint = peer->config.endpoint;
                    }
                    table.upsert(put.id, config);
                }
            });
            configured_peers_ = std::move(next);
        },
        [&] {
            configured_peers_ = before;
            execute([&in_data_plane, &puts](PeerTable& table) {
                for (const auto& put : puts) {
                    table.remove(put.id);
                }
                for (const auto& [id, config] : in_data_plane) {
                    table.upsert(id, config);
                }
            });
        });
}

void Tunnel::remove_peer(PeerId id) {
    const auto view = find_peer(id);
    const PeerConfig* configured = configured_peers_.find(id);
    if (configured == nullptr) {
        // A learned peer: nothing saved says it exists.
        execute([id](PeerTable& table) { table.remove(id); });
        return;
    }
    const PeerConfig saved = *configured;
    commit(
        [&] {
            execute([id](PeerTable& table) { table.remove(id); });
            configured_peers_.erase(id);
        },
        [&] { put_peer(id, view->config, saved); });
}

template <typename Edit>
void Tunnel::edit_peer(PeerId id, Edit&& edit) {
    const auto view = find_peer(id);
    PeerConfig requested = view->config;
    edit(requested);
    check_peer(id, requested);
    std::optional<PeerConfig> configured_before;
    std::optional<PeerConfig> configured_after;
    if (const PeerConfig* configured = configured_peers_.find(id)) {
        configured_before = *configured;
        configured_after = *configured;
        edit(*configured_after);
    }
    commit(
        [&] {
            // Onto the peer as the data plane has it now: its endpoint may have roamed.
            execute([id, edit](PeerTable& table) {
                if (Peer* peer = table.find(id)) {
                    PeerConfig updated = peer->config;
                    edit(updated);
                    table.upsert(id, updated);
                }
            });
            if (configured_after) {
                configured_peers_.set(id, *configured_after);
            }
        },
        [&] { put_peer(id, view->config, configured_before); });
}

void Tunnel::set_peer_endpoint(PeerId id, const std::optional<Endpoint>& endpoint) {
    edit_peer(id, [endpoint](PeerConfig& peer) { peer.endpoint = endpoint; });
}

void Tunnel::set_peer_allowed_ips(PeerId id, const std::vector<Prefix>& allowed_ips) {
    edit_peer(id, [allowed_ips](PeerConfig& peer) { peer.allowed_ips = allowed_ips; });
}

void Tunnel::add_address(const InterfaceAddress& address) {
    // One prefix length per address: 192.168.53.99/16 next to 192.168.53.99/24 is a mistake.
    const auto same_address = std::find_if(
        config_.addresses.begin(), config_.addresses.end(),
        [&address](const InterfaceAddress& present) { return present.address == address.address; });
    if (same_address != config_.addresses.end()) {
        throw RequestError(ErrorKind::AlreadyExists, "cidr: " + address.address.to_string() +
                                                         " is already on " + device_.name() +
                                                         " as " + same_address->to_string());
    }
    commit(
        [&] {
            try {
                netlink_.add_address(device_.index(), address);
            } catch (const std::system_error& error) {
                throw failed("add address " + address.to_string(), error);
            }
            config_.addresses.push_back(address);
        },
        [&] {
            config_.addresses.pop_back();
            netlink_.remove_address(device_.index(), address);
        });
}

void Tunnel::remove_address(const InterfaceAddress& address) {
    const auto position = std::find(config_.addresses.begin(), config_.addresses.end(), address);
    if (position == config_.addresses.end()) {
        throw RequestError(ErrorKind::NotFound, "cidr: " + address.to_string() +
                                                    " is not an address of tunnel " + config_.name);
    }
    const auto index = position - config_.addresses.begin();
    commit(
        [&] {
            try {
                netlink_.remove_address(device_.index(), address);
            } catch (const std::system_error& error) {
                // Someone removed it behind our back: it is gone either way.
                if (error.code().value() != EADDRNOTAVAIL) {
                    throw failed("remove address " + address.to_string(), error);
                }
            }
            config_.addresses.erase(config_.addresses.begin() + index);
        },
        [&] {
            netlink_.add_address(device_.index(), address);
            config_.addresses.insert(config_.addresses.begin() + index, address);
        });
}

void Tunnel::add_route(const Prefix& destination) {
    if (std::find(config_.routes.begin(), config_.routes.end(), destination) !=
        config_.routes.end()) {
        throw RequestError(ErrorKind::AlreadyExists, "destination: " + destination.to_string() +
                                                         " is already routed into " +
                                                         device_.name());
    }
    commit(
        [&] {
            try {
                netlink_.add_route(device_.index(), destination);
            } catch (const std::system_error& error) {
                throw failed("add route " + destination.to_string(), error);
            }
            config_.routes.push_back(destination);
        },
        [&] {
            config_.routes.pop_back();
            netlink_.remove_route(device_.index(), destination);
        });
}

void Tunnel::remove_route(const Prefix& destination) {
    const auto position = std::find(config_.routes.begin(), config_.routes.end(), destination);
    if (position == config_.routes.end()) {
        throw RequestError(ErrorKind::NotFound, "destination: " + destination.to_string() +
                                                    " is not a route of tunnel " + config_.name);
    }
    const auto index = position - config_.routes.begin();
    commit(
        [&] {
            try {
                netlink_.remove_route(device_.index(), destination);
            } catch (const std::system_error& error) {
                if (error.code().value() != ESRCH) {
                    throw failed("remove route " + destination.to_string(), error);
                }
            }
            config_.routes.erase(config_.routes.begin() + index);
        },
        [&] {
            netlink_.add_route(device_.index(), destination);
            config_.routes.insert(config_.routes.begin() + index, destination);
        });
}

void Tunnel::reset_counters() {
    require_data_plane(data_plane_->reset_counters());
}

}  // namespace tunlab
