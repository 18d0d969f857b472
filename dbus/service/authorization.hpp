#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace sdbus {
class Message;
}

namespace tunlab::bus {

// Who may change anything: root and members of one group (default "tunlab"). Checked by the
// daemon on every mutating call from the sender's credentials, whatever the bus policy let
// through (see GatedObject). Reading is open to everyone.
class Authorizer {
  public:
    explicit Authorizer(const std::string& group = "tunlab");

    // Throws RequestError(PermissionDenied) unless the sender of `call` may change things.
    void require_change_permission(const sdbus::Message& call) const;

  private:
    std::string group_name_;
    std::optional<gid_t> group_;
};

}  // namespace tunlab::bus
