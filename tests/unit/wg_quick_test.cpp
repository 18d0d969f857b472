#include "config/wg_quick.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parse_helpers.hpp"
#include "temporary_directory.hpp"

namespace tunlab {
namespace {

using json = nlohmann::json;
using test_support::prefix;

// Keys made with `wg genkey` / `wg pubkey` / `wg genpsk`.
constexpr const char* kPrivate = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPeerA = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kPeerB = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
constexpr const char* kPreshared = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

// A wg-quick file as an admin writes one, with every key wg-quick knows.
const std::string kFile = std::string(R"(# the office
[Interface]
PrivateKey = )") + kPrivate +
                          R"(
ListenPort = 51820
Address = 10.7.0.2/24, fd00:7::2/64
Address = 10.8.0.2/32
MTU = 1400
DNS = 1.1.1.1
Table = 1234
PreUp = echo pre-up
PostUp = iptables -A FORWARD -i %i -j ACCEPT
PreDown = echo pre-down
PostDown = iptables -D FORWARD -i %i -j ACCEPT
SaveConfig = true
FwMark = 0x1234
Colour = blue

[peer]
publickey = )" + kPeerA + R"(
PresharedKey = )" + kPreshared +
                          R"(
Endpoint = 192.0.2.1:51820   # the server
AllowedIPs = 10.7.0.0/24, 192.168.60.0/24
AllowedIPs = 0.0.0.0/0
PersistentKeepalive = 25

[Peer]
PublicKey = )" + kPeerB + R"(
Endpoint = [2001:db8::1]:51821
AllowedIPs = 192.168.61.0/24,fd00:61::/64,
PersistentKeepalive = off
)";

TEST(WgQuick, MapsEveryKeyTunlabDoes) {
    const auto parsed = wg_quick_to_json("wg0", kFile);
    const json expected = {
        {"protocol", "wireguard"},
        {"interface", "wg0"},
        {"private_key", kPrivate},
        {"listen_port", 51820},
        {"addresses", {"10.7.0.2/24", "fd00:7::2/64", "10.8.0.2/32"}},
        {"mtu", 1400},
        // 10.7.0.0/24 is on the link through its Address, 0.0.0.0/0 is policy routing: not
        // routed, as wg-quick would not add them either.
        {"routes", {"192.168.60.0/24", "192.168.61.0/24", "fd00:61::/64"}},
        {"peers",
         {{{"public_key", kPeerA},
           {"preshared_key", kPreshared},
           {"endpoint", "192.0.2.1:51820"},
           {"allowed_ips", {"10.7.0.0/24", "192.168.60.0/24", "0.0.0.0/0"}},
           {"keepalive", 25}},
          {{"public_key", kPeerB},
           {"endpoint", "[2001:db8::1]:51821"},
           {"allowed_ips", {"192.168.61.0/24", "fd00:61::/64"}},
           {"keepalive", 0}}}},
    };
    EXPECT_EQ(parsed.tunnel, expected) << parsed.tunnel.dump(2);
}

TEST(WgQuick, NotesEveryKeyTunlabDoesNotDoWithItsLine) {
    const auto parsed = wg_quick_to_json("wg0", kFile);
    std::vector<std::pair<size_t, std::string>> notes;
    for (const auto& note : parsed.notes) {
        notes.emplace_back(note.line, note.text.substr(0, note.text.find(' ')));
    }
    const std::vector<std::pair<size_t, std::string>> expected = {
        {8, "DNS"},       {9, "Table"},       {10, "PreUp"},  {11, "PostUp"},   {12, "PreDown"},
        {13, "PostDown"}, {14, "SaveConfig"}, {15, "FwMark"}, {16, "'Colour'"}, {23, "AllowedIPs:"},
    };
    EXPECT_EQ(notes, expected);
    for (const auto& note : parsed.notes) {
        // No value is ever repeated: not the command, not the resolver, not the mark.
        for (const char* value :
             {"1.1.1.1", "iptables", "echo", "0x1234", "1234", "blue", "true"}) {
            EXPECT_EQ(note.text.find(value), std::string::npos) << note.text;
        }
    }
    EXPECT_NE(parsed.notes[9].text.find("0.0.0.0/0"), std::string::npos);
    EXPECT_NE(parsed.notes[9].text.find("kept"), std::string::npos);
}

