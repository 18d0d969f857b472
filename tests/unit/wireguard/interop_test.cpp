// Interop with a real peer: Debian's wireguard-go in a private network namespace (needs root;
// skipped without it, like the other namespace tests). The test process talks to it over UDP
// on loopback with this library alone: handshake, then an ICMP echo through the tunnel, in both
// roles. Addresses are the test's own (10.77.0.0/24 inside the namespace); nothing leaves it.
//
//   namespace:  wireguard-go on wgt<pid> 10.77.0.1/24, UDP 127.0.0.1:51820
//               peer = us: allowed-ips 10.77.0.2/32, endpoint 127.0.0.1:<our port>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/encoding.hpp"
#include "private_network_namespace.hpp"
#include "protocols/wireguard/cookie.hpp"
#include "protocols/wireguard/handshake.hpp"
#include "protocols/wireguard/keypairs.hpp"
#include "protocols/wireguard/transport.hpp"
#include "util/unique_fd.hpp"

namespace tunlab::wireguard {
namespace {

using namespace std::chrono_literals;

constexpr uint16_t kPeerPort = 51820;
constexpr size_t kMtu = 1420;

uint64_t monotonic_us() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

// Runs a command line through the shell; returns its exit status and what it printed.
std::pair<int, std::string> run(const std::string& command) {
    std::string output;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) {
        return {-1, "popen failed"};
    }
    char chunk[512];
    size_t length;
    while ((length = fread(chunk, 1, sizeof chunk, pipe)) > 0) {
        output.append(chunk, length);
    }
    const int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Starts `argv` in the background with its output in `log`; it dies with the test process.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::vector<std::string>& environment = {}) {
    const pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        for (const auto& variable : environment) {
            putenv(const_cast<char*>(variable.c_str()));
        }
        std::vector<char*> args;
        for (const auto& arg : argv) {
            args.push_back(const_cast<char*>(arg.c_str()));
        }
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    return pid;
}

// Waits for `pid` up to `timeout`; its exit status, or -1 if it is still running.
int wait_for(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        std::this_thread::sleep_for(20ms);
    }
    return -1;
}

void stop(pid_t pid) {
    if (pid <= 0) {
        return;
    }
    kill(pid, SIGTERM);
    if (wait_for(pid, 3000ms) == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
}

uint16_t checksum(std::span<const uint8_t> bytes) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
        sum += static_cast<uint32_t>(bytes[i] << 8 | bytes[i + 1]);
    }
    if (bytes.size() % 2 != 0) {
        sum += static_cast<uint32_t>(bytes.back() << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum);
}

// An ICMP echo (request: type 8, reply: type 0) in IPv4, written at `out`; returns its length.
size_t write_echo(std::span<uint8_t> out, std::array<uint8_t, 4> source,
                  std::array<uint8_t, 4> destination, uint8_t type, uint16_t id, uint16_t sequence,
                  std::span<const uint8_t> payload) {
    const size_t length = 20 + 8 + payload.size();
    std::fill_n(out.begin(), length, 0);
    out[0] = 0x45;
    out[2] = static_cast<uint8_t>(length >> 8);
    out[3] = static_cast<uint8_t>(length);
    out[8] = 64;  // TTL
    out[9] = 1;   // ICMP
    std::copy(source.begin(), source.end(), out.begin() + 12);
    std::copy(destination.begin(), destination.end(), out.begin() + 16);
    const uint16_t header_sum = checksum(out.first(20));
    out[10] = static_cast<uint8_t>(header_sum >> 8);
    out[11] = static_cast<uint8_t>(header_sum);
    const auto icmp = out.subspan(20, 8 + payload.size());
    icmp[0] = type;
    icmp[4] = static_cast<uint8_t>(id >> 8);
    icmp[5] = static_cast<uint8_t>(id);
    icmp[6] = static_cast<uint8_t>(sequence >> 8);
    icmp[7] = static_cast<uint8_t>(sequence);
    std::copy(payload.begin(), payload.end(), icmp.begin() + 8);
    const uint16_t icmp_sum = checksum(icmp);
    icmp[2] = static_cast<uint8_t>(icmp_sum >> 8);
    icmp[3] = static_cast<uint8_t>(icmp_sum);
    return length;
}

