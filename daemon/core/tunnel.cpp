#include "core/tunnel.hpp"

#include "util/log.hpp"

namespace tunlab {

Tunnel::Tunnel(const TunnelConfig& config, Netlink& netlink)
    : config_(config),
      netlink_(netlink),
      device_(config.mode, config.interface_or_template()),
      socket_(config.listen_address, config.listen_port) {
    try {
        configure_device();
    } catch (...) {
        undo_device_configuration();
        throw;
    }
    DataPlaneSettings settings;
    settings.mode = config_.mode;
    settings.mtu = config_.effective_mtu();
    settings.learning.enabled = config_.learn_peers;
    settings.learning.max_peers = config_.max_learned_peers;
    settings.learning.idle_timeout_us = uint64_t{config_.learned_peer_timeout_seconds} * 1'000'000;
    data_plane_ =
        std::make_unique<DataPlane>(device_.fd(), socket_.fd(), socket_.family(), settings);
    // Configured peers get ids 1..n in file order; learned peers are numbered apart.
    data_plane_->post([peers = config_.peers](PeerTable& table) {
        PeerId id = 1;
        for (const auto& peer : peers) {
            table.upsert(id++, peer);
        }
    });
    data_plane_->start();
}

Tunnel::~Tunnel() {
    data_plane_.reset();
    undo_device_configuration();
}

void Tunnel::configure_device() {
    const unsigned index = device_.index();
    netlink_.set_mtu(index, config_.effective_mtu());
    for (const auto& address : config_.addresses) {
        netlink_.add_address(index, address);
    }
    netlink_.set_link_up(index, true);
    for (const auto& route : config_.routes) {
        netlink_.add_route(index, route);
    }
}

void Tunnel::undo_device_configuration() noexcept {
    // A device we created vanishes with its fd, and its addresses and routes with it. One that
    // existed before us only loses what we added.
    if (device_.created()) {
        return;
    }
    auto undo = [this](const char* what, auto&& action) {
        try {
            action();
        } catch (const std::exception& error) {
            log::debug(device_.name(), ": could not remove ", what, ": ", error.what());
        }
    };
    for (const auto& route : config_.routes) {
        undo("route", [&] { netlink_.remove_route(device_.index(), route); });
    }
    for (const auto& address : config_.addresses) {
        undo("address", [&] { netlink_.remove_address(device_.index(), address); });
    }
}

}  // namespace tunlab