TEST(WgQuick, TableOffAddsNoRoutes) {
    const auto parsed = wg_quick_to_json("wg0", std::string("[Interface]\nTable = off\n[Peer]\n"
                                                            "PublicKey = ") +
                                                    kPeerA + "\nAllowedIPs = 10.9.0.0/24\n");
    EXPECT_EQ(parsed.tunnel["routes"], json::array());
    EXPECT_TRUE(parsed.notes.empty());  // wg-quick's meaning, and tunlab's
    const auto auto_table = wg_quick_to_json("wg0", "[Interface]\nTable = auto\n");
    EXPECT_TRUE(auto_table.notes.empty());
}

TEST(WgQuick, ReadsWhatWgQuickReads) {
    // Case, spacing, CRLF, comments anywhere, addresses without a prefix length, a peer
    // without an endpoint, host bits in an allowed IP.
    const auto parsed = wg_quick_to_json(
        "home", std::string("\r\n  [INTERFACE]  \r\nprivatekey=") + kPrivate +
                    "\r\naddress=10.7.0.2 # me\r\n#[Peer]\r\n[Peer]\r\nPUBLICKEY = " + kPeerA +
                    "\r\nallowedips = 10.9.0.7/24\r\nEndpoint = vpn.example.org:51820\r\n");
    EXPECT_EQ(parsed.tunnel["interface"], "home");
    EXPECT_EQ(parsed.tunnel["addresses"], json({"10.7.0.2/32"}));
    EXPECT_EQ(parsed.tunnel["peers"][0]["allowed_ips"], json({"10.9.0.0/24"}));
    EXPECT_EQ(parsed.tunnel["peers"][0]["endpoint"], "vpn.example.org:51820");
    EXPECT_EQ(parsed.tunnel["routes"], json({"10.9.0.0/24"}));
    EXPECT_TRUE(parsed.notes.empty());
}

// The line an error names, and that its message quotes no value.
size_t error_line(const std::string& text, const std::string& must_say = "",
                  const std::string& must_not_say = "") {
    try {
        wg_quick_to_json("wg0", text);
    } catch (const WgQuickError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(must_say), std::string::npos) << message;
        if (!must_not_say.empty()) {
            EXPECT_EQ(message.find(must_not_say), std::string::npos) << message;
        }
        if (error.line() != 0) {
            EXPECT_EQ(message.rfind("line " + std::to_string(error.line()) + ": ", 0), 0u)
                << message;
        }
        return error.line();
    }
    ADD_FAILURE() << "accepted: " << text;
    return 0;
}

