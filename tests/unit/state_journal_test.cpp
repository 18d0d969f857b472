// The state journal (StateStore::save_change): changes appended beside the base, replayed on
// load, cut short or damaged by crashes and disks, and compacted into new bases.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/journal_format.hpp"
#include "config/state_store.hpp"
#include "temporary_directory.hpp"

namespace tunlab {

// Failures show the state as JSON, not as bytes.
void PrintTo(const TunnelState& state, std::ostream* out) {
    *out << (state.current ? tunnel_config_to_json(*state.current).dump() : "deleted");
}

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
    std::ifstream input(path, std::ios::binary);
    std::ostringstream content;
    content << input.rdbuf();
    return std::move(content).str();
}

void write_file(const fs::path& path, const std::string& content) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

PeerConfig peer(int number) {
    PeerConfig peer;
    peer.endpoint = Endpoint::parse("10.200.0." + std::to_string(number) + ":51820");
    peer.allowed_ips = {*Prefix::parse("10.100.0." + std::to_string(number) + "/32")};
    return peer;
}

// A running tunnel as the store sees it: settings, peers by id, and the ids the last change
// touched; `state()` is what a load must give back.
struct Running {
    uint64_t session = 1;
    TunnelConfig settings =
        tunnel_config_from_json("lab", nlohmann::json::parse(R"({"listen_port": 9090})"));
    std::map<PeerId, PeerConfig> peers;
    std::vector<PeerId> touched;
    PeerId next_id = 1;

    PeerId add(int number) {
        peers.emplace(next_id, peer(number));
        touched.push_back(next_id);
        return next_id++;
    }
    void remove(PeerId id) {
        peers.erase(id);
        touched.push_back(id);
    }
    void save(StateStore& store) {
        store.save_change("lab", TunnelState::Origin::Bus, std::nullopt,
                          StateStore::Change{session, settings, peers, touched});
        touched.clear();
    }
    TunnelState state() const {
        TunnelConfig config = settings;
        for (const auto& [id, configured] : peers) {
            config.peers.push_back(configured);
        }
        return TunnelState{TunnelState::Origin::Bus, std::nullopt, config};
    }
};

class StateJournalTest : public test_support::TemporaryDirectoryTest {
  protected:
    fs::path tunnels() const { return directory_ / "tunnels"; }
    fs::path journal() const { return tunnels() / "lab.journal"; }
    fs::path base() const { return tunnels() / "lab.json"; }

    // The common start: peer 1 in the base (a session's first save), peer 2 in one journal
    // record after it.
    static Running base_and_one_record(StateStore& store) {
        Running tunnel;
        tunnel.add(1);
        tunnel.save(store);
        tunnel.add(2);
        tunnel.save(store);
        return tunnel;
    }

    // Loads with a fresh store, as the daemon does when it starts again.
    std::optional<TunnelState> load(std::vector<std::string>& errors) const {
        StateStore store(directory_);
        auto states = store.load(errors);
        if (!states.contains("lab")) {
            return std::nullopt;
        }
        return states.at("lab");
    }
    std::optional<TunnelState> load() const {
        std::vector<std::string> errors;
        auto state = load(errors);
        EXPECT_TRUE(errors.empty()) << errors.front();
        return state;
    }
};

TEST_F(StateJournalTest, ChangesGoToTheJournalAndLoadBack) {
    StateStore store(directory_);
    Running tunnel;
    tunnel.add(1);
    tunnel.add(2);
    tunnel.save(store);  // the first save of a session: a base
    EXPECT_FALSE(fs::exists(journal()));
    const std::string base_before = read_file(base());

    const PeerId third = tunnel.add(3);
    tunnel.save(store);
    tunnel.remove(1);
    tunnel.save(store);
    tunnel.peers.at(third).allowed_ips.push_back(*Prefix::parse("10.101.0.0/24"));
    tunnel.touched.push_back(third);
    tunnel.save(store);
    tunnel.settings.routes.push_back(*Prefix::parse("192.168.60.0/24"));
    tunnel.save(store);  // settings only

    EXPECT_EQ(read_file(base()), base_before) << "a change must not rewrite the base";
    struct stat status {};
    ASSERT_EQ(::stat(journal().c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 07777, 0600u) << "the journal holds keys like the base";
    EXPECT_EQ(load(), tunnel.state());
}

TEST_F(StateJournalTest, ANewSessionWritesANewBase) {
    StateStore store(directory_);
    base_and_one_record(store);
    ASSERT_TRUE(fs::exists(journal()));
    // A restarted tunnel: new ids for the same peers.
    Running restarted;
    restarted.session = 2;
    restarted.next_id = 100;
    restarted.add(1);
    restarted.add(2);
    restarted.add(3);
    restarted.save(store);
    EXPECT_FALSE(fs::exists(journal()));
    restarted.remove(100);
    restarted.save(store);
    EXPECT_EQ(load(), restarted.state());
}

// A crash while appending leaves any prefix of the last record (or zeros where its bytes did
// not reach the disk): the state before that change, which was never answered, and a message.
TEST_F(StateJournalTest, TornLastRecordAtEveryByteGivesTheStateBeforeIt) {
    StateStore store(directory_);
    Running tunnel = base_and_one_record(store);
    const TunnelState before = tunnel.state();
    const size_t whole = fs::file_size(journal());
    tunnel.add(3);
    tunnel.remove(1);
    tunnel.save(store);
    const std::string full = read_file(journal());
    ASSERT_GT(full.size(), whole);
    ASSERT_EQ(load(), tunnel.state());

    for (size_t cut = whole; cut < full.size(); ++cut) {
        for (const bool zeros : {false, true}) {
            std::string torn = full.substr(0, cut);
            if (zeros) {
                torn.append(full.size() - cut, '\0');
            }
            write_file(journal(), torn);
            std::vector<std::string> errors;
            EXPECT_EQ(load(errors), before) << "cut at " << cut << (zeros ? " + zeros" : "");
            const bool torn_at_all = cut > whole || zeros;
            ASSERT_EQ(errors.size(), torn_at_all ? 1u : 0u) << "cut at " << cut;
            if (torn_at_all) {
                EXPECT_NE(errors[0].find("cut short"), std::string::npos) << errors[0];
            }
        }
    }
}

// Damage in the middle (a disk, not a crash): the state up to it, said loudly, the journal kept
// for the admin and the recovered state made the base, so that the next start is clean.
TEST_F(StateJournalTest, DamagedRecordInTheMiddleEndsTheReplayThere) {
    StateStore store(directory_);
    Running tunnel = base_and_one_record(store);
    const TunnelState after_first = tunnel.state();
    const size_t second_starts = fs::file_size(journal());
    tunnel.add(3);
    tunnel.save(store);
    tunnel.add(4);
    tunnel.save(store);

    std::string content = read_file(journal());
    content[second_starts + journal::kRecordHeaderSize + 5] ^= 0x20;
    write_file(journal(), content);
    std::vector<std::string> errors;
    EXPECT_EQ(load(errors), after_first);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("damaged"), std::string::npos) << errors[0];
    EXPECT_TRUE(fs::exists(tunnels() / "lab.journal.corrupt"));
    EXPECT_FALSE(fs::exists(journal()));
    EXPECT_EQ(load(), after_first);
}