constexpr std::array<uint8_t, 4> kPeerAddress{10, 77, 0, 1};
constexpr std::array<uint8_t, 4> kOurAddress{10, 77, 0, 2};

class WireguardGoInterop : public PrivateNetworkNamespaceTest {
  protected:
    void SetUp() override {
        PrivateNetworkNamespaceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) {
            return;
        }
        ASSERT_EQ(access("/usr/bin/wireguard-go", X_OK), 0)
            << "wireguard-go is missing: scripts/install-deps installs it";
        ASSERT_EQ(access("/usr/bin/wg", X_OK), 0) << "wg is missing (wireguard-tools)";
        ASSERT_EQ(run("ip link set lo up").first, 0);

        // The UAPI socket directory is not per namespace: a name per process.
        interface_ = "wgt" + std::to_string(getpid() % 100000);
        work_dir_ = std::string("/tmp/tunlab-wg-interop.") + std::to_string(getpid());
        mkdir(work_dir_.c_str(), 0700);

        crypto::SecretKey peer_private = crypto::generate_private_key(crypto::system_random());
        peer_public_ = crypto::public_key_of(peer_private);
        key_file_ = work_dir_ + "/peer.key";
        {
            std::ofstream file(key_file_);
            std::string text = crypto::key_to_base64(peer_private.bytes());
            file << text << "\n";
            crypto::secure_wipe({reinterpret_cast<uint8_t*>(text.data()), text.size()});
        }
        chmod(key_file_.c_str(), 0600);

        socket_ = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        ASSERT_TRUE(socket_.valid());
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(bind(socket_.get(), reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
        socklen_t length = sizeof local;
        getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&local), &length);
        our_port_ = ntohs(local.sin_port);

        const std::string uapi = "/var/run/wireguard/" + interface_ + ".sock";
        unlink(uapi.c_str());  // a crashed run's would end the wait below at once
        wireguard_go_ =
            spawn({"/usr/bin/wireguard-go", "-f", interface_}, work_dir_ + "/wireguard-go.log",
                  {"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=verbose"});
        for (int i = 0; i < 250 && access(uapi.c_str(), F_OK) != 0; ++i) {
            std::this_thread::sleep_for(20ms);
        }
        ASSERT_EQ(access(uapi.c_str(), F_OK), 0) << "wireguard-go did not start: " << log();

