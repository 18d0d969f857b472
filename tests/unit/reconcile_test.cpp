#include "core/reconcile.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config/tunnel_config.hpp"

namespace tunlab {
namespace {

using Origin = TunnelState::Origin;

TunnelConfig config(const std::string& name, const char* json = "{}") {
    return tunnel_config_from_json(name, nlohmann::json::parse(json));
}

TunnelConfig changed(TunnelConfig config) {
    config.routes.push_back(*Prefix::parse("10.1.0.0/16"));
    return config;
}

std::vector<std::string> saved_names(const Reconciliation& plan) {
    std::vector<std::string> names;
    for (const auto& [name, state] : plan.saves) {
        names.push_back(name);
    }
    return names;
}

TEST(Reconcile, ANewFileRunsAsItSaysAndIsRemembered) {
    const auto file = config("lab", R"({"listen_port": 9090})");
    const auto plan = reconcile({file}, {});
    ASSERT_EQ(plan.wanted.size(), 1u);
    EXPECT_EQ(plan.wanted.at("lab"), file);
    ASSERT_EQ(plan.saves.size(), 1u);
    EXPECT_EQ(plan.saves[0].second, (TunnelState{Origin::File, file, file}));
    EXPECT_TRUE(plan.erases.empty());
    EXPECT_TRUE(plan.notes.empty());
}

TEST(Reconcile, ChangesMadeByRequestWinWhileTheFileIsUnchanged) {
    const auto file = config("lab");
    const auto current = changed(file);
    const auto plan = reconcile({file}, {{"lab", TunnelState{Origin::File, file, current}}});
    EXPECT_EQ(plan.wanted.at("lab"), current);
    EXPECT_TRUE(plan.saves.empty());
    EXPECT_TRUE(plan.notes.empty());
}

TEST(Reconcile, AnEditedFileWinsAndSaysSo) {
    const auto old_file = config("lab");
    const auto new_file = config("lab", R"({"mtu": 1400})");
    const auto plan =
        reconcile({new_file}, {{"lab", TunnelState{Origin::File, old_file, changed(old_file)}}});
    EXPECT_EQ(plan.wanted.at("lab"), new_file);
    ASSERT_EQ(plan.saves.size(), 1u);
    EXPECT_EQ(plan.saves[0].second, (TunnelState{Origin::File, new_file, new_file}));
    ASSERT_EQ(plan.notes.size(), 1u);
    EXPECT_FALSE(plan.notes[0].warning);
    EXPECT_NE(plan.notes[0].text.find("configuration file changed"), std::string::npos);
}

TEST(Reconcile, ATunnelDeletedByRequestStaysDeletedUntilItsFileChanges) {
    const auto file = config("lab");
    const std::map<std::string, TunnelState> deleted{
        {"lab", TunnelState{Origin::File, file, std::nullopt}}};
    const auto plan = reconcile({file}, deleted);
    EXPECT_TRUE(plan.wanted.empty());
    EXPECT_TRUE(plan.saves.empty());

    const auto edited = config("lab", R"({"mtu": 1400})");
    const auto after_edit = reconcile({edited}, deleted);
    EXPECT_EQ(after_edit.wanted.at("lab"), edited);
    EXPECT_EQ(saved_names(after_edit), std::vector<std::string>{"lab"});
}

TEST(Reconcile, ARemovedFileTakesItsTunnelAndState) {
    const auto file = config("lab");
    const auto plan = reconcile({}, {{"lab", TunnelState{Origin::File, file, changed(file)}}});
    EXPECT_TRUE(plan.wanted.empty());
    EXPECT_EQ(plan.erases, std::vector<std::string>{"lab"});
}

TEST(Reconcile, ATunnelMadeByRequestComesBackAndShadowsAFileOfItsName) {
    const auto made = config("lab", R"({"listen_port": 7000})");
    const auto file = config("lab", R"({"listen_port": 9090})");
    const std::map<std::string, TunnelState> saved{
        {"lab", TunnelState{Origin::Bus, std::nullopt, made}},
        {"other", TunnelState{Origin::Bus, std::nullopt, config("other")}}};
    const auto plan = reconcile({file}, saved);
    EXPECT_EQ(plan.wanted.at("lab"), made);
    EXPECT_EQ(plan.wanted.at("other"), config("other"));
    EXPECT_TRUE(plan.saves.empty());
    EXPECT_TRUE(plan.erases.empty());
    ASSERT_EQ(plan.notes.size(), 1u);
    EXPECT_TRUE(plan.notes[0].warning);

    // Without the file, the same: a tunnel made by request has no file to lose.
    const auto without_file = reconcile({}, saved);
    EXPECT_EQ(without_file.wanted.size(), 2u);
    EXPECT_TRUE(without_file.erases.empty());
}

}  // namespace
}  // namespace tunlab
