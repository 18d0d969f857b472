#include "uapi/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "config/tunnel_config.hpp"
#include "crypto/secret_key.hpp"
#include "uapi/get_response.hpp"
#include "uapi/set_request.hpp"
#include "uapi/uapi_error.hpp"
#include "util/atomic_file.hpp"
#include "util/log.hpp"
#include "util/system_error.hpp"

namespace tunlab::uapi {

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Per connection and turn of the loop, so that one busy client cannot starve the others.
constexpr size_t kReadPerTurn = 1 << 20;

void wipe(std::string& text) noexcept {
    crypto::secure_wipe({reinterpret_cast<uint8_t*>(text.data()), text.size()});
    text.clear();
}

// Appends without leaving a copy of what `text` held in freed memory when it has to grow.
void append_wiping(std::string& text, std::string_view more) {
    if (text.size() + more.size() > text.capacity()) {
        std::string bigger;
        bigger.reserve(std::max(text.capacity() * 2, text.size() + more.size()));
        bigger.append(text);
        wipe(text);
        text.swap(bigger);
    }
    text.append(more);
}

// The first `count` bytes of `text` are handled: wiped and dropped.
void consume(std::string& text, size_t count) {
    crypto::secure_wipe({reinterpret_cast<uint8_t*>(text.data()), count});
    text.erase(0, count);
}

std::string errno_answer(int error_number) {
    return "errno=" + std::to_string(error_number == 0 ? 0 : -error_number) + "\n\n";
}

sockaddr_un socket_address(const std::filesystem::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string& text = path.native();
    if (text.size() >= sizeof address.sun_path) {
        throw std::runtime_error("the path " + text + " is too long for a socket");
    }
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
    return address;
}

// A socket file left at `path`: if a process still answers on it (wireguard-go serving an
// interface of the same name, or a second tunlabd), it is not ours to take; if nobody does,
// it is a leftover of a daemon that died, and goes.
void remove_stale_socket(const std::filesystem::path& path, const sockaddr_un& address) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) {
        return;
    }
    if (!S_ISSOCK(status.st_mode)) {
        throw std::runtime_error(path.string() + " exists and is not a socket");
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe.valid()) {
        throw system_error("socket");
    }
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 ||
        errno == EAGAIN) {
        throw std::runtime_error("another process serves " + path.string());
    }
    ::unlink(path.c_str());
}

bool caller_may_use(int fd) {
    ucred credentials{};
    socklen_t length = sizeof credentials;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
        return false;
    }
    return credentials.uid == 0 || credentials.uid == ::geteuid();
}

}  // namespace

Server::Server(std::filesystem::path directory, TunnelManager& manager,
               std::function<void()> changed)
    : directory_(std::move(directory)), manager_(manager), changed_(std::move(changed)) {}

Server::~Server() {
    for (auto& connection : connections_) {
        close(*connection);
    }
    for (auto& [name, listener] : listeners_) {
        stop_listening(*listener);
    }
}

void Server::sync() {
    for (auto position = listeners_.begin(); position != listeners_.end();) {
        const Tunnel* tunnel = manager_.find(position->first);
        if (tunnel == nullptr || tunnel->protocol() != ProtocolKind::WireGuard ||
            tunnel->interface_name() != position->second->interface) {
            stop_listening(*position->second);
            position = listeners_.erase(position);
        } else {
            ++position;
        }
    }
    std::erase_if(failed_, [this](const auto& failed) {
        const Tunnel* tunnel = manager_.find(failed.first);
        return tunnel == nullptr || tunnel->serial() != failed.second;
    });
    for (const auto& [name, tunnel] : manager_.tunnels()) {
        if (tunnel->protocol() != ProtocolKind::WireGuard || listeners_.contains(name) ||
            failed_.contains({name, tunnel->serial()})) {
            continue;
        }
        try {
            listeners_.emplace(name, listen(*tunnel));
        } catch (const std::exception& error) {
            failed_.emplace(name, tunnel->serial());
            log::error("tunnel ", name, ": no control socket for wg: ", error.what());
        }
    }
}

std::unique_ptr<Server::Listener> Server::listen(const Tunnel& tunnel) {
    auto listener = std::make_unique<Listener>();
    listener->tunnel = tunnel.name();
    listener->interface = tunnel.interface_name();
    listener->path = directory_ / (listener->interface + ".sock");
    create_directories_with_mode(directory_, 0755);
    const sockaddr_un address = socket_address(listener->path);
    remove_stale_socket(listener->path, address);
    listener->fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener->fd.valid()) {
        throw system_error("socket");
    }
    // The mode comes from the umask at bind(); only this thread makes files meanwhile.
    const mode_t umask_before = ::umask(077);
    const int bound =
        ::bind(listener->fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const int bind_errno = errno;
    ::umask(umask_before);
    if (bound != 0) {
        throw system_error("bind " + listener->path.string(), bind_errno);
    }
    struct stat status {};
    if (::stat(listener->path.c_str(), &status) != 0 || ::listen(listener->fd.get(), 128) != 0) {
        const auto error = system_error("listen on " + listener->path.string());
        ::unlink(listener->path.c_str());
        throw error;
    }
    listener->device = status.st_dev;
    listener->inode = status.st_ino;
    log::info("tunnel ", tunnel.name(), ": wg control socket ", listener->path.string());
    return listener;
}