        const auto [status, output] = run(
            "wg set " + interface_ + " private-key " + key_file_ + " listen-port " +
            std::to_string(kPeerPort) + " peer " + crypto::key_to_base64(identity_.public_key()) +
            " allowed-ips 10.77.0.2/32 endpoint 127.0.0.1:" + std::to_string(our_port_));
        ASSERT_EQ(status, 0) << output;
        ASSERT_EQ(run("ip addr add 10.77.0.1/24 dev " + interface_).first, 0);
        ASSERT_EQ(run("ip link set " + interface_ + " up").first, 0);
        state_ = std::make_unique<HandshakeState>(identity_, peer_public_);
    }

    void TearDown() override {
        stop(ping_);
        stop(wireguard_go_);
        if (!key_file_.empty()) {
            unlink(key_file_.c_str());
            unlink((work_dir_ + "/wireguard-go.log").c_str());
            unlink((work_dir_ + "/ping.log").c_str());
            rmdir(work_dir_.c_str());
        }
    }

    std::string log() const {
        std::ifstream file(work_dir_ + "/wireguard-go.log");
        return std::string(std::istreambuf_iterator<char>(file), {});
    }

    void send_to_peer(std::span<const uint8_t> datagram) {
        sockaddr_in peer{};
        peer.sin_family = AF_INET;
        peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        peer.sin_port = htons(kPeerPort);
        ASSERT_EQ(sendto(socket_.get(), datagram.data(), datagram.size(), 0,
                         reinterpret_cast<sockaddr*>(&peer), sizeof peer),
                  static_cast<ssize_t>(datagram.size()));
    }

    // The next datagram of `type` from the peer (others are skipped), or an empty vector.
    std::vector<uint8_t> receive(MessageType type, std::chrono::milliseconds timeout = 10000ms) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::vector<uint8_t> buffer(2048);
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd fd{socket_.get(), POLLIN, 0};
            if (poll(&fd, 1, 100) <= 0) {
                continue;
            }
            const ssize_t length = recv(socket_.get(), buffer.data(), buffer.size(), 0);
            if (length <= 0) {
                continue;
            }
            std::vector<uint8_t> datagram(buffer.begin(), buffer.begin() + length);
            if (message_type(datagram) == type) {
                return datagram;
            }
        }
        return {};
    }

    // `wg show` must report a handshake with us.
    void expect_latest_handshake() {
        const auto [status, output] = run("wg show " + interface_ + " latest-handshakes");
        ASSERT_EQ(status, 0) << output;
        const std::string key = crypto::key_to_base64(identity_.public_key());
        const auto at = output.find(key);
        ASSERT_NE(at, std::string::npos) << output;
        const long long seconds = std::atoll(output.c_str() + at + key.size() + 1);
        EXPECT_GT(seconds, 1'600'000'000) << output;
    }

    LocalIdentity identity_ = LocalIdentity::generate(crypto::system_random());
    crypto::PublicKey peer_public_{};
    std::unique_ptr<HandshakeState> state_;
    Keypairs keypairs_;
    std::string interface_;
    std::string work_dir_;
    std::string key_file_;
    UniqueFd socket_;
    uint16_t our_port_ = 0;
    pid_t wireguard_go_ = -1;
    pid_t ping_ = -1;
};

