#include "service/authorization.hpp"

#include <grp.h>
#include <sdbus-c++/Message.h>

#include <algorithm>

#include "core/error.hpp"

namespace tunlab::bus {

Authorizer::Authorizer(const std::string& group_name) : group_name_(group_name) {
    // Looked up once: the daemon's view of the group database should not change under a
    // running request, and NSS lookups can block.
    if (const struct group* entry = ::getgrnam(group_name.c_str())) {
        group_ = entry->gr_gid;
    }
}

void Authorizer::require_change_permission(const sdbus::Message& call) const {
    bool allowed = false;
    try {
        // The effective uid is what the kernel checked when the caller connected; a set-uid
        // helper run by a user counts as its owner, as it would for a file.
        const uid_t uid = call.getCredsEuid();
        allowed = uid == 0;
        if (!allowed && group_) {
            const auto groups = call.getCredsSupplementaryGids();
            allowed = call.getCredsEgid() == *group_ ||
                      std::find(groups.begin(), groups.end(), *group_) != groups.end();
        }
    } catch (const std::exception&) {
        allowed = false;  // credentials we cannot read are no credentials
    }
    if (!allowed) {
        throw RequestError(
            ErrorKind::PermissionDenied,
            "changing tunlab needs root or membership in group '" + group_name_ + "'");
    }
}

}  // namespace tunlab::bus