void Server::stop_listening(Listener& listener) noexcept {
    struct stat status {};
    if (::stat(listener.path.c_str(), &status) == 0 && status.st_dev == listener.device &&
        status.st_ino == listener.inode) {
        ::unlink(listener.path.c_str());
    }
    listener.fd.reset();
}

void Server::add_poll_entries(std::vector<pollfd>& fds) const {
    for (const auto& [name, listener] : listeners_) {
        fds.push_back({listener->fd.get(), POLLIN, 0});
    }
    for (const auto& connection : connections_) {
        const bool writing = connection->sent < connection->output.size();
        fds.push_back({connection->fd.get(), static_cast<short>(writing ? POLLOUT : POLLIN), 0});
    }
}

void Server::handle(std::span<const pollfd> entries, Clock::time_point now) {
    size_t index = 0;
    std::vector<const Listener*> ready;
    for (const auto& [name, listener] : listeners_) {
        if (index < entries.size() && (entries[index++].revents & POLLIN)) {
            ready.push_back(listener.get());
        }
    }
    const size_t polled = std::min(connections_.size(), entries.size() - index);
    for (size_t position = 0; position < polled; ++position) {
        Connection& connection = *connections_[position];
        const short revents = entries[index + position].revents;
        if (revents & POLLOUT) {
            write_to(connection, now);
        } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
            read_from(connection, now);
        }
    }
    for (const Listener* listener : ready) {
        accept_from(*listener, now);
    }
    for (auto& connection : connections_) {
        if (!connection->closed && now - connection->last_active >= kIdleTimeout) {
            close(*connection);
        }
    }
    std::erase_if(connections_, [](const auto& connection) { return connection->closed; });
}

std::optional<Server::Clock::time_point> Server::next_deadline() const {
    std::optional<Clock::time_point> deadline;
    for (const auto& connection : connections_) {
        const auto due = connection->last_active + kIdleTimeout;
        if (!deadline || due < *deadline) {
            deadline = due;
        }
    }
    return deadline;
}

void Server::accept_from(const Listener& listener, Clock::time_point now) {
    while (true) {
        UniqueFd fd(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) {
            return;  // EAGAIN: all taken; anything else: the next turn tries again
        }
        if (!caller_may_use(fd.get())) {
            continue;  // the socket's mode stops them; this is in case someone changed it
        }
        const auto open = std::count_if(connections_.begin(), connections_.end(),
                                        [](const auto& c) { return !c->closed; });
        if (static_cast<size_t>(open) >= kMaxConnections) {
            Connection* idlest = nullptr;
            for (auto& connection : connections_) {
                if (!connection->closed &&
                    (idlest == nullptr || connection->last_active < idlest->last_active)) {
                    idlest = connection.get();
                }
            }
            close(*idlest);
        }
        auto connection = std::make_unique<Connection>();
        connection->fd = std::move(fd);
        connection->tunnel = listener.tunnel;
        connection->input.reserve(kReadChunk);
        connection->last_active = now;
        connections_.push_back(std::move(connection));
    }
}

