// The replay window against a brute-force model: a set of every counter accepted, and the rule
// "accept if below the limit, never seen, and at most 8128 behind the highest accepted".

#include "protocols/wireguard/replay.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace tunlab::wireguard {
namespace {

class ReferenceWindow {
  public:
    bool accept(uint64_t counter, uint64_t limit) {
        if (counter >= limit || seen_.count(counter) != 0) {
            return false;
        }
        if (counter < highest_ && highest_ - counter > ReplayFilter::kWindowSize) {
            return false;
        }
        seen_.insert(counter);
        highest_ = std::max(highest_, counter);
        return true;
    }

  private:
    std::set<uint64_t> seen_;
    uint64_t highest_ = 0;
};

TEST(Replay, InOrderAcceptedOnceEach) {
    ReplayFilter filter;
    for (uint64_t i = 0; i < 20000; ++i) {
        ASSERT_TRUE(filter.accept(i)) << i;
    }
    for (uint64_t i = 20000 - ReplayFilter::kWindowSize; i < 20000; ++i) {
        ASSERT_FALSE(filter.accept(i)) << i;
    }
}

TEST(Replay, OutOfOrderWithinTheWindowOnce) {
    ReplayFilter filter;
    EXPECT_TRUE(filter.accept(8200));
    EXPECT_TRUE(filter.accept(8200 - 8128));   // exactly the window's edge
    EXPECT_FALSE(filter.accept(8200 - 8129));  // one past it
    EXPECT_FALSE(filter.accept(8200 - 8128));  // duplicate
    EXPECT_TRUE(filter.accept(100));
    EXPECT_FALSE(filter.accept(100));
    EXPECT_FALSE(filter.accept(8200));
    EXPECT_TRUE(filter.accept(8199));
}

TEST(Replay, ZeroIsACounterLikeAnyOther) {
    ReplayFilter filter;
    EXPECT_TRUE(filter.accept(0));
    EXPECT_FALSE(filter.accept(0));
    EXPECT_TRUE(filter.accept(1));
}

TEST(Replay, JumpsClearTheBlocksTheySkip) {
    ReplayFilter filter;
    for (uint64_t i = 0; i < 64 * 3; ++i) {
        ASSERT_TRUE(filter.accept(i));
    }
    // Jump exactly a whole ring ahead: every old block is reused and must read as unseen.
    const uint64_t far = 64 * 3 + 64 * 128;
    EXPECT_TRUE(filter.accept(far));
    for (uint64_t i = far - ReplayFilter::kWindowSize; i < far; ++i) {
        ASSERT_TRUE(filter.accept(i)) << i;
    }
    // A jump of many rings.
    EXPECT_TRUE(filter.accept(1'000'000'000));
    EXPECT_FALSE(filter.accept(far));
    EXPECT_TRUE(filter.accept(1'000'000'000 - 1));
    EXPECT_TRUE(filter.accept(1'000'000'000 - 8128));
}

TEST(Replay, LimitRefusesAndDoesNotMoveTheWindow) {
    ReplayFilter filter;
    EXPECT_TRUE(filter.accept(5));
    EXPECT_FALSE(filter.accept(kRejectAfterMessages));
    EXPECT_FALSE(filter.accept(~uint64_t{0}));
    EXPECT_TRUE(filter.accept(4));  // the window did not jump to 2^64
    EXPECT_TRUE(filter.accept(kRejectAfterMessages - 1));
    EXPECT_FALSE(filter.accept(kRejectAfterMessages - 1));
    EXPECT_FALSE(filter.accept(10, 10));
    EXPECT_TRUE(filter.accept(kRejectAfterMessages - 2));
}

TEST(Replay, ResetForgetsEverything) {
    ReplayFilter filter;
    EXPECT_TRUE(filter.accept(70000));
    filter.reset();
    EXPECT_TRUE(filter.accept(0));
    EXPECT_TRUE(filter.accept(70000));
}

TEST(Replay, MatchesTheReferenceOnRandomSequences) {
    std::mt19937_64 random(6479);
    for (int round = 0; round < 40; ++round) {
        ReplayFilter filter;
        ReferenceWindow reference;
        uint64_t base = round % 4 == 3 ? kRejectAfterMessages - 30000 : 0;
        const uint64_t limit = round % 5 == 4 ? base + 20000 : kRejectAfterMessages;
        for (int step = 0; step < 20000; ++step) {
            // Mostly near the front, sometimes far behind or far ahead, often repeated.
            uint64_t counter;
            switch (random() % 8) {
                case 0:
                    counter = base + random() % 200000;
                    break;
                case 1:
                    counter = base > 9000 ? base - random() % 9000 : random() % 9000;
                    break;
                default:
                    counter = base + random() % 300;
                    break;
            }
            if (random() % 16 == 0) {
                base += random() % 10000;
            } else {
                base += random() % 3;
            }
            ASSERT_EQ(filter.accept(counter, limit), reference.accept(counter, limit))
                << "round " << round << " step " << step << " counter " << counter;
        }
    }
}

}  // namespace
}  // namespace tunlab::wireguard