TEST_F(WireguardGoInterop, WeInitiateAndPingThroughTheTunnel) {
    std::array<uint8_t, kInitiationSize> initiation{};
    const uint32_t index = crypto::system_random().next_u32();
    ASSERT_EQ(
        state_->create_initiation(identity_, index, Tai64n::from(std::chrono::system_clock::now()),
                                  monotonic_us(), crypto::system_random(), initiation),
        HandshakeError::Ok);
    send_to_peer(initiation);

    const auto response = receive(MessageType::Response);
    ASSERT_FALSE(response.empty()) << "no response from wireguard-go:\n" << log();
    ASSERT_EQ(state_->consume_response(identity_, response), HandshakeError::Ok);
    auto keypair = state_->derive_keypair(monotonic_us());
    ASSERT_NE(keypair, nullptr);
    keypairs_.install(std::move(keypair));
    Keypair& current = *keypairs_.current();

    const std::string payload = "tunlab interop: echo me";
    std::vector<uint8_t> buffer(2048);
    const size_t length =
        write_echo(std::span(buffer).subspan(kTransportHeaderSize), kOurAddress, kPeerAddress, 8,
                   0x7e57, 1, {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
    const auto sealed = seal_transport(current, buffer, length, kMtu, monotonic_us());
    ASSERT_EQ(sealed.status, TransportStatus::Ok);
    send_to_peer(std::span(buffer).first(sealed.size));

    // The kernel in the namespace answers; wireguard-go encrypts the reply to us. Keepalives
    // (empty) may come first.
    std::span<uint8_t> reply;
    std::vector<uint8_t> datagram;
    for (int i = 0; i < 5 && reply.empty(); ++i) {
        datagram = receive(MessageType::Transport);
        ASSERT_FALSE(datagram.empty()) << "no transport message from wireguard-go:\n" << log();
        const auto opened = open_transport(current, datagram, monotonic_us());
        ASSERT_EQ(opened.status, TransportStatus::Ok) << transport_status_name(opened.status);
        reply = opened.plaintext;
    }
    ASSERT_GE(reply.size(), 28 + payload.size());
    EXPECT_EQ(reply[0], 0x45);
    EXPECT_EQ(reply[9], 1);
    EXPECT_TRUE(std::equal(kPeerAddress.begin(), kPeerAddress.end(), reply.begin() + 12));
    EXPECT_TRUE(std::equal(kOurAddress.begin(), kOurAddress.end(), reply.begin() + 16));
    EXPECT_EQ(reply[20], 0);  // echo reply
    EXPECT_EQ(reply[24], 0x7e);
    EXPECT_EQ(reply[25], 0x57);
    EXPECT_EQ(
        std::string(reply.begin() + 28, reply.begin() + 28 + static_cast<long>(payload.size())),
        payload);
    expect_latest_handshake();
}

TEST_F(WireguardGoInterop, PeerInitiatesAndWeAnswerItsPing) {
    ping_ = spawn({"/bin/ping", "-c", "1", "-W", "15", "10.77.0.2"}, work_dir_ + "/ping.log");

    const auto initiation = receive(MessageType::Initiation);
    ASSERT_FALSE(initiation.empty()) << "wireguard-go did not initiate:\n" << log();
    const CookieChecker checker(identity_);
    const auto source = CookieSource::from(std::array<uint8_t, 4>{127, 0, 0, 1}, kPeerPort);
    ASSERT_EQ(checker.admit(initiation, source, false, monotonic_us()),
              CookieChecker::Admission::Accept);
    const auto consumed = consume_initiation(
        identity_, initiation,
        [&](const crypto::PublicKey& key) { return key == peer_public_ ? state_.get() : nullptr; },
        monotonic_us());
    ASSERT_EQ(consumed.error, HandshakeError::Ok);
    std::array<uint8_t, kResponseSize> response{};
    ASSERT_EQ(consumed.peer->create_response(crypto::system_random().next_u32(), monotonic_us(),
                                             crypto::system_random(), response),
              HandshakeError::Ok);
    keypairs_.install(consumed.peer->derive_keypair(monotonic_us()));
    ASSERT_NE(keypairs_.next(), nullptr);
    send_to_peer(response);

    // Its first transport message confirms our keypair; it carries the echo request.
    std::span<uint8_t> request;
    std::vector<uint8_t> datagram;
    for (int i = 0; i < 5 && request.empty(); ++i) {
        datagram = receive(MessageType::Transport);
        ASSERT_FALSE(datagram.empty()) << "no transport message from wireguard-go:\n" << log();
        Keypair* keypair = keypairs_.find(*receiver_index(datagram));
        ASSERT_NE(keypair, nullptr);
        const auto opened = open_transport(*keypair, datagram, monotonic_us());
        ASSERT_EQ(opened.status, TransportStatus::Ok) << transport_status_name(opened.status);
        RetiredIndices retired;
        keypairs_.received_with(keypair, retired);
        request = opened.plaintext;
    }
    ASSERT_NE(keypairs_.current(), nullptr);
    ASSERT_GE(request.size(), 28u);
    ASSERT_EQ(request[20], 8) << "not an echo request";
    const size_t ip_length = static_cast<size_t>(request[2] << 8 | request[3]);
    ASSERT_LE(ip_length, request.size());
    const uint16_t id = static_cast<uint16_t>(request[24] << 8 | request[25]);
    const uint16_t sequence = static_cast<uint16_t>(request[26] << 8 | request[27]);
    const std::vector<uint8_t> payload(request.begin() + 28,
                                       request.begin() + static_cast<long>(ip_length));

    std::vector<uint8_t> buffer(2048);
    const size_t length = write_echo(std::span(buffer).subspan(kTransportHeaderSize), kOurAddress,
                                     kPeerAddress, 0, id, sequence, payload);
    const auto sealed = seal_transport(*keypairs_.current(), buffer, length, kMtu, monotonic_us());
    ASSERT_EQ(sealed.status, TransportStatus::Ok);
    send_to_peer(std::span(buffer).first(sealed.size));

    const int status = wait_for(ping_, 15000ms);
    if (status != -1) {
        ping_ = -1;  // reaped
    }
    EXPECT_EQ(status, 0) << "ping did not get our reply:\n" << log();
    expect_latest_handshake();
}

}  // namespace
}  // namespace tunlab::wireguard