TEST(WgQuick, MalformedFilesNameTheLine) {
    const std::string peer = std::string("[Peer]\nPublicKey = ") + kPeerA + "\n";
    EXPECT_EQ(error_line(""), 0u);
    EXPECT_EQ(error_line("# nothing\n", "no [Interface]"), 0u);
    EXPECT_EQ(error_line("PrivateKey = secret-text\n", "outside any section", "secret-text"), 1u);
    EXPECT_EQ(error_line("[Interface]\n\njust words\n", "Key = value"), 3u);
    EXPECT_EQ(error_line("[Interface\n", "']'"), 1u);
    EXPECT_EQ(error_line("[Interface]\nPrivateKey = c2VjcmV0LXRleHQ=\n", "PrivateKey: not a key",
                         "c2VjcmV0"),
              2u);
    // One character off a real key: a secret that almost is one is not quoted either.
    std::string almost = kPrivate;
    almost[5] = '!';
    EXPECT_EQ(error_line("[Interface]\nPrivateKey = " + almost + "\n", "PrivateKey", almost), 2u);
    EXPECT_EQ(error_line("[Interface]\n" + peer + "PresharedKey = " + almost + "\n",
                         "PresharedKey: not a key", almost),
              4u);
    EXPECT_EQ(error_line("[Interface]\n[Peer]\nEndpoint = 192.0.2.1:1\n", "no PublicKey"), 2u);
    EXPECT_EQ(error_line("[Interface]\n[Peer]\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = " +
                             std::string(kPeerA) + "\n",
                         "no PublicKey"),
              2u);
    EXPECT_EQ(error_line("[Interface]\n" + peer + "PublicKey = 1234\n", "PublicKey", "1234"), 4u);
    EXPECT_EQ(error_line("[Interface]\n" + peer + peer, "already the key of the peer on line 2"),
              5u);
    EXPECT_EQ(error_line("[Interface]\nListenPort = 65536\n", "ListenPort", "65536"), 2u);
    EXPECT_EQ(error_line("[Interface]\nListenPort = 1\nlistenport = 2\n", "twice"), 3u);
    EXPECT_EQ(error_line("[Interface]\nMTU = 100\n", "MTU"), 2u);
    EXPECT_EQ(error_line("[Interface]\nAddress = fd00::1/64\nMTU = 1000\n", "IPv6"), 3u);
    EXPECT_EQ(
        error_line("[Interface]\nAddress = 10.0.0.1/24, 10.0.0.300/24\n", "item 2", "10.0.0.300"),
        2u);
    EXPECT_EQ(
        error_line("[Interface]\n" + peer + "AllowedIPs = 10.0.0.0/33\n", "AllowedIPs", "/33"), 4u);
    EXPECT_EQ(
        error_line("[Interface]\n" + peer + "Endpoint = 2001:db8::1:51820\n", "Endpoint", "2001"),
        4u);
    EXPECT_EQ(error_line("[Interface]\n" + peer + "PersistentKeepalive = soon\n",
                         "PersistentKeepalive", "soon"),
              4u);
    EXPECT_EQ(error_line("[Interface]\n" + peer + "AllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = " +
                             kPeerB + "\nAllowedIPs = 10.0.0.0/8\n",
                         "already allowed for the peer on line 2"),
              7u);
    EXPECT_EQ(error_line("[Interface]\nPublicKey = " + std::string(kPeerA) + "\n", "[Peer]"), 2u);
    EXPECT_EQ(error_line("[Interface]\n" + peer + "Address = 10.0.0.1/24\n", "[Interface]"), 4u);
}

TEST(WgQuick, APastedKeyIsNeverRepeated) {
    // "KEY=" reads as a key named like the secret with an empty value: noted, not quoted.
    const std::string secret = std::string(kPrivate).substr(0, 43);
    const auto parsed = wg_quick_to_json("wg0", "[Interface]\n" + std::string(kPrivate) + "\n");
    ASSERT_EQ(parsed.notes.size(), 1u);
    EXPECT_EQ(parsed.notes[0].text.find(secret.substr(0, 8)), std::string::npos)
        << parsed.notes[0].text;
    EXPECT_EQ(error_line(std::string(kPrivate) + "\n", "outside any section", secret.substr(0, 8)),
              1u);
    const auto in_peer =
        wg_quick_to_json("wg0", "[Interface]\n[Peer]\nPublicKey = " + std::string(kPeerA) + "\n" +
                                    kPreshared + "\n");
    ASSERT_EQ(in_peer.notes.size(), 1u);
    EXPECT_EQ(in_peer.notes[0].text.find("FpCyhws9"), std::string::npos) << in_peer.notes[0].text;
}

TEST(WgQuick, AKeyOnceForTheWholeInterface) {
    EXPECT_EQ(
        error_line(std::string("[Interface]\nPrivateKey = ") + kPrivate + "\n[Peer]\n" +
                       "PublicKey = " + kPeerA + "\n[Interface]\nPrivateKey = " + kPrivate + "\n",
                   "twice (also on line 2)", kPrivate),
        6u);
}

