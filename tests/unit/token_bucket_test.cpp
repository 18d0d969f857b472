#include "util/token_bucket.hpp"

#include <gtest/gtest.h>

namespace tunlab {
namespace {

size_t taken(TokenBucket& bucket, uint64_t now_us, size_t tries) {
    size_t count = 0;
    for (size_t i = 0; i < tries; ++i) {
        count += bucket.take(now_us) ? 1 : 0;
    }
    return count;
}

TEST(TokenBucket, ABurstThenTheRate) {
    TokenBucket bucket(1000, 100);
    EXPECT_EQ(taken(bucket, 5'000'000, 500), 100u);  // the burst
    EXPECT_EQ(taken(bucket, 5'010'000, 500), 10u);   // 10 ms at 1000/s
    EXPECT_EQ(taken(bucket, 5'010'500, 500), 0u);    // half a token
    EXPECT_EQ(taken(bucket, 5'011'000, 500), 1u);
    // A long pause refills to the burst, not beyond, and does not overflow.
    EXPECT_EQ(taken(bucket, UINT64_MAX / 2, 500), 100u);
}

TEST(TokenBucket, TimeGoingBackwardsGivesNothing) {
    TokenBucket bucket(1000, 1);
    EXPECT_TRUE(bucket.take(2'000'000));
    EXPECT_FALSE(bucket.take(1'000'000));
    EXPECT_FALSE(bucket.take(2'000'500));
    EXPECT_TRUE(bucket.take(2'001'000));
}

}  // namespace
}  // namespace tunlab