TEST_F(StateJournalTest, AJournalAsBigAsItsBaseIsCompacted) {
    StateStore store(directory_);
    Running tunnel;
    for (int i = 1; i <= 50; ++i) {
        tunnel.add(i);
    }
    tunnel.save(store);
    size_t largest = 0;
    bool compacted = false;
    for (int round = 0; round < 400; ++round) {
        const PeerId id = tunnel.add(100 + round % 100);
        tunnel.save(store);
        tunnel.remove(id);
        tunnel.save(store);
        const size_t size = fs::exists(journal()) ? fs::file_size(journal()) : 0;
        compacted = compacted || size < largest;
        largest = std::max(largest, size);
    }
    EXPECT_TRUE(compacted);
    EXPECT_LE(largest, std::max<size_t>(64 * 1024, fs::file_size(base())) + 4096);
    EXPECT_EQ(load(), tunnel.state());
}

// Compaction is: write the new base (atomically), then remove the journal. A crash between the
// two leaves the old journal beside a base that holds its changes, and later ones: it must not
// be replayed onto it. A crash before the base's rename leaves its temporary file and the old
// state whole.
TEST_F(StateJournalTest, CrashBetweenCompactionStepsLosesNothing) {
    StateStore store(directory_);
    Running tunnel;
    const PeerId first = tunnel.add(1);
    tunnel.save(store);
    tunnel.add(2);
    tunnel.save(store);
    tunnel.peers.at(first).allowed_ips = {*Prefix::parse("10.102.0.0/24")};
    tunnel.touched.push_back(first);
    tunnel.save(store);
    const std::string old_base = read_file(base());
    const std::string old_journal = read_file(journal());
    const TunnelState before = tunnel.state();

    // The change that compacts: peer 1 changes back, which the old journal says otherwise.
    tunnel.peers.at(first) = peer(1);
    tunnel.touched.push_back(first);
    tunnel.session = 2;  // a new session compacts, as a big journal does
    tunnel.save(store);
    ASSERT_FALSE(fs::exists(journal()));

    write_file(journal(), old_journal);  // crashed before removing it
    EXPECT_EQ(load(), tunnel.state());
    EXPECT_FALSE(fs::exists(journal())) << "a stale journal is removed";

    // Crashed before the rename: the old base and journal, and a temporary file.
    write_file(base(), old_base);
    write_file(journal(), old_journal);
    write_file(tunnels() / "lab.json.tmp.0123456789ab", R"({"version": 1, "orig)");
    EXPECT_EQ(load(), before);
    EXPECT_FALSE(fs::exists(tunnels() / "lab.json.tmp.0123456789ab"));
}

TEST_F(StateJournalTest, EraseRemovesTheJournalAndAnOrphanIsRemovedOnLoad) {
    StateStore store(directory_);
    base_and_one_record(store);
    const std::string journal_content = read_file(journal());
    store.erase("lab");
    EXPECT_FALSE(fs::exists(base()));
    EXPECT_FALSE(fs::exists(journal()));
    write_file(journal(), journal_content);  // a crash between the two removals
    EXPECT_EQ(load(), std::nullopt);
    EXPECT_FALSE(fs::exists(journal()));
}

// A full save (create, reconcile) after changes: the journal no longer applies.
TEST_F(StateJournalTest, AFullSaveEndsTheJournal) {
    StateStore store(directory_);
    Running tunnel = base_and_one_record(store);
    const TunnelState replaced{TunnelState::Origin::Bus, std::nullopt, tunnel.settings};
    store.save("lab", replaced);
    EXPECT_EQ(load(), replaced);
    tunnel.add(3);
    tunnel.save(store);  // a base again, not an append to a journal of another base
    EXPECT_EQ(load(), tunnel.state());
}

}  // namespace
}  // namespace tunlab