TEST(WgQuick, BoundsItsInput) {
    EXPECT_EQ(
        error_line("[Interface]\n# " + std::string(kWgQuickMaximumLine, 'x') + "\n", "longer than"),
        2u);
    std::string huge = "[Interface]\n";
    while (huge.size() <= kWgQuickMaximumBytes) {
        huge += "# " + std::string(1000, 'x') + "\n";
    }
    EXPECT_EQ(error_line(huge, "larger than"), 0u);
}

TEST(WgQuick, UnknownSectionsAreNotedNotRead) {
    const auto parsed =
        wg_quick_to_json("wg0", "[Interface]\nListenPort = 1\n[Extra]\nListenPort = 2\n");
    EXPECT_EQ(parsed.tunnel["listen_port"], 1);
    ASSERT_EQ(parsed.notes.size(), 1u);
    EXPECT_EQ(parsed.notes[0].line, 3u);
}

TEST(WgQuick, RoundTripThroughTunnelConfig) {
    std::vector<WgQuickNote> notes;
    const TunnelConfig config = wg_quick_to_tunnel_config("wg0", kFile, &notes);
    EXPECT_EQ(notes.size(), 10u);
    EXPECT_EQ(config.protocol, ProtocolKind::WireGuard);
    EXPECT_EQ(config.interface, "wg0");
    EXPECT_FALSE(config.private_key.empty());
    ASSERT_EQ(config.peers.size(), 2u);
    EXPECT_FALSE(config.peers[0].preshared_key.empty());

    const std::string text = wg_quick_from_tunnel_config(config);
    EXPECT_EQ(text.find("# tunlab"), std::string::npos) << text;
    EXPECT_NE(text.find(std::string("PrivateKey = ") + kPrivate), std::string::npos);
    EXPECT_NE(text.find(std::string("PresharedKey = ") + kPreshared), std::string::npos);
    const TunnelConfig again = wg_quick_to_tunnel_config("wg0", text, &notes);
    EXPECT_EQ(again, config) << text;
    // The one note left: the /0 that is not routed.
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].text.find("0.0.0.0/0"), std::string::npos);
}

