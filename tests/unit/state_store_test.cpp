#include "config/state_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "temporary_directory.hpp"

namespace tunlab {
namespace {

class StateStoreTest : public test_support::TemporaryDirectoryTest {
  protected:
    static TunnelConfig config(const std::string& name, const char* json) {
        return tunnel_config_from_json(name, nlohmann::json::parse(json));
    }
};

TEST_F(StateStoreTest, SavedStatesLoadBackEqual) {
    StateStore store(directory_);
    const auto file = config("lab", R"({"addresses": ["192.168.53.99/24"], "listen_port": 9090})");
    auto changed = file;
    changed.routes.push_back(*Prefix::parse("192.168.60.0/24"));
    PeerConfig peer;
    peer.endpoint = Endpoint::parse("10.9.0.11:9090");
    peer.allowed_ips = {*Prefix::parse("192.168.60.0/24")};
    peer.keepalive_seconds = 25;
    changed.peers.push_back(peer);
    const TunnelState from_file{TunnelState::Origin::File, file, changed};
    const TunnelState from_bus{TunnelState::Origin::Bus, std::nullopt,
                               config("made", R"({"mode": "tap"})")};
    const auto gone_file = config("gone", R"({"listen_port": 9091})");
    const TunnelState deleted{TunnelState::Origin::File, gone_file, std::nullopt};
    store.save("lab", from_file);
    store.save("made", from_bus);
    store.save("gone", deleted);

    std::vector<std::string> errors;
    const auto loaded = store.load(errors);
    EXPECT_TRUE(errors.empty());
    ASSERT_EQ(loaded.size(), 3u);
    EXPECT_EQ(loaded.at("lab"), from_file);
    EXPECT_EQ(loaded.at("made"), from_bus);
    EXPECT_EQ(loaded.at("gone"), deleted);
}

TEST_F(StateStoreTest, SaveReplacesAndEraseRemoves) {
    StateStore store(directory_);
    store.save("lab", TunnelState{TunnelState::Origin::Bus, std::nullopt, config("lab", "{}")});
    store.save("lab", TunnelState{TunnelState::Origin::Bus, std::nullopt,
                                  config("lab", R"({"listen_port": 7})")});
    std::vector<std::string> errors;
    EXPECT_EQ(store.load(errors).at("lab").current->listen_port, 7);
    store.erase("lab");
    EXPECT_TRUE(store.load(errors).empty());
    // No temporary file is left behind by the atomic replace.
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(directory_ / "tunnels"),
                            std::filesystem::directory_iterator()),
              0);
}

TEST_F(StateStoreTest, CorruptFilesAreReportedSetAsideAndSkipped) {
    StateStore store(directory_);
    store.save("good", TunnelState{TunnelState::Origin::Bus, std::nullopt, config("good", "{}")});
    const auto tunnels = directory_ / "tunnels";
    std::ofstream(tunnels / "half.json") << R"({"version": 1, "origin": "bus", "conf)";
    std::ofstream(tunnels / "wrong.json")
        << R"({"version": 1, "origin": "bus", "base": null, "config": {"mtu": "big"}})";
    std::ofstream(tunnels / "future.json") << R"({"version": 99})";

    std::vector<std::string> errors;
    const auto loaded = store.load(errors);
    EXPECT_EQ(loaded.size(), 1u);
    EXPECT_TRUE(loaded.contains("good"));
    ASSERT_EQ(errors.size(), 3u);
    for (const char* name : {"half", "wrong", "future"}) {
        EXPECT_TRUE(std::filesystem::exists(tunnels / (std::string(name) + ".json.corrupt")))
            << name;
        EXPECT_FALSE(std::filesystem::exists(tunnels / (std::string(name) + ".json"))) << name;
    }
    // The field at fault is named.
    bool named_field = false;
    for (const auto& error : errors) {
        named_field = named_field || error.find("mtu") != std::string::npos;
    }
    EXPECT_TRUE(named_field);
}

// A state file holds keys: a broken one is reported by position, never by what it holds (the
// JSON parser's own message would quote what it last read).
TEST_F(StateStoreTest, CorruptFileIsNotQuoted) {
    StateStore store(directory_);
    store.save("good", TunnelState{TunnelState::Origin::Bus, std::nullopt, config("good", "{}")});
    const std::string key = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    std::ofstream(directory_ / "tunnels" / "cut.json")
        << R"({"version": 1, "origin": "bus", "base": null, "config": {"private_key": ")"
        << key.substr(0, 30);
    std::vector<std::string> errors;
    store.load(errors);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("syntax error at byte"), std::string::npos) << errors[0];
    EXPECT_EQ(errors[0].find(key.substr(0, 8)), std::string::npos) << errors[0];
}

// Whatever the umask, nobody but the daemon can write where its states are.
TEST_F(StateStoreTest, DirectoryIsTheDaemonsAloneWhateverTheUmask) {
    const mode_t saved = ::umask(0);
    StateStore store(directory_ / "state");
    store.save("lab", TunnelState{TunnelState::Origin::Bus, std::nullopt, config("lab", "{}")});
    ::umask(saved);
    for (const auto& path : {directory_ / "state", directory_ / "state" / "tunnels"}) {
        struct stat status {};
        ASSERT_EQ(::stat(path.c_str(), &status), 0) << path;
        EXPECT_EQ(status.st_mode & 07777, 0700u) << path;
    }
    struct stat file {};
    ASSERT_EQ(::stat((directory_ / "state" / "tunnels" / "lab.json").c_str(), &file), 0);
    EXPECT_EQ(file.st_mode & 07777, 0600u);
}

TEST_F(StateStoreTest, MissingDirectoryIsEmpty) {
    std::vector<std::string> errors;
    EXPECT_TRUE(StateStore(directory_ / "nowhere").load(errors).empty());
    EXPECT_TRUE(errors.empty());
}

}  // namespace
}  // namespace tunlab