void Server::read_from(Connection& connection, Clock::time_point now) {
    char buffer[kReadChunk];
    size_t total = 0;
    while (total < kReadPerTurn) {
        const ssize_t got = ::read(connection.fd.get(), buffer, sizeof buffer);
        if (got > 0) {
            append_wiping(connection.input, std::string_view(buffer, static_cast<size_t>(got)));
            total += static_cast<size_t>(got);
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        // The client is done (or gone): what it sent before still counts, as with wg, which
        // shuts down its sending side only after reading the answer.
        connection.close_after_output = true;
        break;
    }
    crypto::secure_wipe({reinterpret_cast<uint8_t*>(buffer), sizeof buffer});
    if (total > 0) {
        connection.last_active = now;
    }
    write_to(connection, now);
}

// Requests are handled in order, one answer at a time: while an answer is still being sent,
// the next request waits in the input (so a client that never reads cannot grow the output).
void Server::handle_requests(Connection& connection) {
    while (!connection.closed && connection.output.empty()) {
        std::string& input = connection.input;
        if (!connection.in_set) {
            const size_t newline = input.find('\n');
            if (newline == std::string::npos) {
                if (input.size() > kMaxLine) {
                    connection.close_after_output = true;
                    wipe(input);
                }
                return;
            }
            const std::string_view operation(input.data(), newline);
            const bool after_get = connection.after_get;
            connection.after_get = false;
            if (operation == "get=1") {
                consume(input, newline + 1);
                connection.after_get = true;
                const Tunnel* tunnel = manager_.find(connection.tunnel);
                if (tunnel == nullptr) {
                    close(connection);
                    return;
                }
                connection.output = get_response(*tunnel);
            } else if (operation == "set=1") {
                consume(input, newline + 1);
                connection.in_set = true;
                connection.scanned = 0;
            } else if (operation.empty() && after_get) {
                consume(input, 1);  // wg ends a get with an empty line, as it does a set
            } else {
                close(connection);  // as wireguard-go: an unknown operation gets no answer
                return;
            }
            continue;
        }
        // In a set: find its end, an empty line, bounding each line and the whole.
        while (true) {
            const size_t newline = input.find('\n', connection.scanned);
            const size_t line_end = newline == std::string::npos ? input.size() : newline;
            if (line_end - connection.scanned > kMaxLine || line_end > kMaxRequest) {
                log::warning("tunnel ", connection.tunnel,
                             ": wg control socket: a request over its bounds (a line of more "
                             "than ",
                             kMaxLine, " bytes, or more than ", kMaxRequest, " in all)");
                connection.output = errno_answer(EIO);
                connection.close_after_output = true;
                wipe(input);
                connection.in_set = false;
                return;
            }
            if (newline == std::string::npos) {
                if (connection.close_after_output) {
                    connection.output = errno_answer(EIO);  // cut short: apply nothing
                    wipe(input);
                    connection.in_set = false;
                }
                return;
            }
            if (newline == connection.scanned) {
                break;
            }
            connection.scanned = newline + 1;
        }
        connection.output =
            set(connection.tunnel, std::string_view(input.data(), connection.scanned));
        consume(input, connection.scanned + 1);
        connection.in_set = false;
        connection.scanned = 0;
    }
}

std::string Server::set(const std::string& tunnel_name, std::string_view request) {
    std::vector<std::string_view> lines;
    for (size_t start = 0; start < request.size();) {
        const size_t newline = request.find('\n', start);
        lines.push_back(request.substr(start, newline - start));
        start = newline + 1;
    }
    try {
        const Tunnel* tunnel = manager_.find(tunnel_name);
        if (tunnel == nullptr) {
            throw UapiError(ENODEV, "the tunnel is gone");
        }
        const TunnelConfig wanted = apply_set_request(tunnel->config(), parse_set_request(lines));
        try {
            // The checks every saved configuration passes (ranges, endpoints of the socket's
            // family, allowed IPs held twice...).
            tunnel_config_from_json(wanted.name, tunnel_config_to_json(wanted));
        } catch (const ConfigError& error) {
            throw UapiError(EINVAL, error.what());
        }
        manager_.reconfigure(wanted);
        changed_();
        return errno_answer(0);
    } catch (const UapiError& error) {
        log::warning("tunnel ", tunnel_name, ": wg control socket: set refused: ", error.what());
        return errno_answer(error.error_number());
    } catch (const RequestError& error) {
        log::warning("tunnel ", tunnel_name, ": wg control socket: set refused: ", error.what());
        return errno_answer(errno_of(error));
    } catch (const std::bad_alloc&) {
        return errno_answer(ENOMEM);
    }
}

// Sends what is pending, then handles the next request, and so on, until the client's socket
// is full (POLLOUT says when to go on) or nothing is left to answer.
void Server::write_to(Connection& connection, Clock::time_point now) {
    while (!connection.closed) {
        while (connection.sent < connection.output.size()) {
            const ssize_t wrote =
                ::send(connection.fd.get(), connection.output.data() + connection.sent,
                       connection.output.size() - connection.sent, MSG_NOSIGNAL);
            if (wrote < 0) {
                if (errno != EAGAIN && errno != EINTR) {
                    close(connection);
                }
                return;
            }
            connection.sent += static_cast<size_t>(wrote);
            connection.last_active = now;
        }
        wipe(connection.output);
        connection.sent = 0;
        handle_requests(connection);
        if (connection.output.empty()) {
            if (connection.close_after_output) {
                close(connection);
            }
            return;
        }
    }
}

void Server::close(Connection& connection) noexcept {
    wipe(connection.input);
    wipe(connection.output);
    connection.fd.reset();
    connection.closed = true;
}

}  // namespace tunlab::uapi
