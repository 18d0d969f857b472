#include "uapi_keys.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "crypto/encoding.hpp"

namespace tunlabctl {

namespace {

// A reply lists every peer (a few hundred bytes each): 10,000 peers fit with room to spare.
constexpr size_t kMaximumReply = 64 * 1024 * 1024;

class Socket {
  public:
    Socket() : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
    ~Socket() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

// The reply's text holds keys in hex: wiped when done with.
struct WipedText {
    std::string text;
    ~WipedText() {
        tunlab::crypto::secure_wipe({reinterpret_cast<uint8_t*>(text.data()), text.size()});
    }
};

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
}

// Reads up to the empty line that ends a reply.
bool receive_reply(int fd, std::string& reply) {
    std::array<char, 4096> chunk{};
    bool complete = false;
    while (!complete && reply.size() < kMaximumReply) {
        const ssize_t got = ::recv(fd, chunk.data(), chunk.size(), 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        reply.append(chunk.data(), static_cast<size_t>(got));
        complete = reply == "\n" || reply.find("\n\n") != std::string::npos;
    }
    tunlab::crypto::secure_wipe({reinterpret_cast<uint8_t*>(chunk.data()), chunk.size()});
    return complete;
}

// "private_key=…", then per peer "public_key=…" and its "preshared_key=…", ending in
// "errno=0". Lines this does not need (endpoints, counters) are skipped.
std::optional<UapiKeys> parse_reply(std::string_view reply, std::string& why) {
    UapiKeys keys;
    bool have_private = false;
    bool ok = false;
    std::string peer;  // base64 public key of the peer being read
    while (!reply.empty()) {
        const auto end = std::min(reply.find('\n'), reply.size());
        const std::string_view line = reply.substr(0, end);
        reply.remove_prefix(std::min(end + 1, reply.size()));
        if (line.empty()) {
            break;
        }
        const auto equals = line.find('=');
        const std::string_view key = line.substr(0, equals);
        const std::string_view value =
            equals == std::string_view::npos ? std::string_view() : line.substr(equals + 1);
        if (key == "private_key") {
            have_private = tunlab::crypto::key_from_hex(value, keys.private_key.bytes());
        } else if (key == "public_key") {
            const auto public_key = tunlab::crypto::key_from_hex(value);
            peer = public_key ? tunlab::crypto::key_to_base64(*public_key) : "";
        } else if (key == "preshared_key" && !peer.empty()) {
            tunlab::crypto::SecretKey preshared;
            if (tunlab::crypto::key_from_hex(value, preshared.bytes()) && !preshared.is_zero()) {
                keys.preshared_keys.emplace(peer, std::move(preshared));
            }
        } else if (key == "errno") {
            ok = value == "0";
        }
    }
    if (!ok || !have_private) {
        why = !ok ? "the control socket refused the request" : "the control socket sent no key";
        return std::nullopt;
    }
    return keys;
}

}  // namespace

std::string uapi_socket_path(const std::string& interface) {
    return "/run/wireguard/" + interface + ".sock";
}

std::optional<UapiKeys> read_uapi_keys(const std::string& interface, std::string& why) {
    const std::string path = uapi_socket_path(interface);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (interface.empty() || path.size() >= sizeof address.sun_path) {
        why = "the tunnel has no interface with a control socket";
        return std::nullopt;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const Socket socket;
    if (socket.get() < 0 ||
        ::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        if (errno == EACCES || errno == EPERM) {
            why = "only root can read keys (from " + path + ")";
        } else if (errno == ENOENT) {
            why = path + " does not exist (tunlabd serves no control socket for " + interface + ")";
        } else {
            why = path + ": " + std::strerror(errno);
        }
        return std::nullopt;
    }
    WipedText reply;
    if (!send_all(socket.get(), "get=1\n\n") || !receive_reply(socket.get(), reply.text)) {
        why = path + " did not answer";
        return std::nullopt;
    }
    auto keys = parse_reply(reply.text, why);
    if (!keys) {
        why += " (" + path + ")";
    }
    return keys;
}

}  // namespace tunlabctl
