#include "util/atomic_file.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "temporary_directory.hpp"
namespace tunlab {
namespace {

std::string contents(const std::filesystem::path& path) {
    std::ifstream input(path);
    std::stringstream text;
    text << input.rdbuf();
    return text.str();
}

std::vector<std::string> names_in(const std::filesystem::path& directory) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
        names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

using AtomicFileTest = test_support::TemporaryDirectoryTest;

TEST_F(AtomicFileTest, ReplacesTheFileWithTheModeAsked) {
    const auto path = directory_ / "state.json";
    write_file_atomically(path, "one", 0600);
    write_file_atomically(path, "two", 0600);
    EXPECT_EQ(contents(path), "two");
    struct stat status {};
    ASSERT_EQ(::stat(path.c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 0777, 0600u);
    EXPECT_EQ(names_in(directory_), std::vector<std::string>{"state.json"});
}

// Run as root with a state directory others can write, a fixed temporary name let anyone
// plant a symlink there and have the next save overwrite whatever it points to.
TEST_F(AtomicFileTest, APlantedSymlinkIsNeverFollowed) {
    const auto victim = directory_ / "victim";
    std::ofstream(victim) << "precious";
    const auto path = directory_ / "state.json";
    std::filesystem::create_symlink(victim, directory_ / "state.json.tmp");
    write_file_atomically(path, "new state");
    EXPECT_EQ(contents(victim), "precious");
    EXPECT_EQ(contents(path), "new state");
    EXPECT_TRUE(std::filesystem::is_symlink(directory_ / "state.json.tmp"));
}

// A write that fails (here: the file size limit, as a full disk would) leaves the old file
// as it was and no temporary file behind.
TEST_F(AtomicFileTest, AFailedWriteLeavesTheOldFileAndNoTemporary) {
    const auto path = directory_ / "state.json";
    write_file_atomically(path, "old");
    rlimit before{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &before), 0);
    const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = before;
    small.rlim_cur = 16;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    EXPECT_THROW(write_file_atomically(path, std::string(4096, 'x')), std::system_error);
    ::setrlimit(RLIMIT_FSIZE, &before);
    std::signal(SIGXFSZ, previous_handler);
    EXPECT_EQ(contents(path), "old");
    EXPECT_EQ(names_in(directory_), std::vector<std::string>{"state.json"});
}

TEST_F(AtomicFileTest, LeftoversOfACrashAreRemovedAndNothingElse) {
    std::ofstream(directory_ / "lab.json") << "{}";
    std::ofstream(directory_ / "lab.json.tmp.0123456789ab") << "half";
    std::ofstream(directory_ / "lab.json.corrupt") << "kept for the admin";
    std::filesystem::create_symlink(directory_ / "lab.json",
                                    directory_ / "x.json.tmp.ffffffffffff");
    EXPECT_EQ(remove_leftover_temporaries(directory_), 2u);
    EXPECT_EQ(names_in(directory_), (std::vector<std::string>{"lab.json", "lab.json.corrupt"}));
    EXPECT_EQ(contents(directory_ / "lab.json"), "{}");
}

}  // namespace
}  // namespace tunlab