TEST(WgQuick, ATunnelWithoutRoutesIsTableOff) {
    TunnelConfig config = wg_quick_to_tunnel_config("wg0", kFile);
    config.routes.clear();
    const std::string text = wg_quick_from_tunnel_config(config);
    EXPECT_NE(text.find("\nTable = off\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("# tunlab"), std::string::npos) << text;
    EXPECT_EQ(wg_quick_to_tunnel_config("wg0", text), config);
}

TEST(WgQuick, WritesWithoutSecrets) {
    const TunnelConfig config = wg_quick_to_tunnel_config("wg0", kFile);
    const std::string text = wg_quick_from_tunnel_config(config, Secrets::Omit);
    EXPECT_EQ(text.find(kPrivate), std::string::npos);
    EXPECT_EQ(text.find(kPreshared), std::string::npos);
    EXPECT_NE(text.find("# PrivateKey left out"), std::string::npos);
    EXPECT_NE(text.find("# PresharedKey left out"), std::string::npos);
    // Read back, it is the same tunnel but for the keys (tunlabd makes a private key for a
    // request without one).
    const auto parsed = wg_quick_to_json("wg0", text);
    EXPECT_FALSE(parsed.tunnel.contains("private_key"));
    EXPECT_FALSE(parsed.tunnel["peers"][0].contains("preshared_key"));
    EXPECT_EQ(parsed.tunnel["peers"][0]["public_key"], kPeerA);
}

TEST(WgQuick, SaysWhatWgQuickCannot) {
    TunnelConfig config = wg_quick_to_tunnel_config("wg0", kFile);
    config.interface = "tun7";
    config.listen_address = test_support::ip("10.9.0.5");
    config.busy_poll_us = 500;
    config.routes.push_back(prefix("172.16.0.0/12"));  // no allowed IP
    config.routes.erase(config.routes.begin());        // 192.168.60.0/24
    const std::string text = wg_quick_from_tunnel_config(config, Secrets::Omit);
    for (const char* line : {"# tunlab: interface tun7", "# tunlab: listen_address 10.9.0.5",
                             "# tunlab: busy_poll_us 500", "# tunlab: route 172.16.0.0/12",
                             "# tunlab: no route to 192.168.60.0/24"}) {
        EXPECT_NE(text.find(line), std::string::npos) << line << " in\n" << text;
    }
    // Comments: the file still reads back, to the tunnel wg-quick can say.
    const auto parsed = wg_quick_to_json("wg0", text);
    EXPECT_TRUE(parsed.notes.size() == 1u);

    TunnelConfig plain;
    plain.name = "lab";
    EXPECT_THROW(wg_quick_from_tunnel_config(plain), ConfigError);
}

TEST(WgQuick, MissingPrivateKeyIsAnErrorForATunnelFile) {
    EXPECT_THROW(wg_quick_to_tunnel_config("wg0", "[Interface]\nAddress = 10.0.0.1/24\n"),
                 WgQuickError);
    // An invalid tunnel name is the tunnel's problem, not the text's.
    EXPECT_THROW(
        wg_quick_to_tunnel_config("a name", std::string("[Interface]\nPrivateKey = ") + kPrivate),
        ConfigError);
}

// ── tunnels.d/<name>.conf ───────────────────────────────────────────────────────────────────

class WgQuickDirectory : public test_support::TemporaryDirectoryTest {
  protected:
    std::filesystem::path write(const std::string& name, const std::string& text,
                                mode_t mode = 0600) {
        const auto path = directory_ / name;
        std::ofstream(path) << text;
        ::chmod(path.c_str(), mode);
        return path;
    }
};

TEST_F(WgQuickDirectory, LoadsConfFilesWithTheirNotes) {
    write("wg0.conf", kFile);
    const auto loaded = load_config_directory(directory_);
    EXPECT_TRUE(loaded.errors.empty()) << loaded.errors.front();
    ASSERT_EQ(loaded.tunnels.size(), 1u);
    EXPECT_EQ(loaded.tunnels[0], wg_quick_to_tunnel_config("wg0", kFile));
    ASSERT_EQ(loaded.notes.size(), 10u);
    EXPECT_EQ(loaded.notes[0].rfind((directory_ / "wg0.conf").string() + ": line 8: DNS ", 0), 0u)
        << loaded.notes[0];
}

TEST_F(WgQuickDirectory, RefusesWhatAKeyFileWouldBeRefusedFor) {
    write("open.conf", kFile, 0644);
    write("group.conf", kFile, 0640);
    write("bad.conf", "[Interface]\nPrivateKey = nope\n");
    const auto loaded = load_config_directory(directory_);
    EXPECT_TRUE(loaded.tunnels.empty());
    ASSERT_EQ(loaded.errors.size(), 3u);
    EXPECT_EQ(loaded.errors[0], (directory_ / "bad.conf").string() +
                                    ": line 2: PrivateKey: not a key: 32 bytes in base64 (44 "
                                    "characters, as `wg genkey`, `wg pubkey` and `wg genpsk` "
                                    "print)");
    EXPECT_EQ(loaded.errors[1],
              (directory_ / "group.conf").string() +
                  ": may be read or written by others (mode 0640): make it mode 600 (chmod 600)");
    EXPECT_EQ(loaded.errors[2],
              (directory_ / "open.conf").string() +
                  ": may be read or written by others (mode 0644): make it mode 600 (chmod 600)");
}

TEST_F(WgQuickDirectory, ANameInBothFormsIsAnError) {
    write("wg0.conf", kFile);
    write("wg0.json", R"({"addresses": ["10.1.0.1/24"]})", 0644);
    const auto loaded = load_config_directory(directory_);
    ASSERT_EQ(loaded.tunnels.size(), 1u);
    EXPECT_EQ(loaded.tunnels[0].protocol, ProtocolKind::Plain);
    ASSERT_EQ(loaded.errors.size(), 1u);
    EXPECT_NE(loaded.errors[0].find((directory_ / "wg0.conf").string()), std::string::npos);
    EXPECT_NE(loaded.errors[0].find((directory_ / "wg0.json").string()), std::string::npos);
}

}  // namespace
}  // namespace tunlab
