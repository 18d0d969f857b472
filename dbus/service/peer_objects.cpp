#include "service/peer_objects.hpp"

#include <algorithm>

#include "service/object_paths.hpp"

namespace tunlab::bus {

namespace {

bool signals_change(const PeerView& before, const PeerView& after) {
    // What PeerObject::update signals: the endpoint, allowed IPs, keepalive, a handshake.
    return before.config.endpoint != after.config.endpoint ||
           before.config.allowed_ips != after.config.allowed_ips ||
           before.config.keepalive_seconds != after.config.keepalive_seconds ||
           before.latest_handshake_us != after.latest_handshake_us;
}

}  // namespace

PeerObjects::PeerObjects(sdbus::IConnection& connection, BusContext& context, Tunnel& tunnel)
    : connection_(connection),
      context_(context),
      tunnel_(tunnel),
      peer_path_prefix_(tunnel_path(tunnel.name()) + "/peer/"),
      views_(std::make_shared<const PeerViews>()) {}

PeerObjects::~PeerObjects() = default;

std::string PeerObjects::path_of(PeerId id) const {
    return peer_path_prefix_ + std::to_string(id);
}

PeerObject& PeerObjects::add(const std::shared_ptr<const PeerView>& view) {
    auto object = std::make_unique<PeerObject>(connection_, context_, tunnel_, view);
    PeerObject& added = *object;
    objects_.insert_or_assign(view->id, Registered{std::move(object), ++use_clock_});
    return added;
}

// Both sides are in id order: one merge walk. A peer whose view did not change costs a
// pointer comparison; one that changed costs a registration only if it has to signal.
bool PeerObjects::sync(std::shared_ptr<const PeerViews> views, const Announce& announce) {
    if (views == views_) {
        return false;
    }
    bool changed = false;
    auto removed = [&](PeerId id) {
        objects_.erase(id);
        if (announce) {
            announce(path_of(id), false);
        }
        changed = true;
    };
    auto old_view = views_->begin();
    for (const auto& view : *views) {
        while (old_view != views_->end() && (*old_view)->id < view->id) {
            removed((*old_view++)->id);
        }
        if (old_view == views_->end() || (*old_view)->id != view->id) {
            if (announce) {
                announce(path_of(view->id), true);
            }
            changed = true;
            continue;
        }
        const std::shared_ptr<const PeerView>& before = *old_view++;
        if (before == view) {
            continue;
        }
        auto object = objects_.find(view->id);
        if (object != objects_.end()) {
            object->second.object->update(view);
        } else if (signals_change(*before, *view)) {
            // Registered only to signal, with what clients last saw so that update() signals
            // the difference, then gone again: a mass roam must not register every peer. It
            // is new, so it is not the object whose handler may be running.
            PeerObject signaller(connection_, context_, tunnel_, before);
            signaller.update(view);
        }
    }
    while (old_view != views_->end()) {
        removed((*old_view++)->id);
    }
    views_ = std::move(views);
    register_all_if_small();
    return changed;
}

void PeerObjects::register_all_if_small() {
    if (views_->size() > kResidentObjects || objects_.size() == views_->size()) {
        return;
    }
    for (const auto& view : *views_) {
        if (!objects_.contains(view->id)) {
            add(view);
        }
    }
}

void PeerObjects::materialize(PeerId id) {
    if (auto object = objects_.find(id); object != objects_.end()) {
        object->second.last_used = ++use_clock_;
        return;
    }
    const auto view = std::lower_bound(
        views_->begin(), views_->end(), id,
        [](const std::shared_ptr<const PeerView>& v, PeerId wanted) { return v->id < wanted; });
    if (view == views_->end() || (*view)->id != id) {
        return;  // no such peer: sd-bus answers UnknownObject, as for any unknown path
    }
    while (objects_.size() >= kResidentObjects) {
        evict_least_recently_used();
    }
    add(*view);
}

// A linear scan: at most about kResidentObjects entries, once per registration.
void PeerObjects::evict_least_recently_used() {
    const auto oldest = std::min_element(
        objects_.begin(), objects_.end(),
        [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; });
    objects_.erase(oldest);
}

std::vector<sdbus::ObjectPath> PeerObjects::paths() const {
    std::vector<sdbus::ObjectPath> paths;
    paths.reserve(views_->size());
    for (const auto& view : *views_) {
        paths.emplace_back(path_of(view->id));
    }
    return paths;
}

}  // namespace tunlab::bus
