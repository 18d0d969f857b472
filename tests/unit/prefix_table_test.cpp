#include "net/prefix_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parse_helpers.hpp"

namespace tunlab {
namespace {

using test_support::endpoint;
using test_support::ip;
using test_support::prefix;

// The value found for `address`, or -1 for none.
int match(const PrefixTable<int>& table, std::string_view address) {
    const int* found = table.longest_match(ip(address));
    return found == nullptr ? -1 : *found;
}

TEST(PrefixTable, EmptyTableFindsNothing) {
    PrefixTable<int> table;
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(match(table, "10.0.0.1"), -1);
    EXPECT_EQ(match(table, "fd00::1"), -1);
    EXPECT_EQ(table.find_exact(prefix("0.0.0.0/0")), nullptr);
}

TEST(PrefixTable, LongestMatchIpv4) {
    PrefixTable<int> table;
    EXPECT_TRUE(table.insert(prefix("10.0.0.0/8"), 8));
    EXPECT_TRUE(table.insert(prefix("10.1.0.0/16"), 16));
    EXPECT_TRUE(table.insert(prefix("10.1.2.0/24"), 24));
    EXPECT_TRUE(table.insert(prefix("10.1.2.3/32"), 32));
    EXPECT_TRUE(table.insert(prefix("192.168.60.0/23"), 23));
    EXPECT_EQ(table.size(), 5u);

    EXPECT_EQ(match(table, "10.1.2.3"), 32);
    EXPECT_EQ(match(table, "10.1.2.4"), 24);
    EXPECT_EQ(match(table, "10.1.3.3"), 16);
    EXPECT_EQ(match(table, "10.2.2.3"), 8);
    EXPECT_EQ(match(table, "10.255.255.255"), 8);
    EXPECT_EQ(match(table, "11.0.0.0"), -1);
    EXPECT_EQ(match(table, "9.255.255.255"), -1);
    EXPECT_EQ(match(table, "192.168.61.255"), 23);
    EXPECT_EQ(match(table, "192.168.62.0"), -1);
    EXPECT_EQ(match(table, "192.168.59.255"), -1);
}

TEST(PrefixTable, LongestMatchIpv6) {
    PrefixTable<int> table;
    EXPECT_TRUE(table.insert(prefix("fd00::/8"), 8));
    EXPECT_TRUE(table.insert(prefix("fd00:1::/32"), 32));
    EXPECT_TRUE(table.insert(prefix("fd00:1:2:3::/64"), 64));
    EXPECT_TRUE(table.insert(prefix("fd00:1:2:3::1/128"), 128));
    EXPECT_TRUE(table.insert(prefix("2001:db8::/33"), 33));

    EXPECT_EQ(match(table, "fd00:1:2:3::1"), 128);
    EXPECT_EQ(match(table, "fd00:1:2:3::2"), 64);
    EXPECT_EQ(match(table, "fd00:1:2:4::1"), 32);
    EXPECT_EQ(match(table, "fd00:2::1"), 8);
    EXPECT_EQ(match(table, "fdff:ffff::"), 8);
    EXPECT_EQ(match(table, "fe00::"), -1);
    EXPECT_EQ(match(table, "2001:db8:7fff::1"), 33);
    EXPECT_EQ(match(table, "2001:db8:8000::1"), -1);
}

TEST(PrefixTable, DefaultRouteCatchesEverythingOfItsFamily) {
    PrefixTable<int> table;
    EXPECT_TRUE(table.insert(prefix("0.0.0.0/0"), 0));
    EXPECT_TRUE(table.insert(prefix("192.168.60.0/24"), 24));
    EXPECT_EQ(match(table, "192.168.60.5"), 24);
    EXPECT_EQ(match(table, "8.8.8.8"), 0);
    EXPECT_EQ(match(table, "0.0.0.0"), 0);
    EXPECT_EQ(match(table, "255.255.255.255"), 0);
    EXPECT_EQ(match(table, "fd00::1"), -1);  // not IPv6

    EXPECT_TRUE(table.insert(prefix("::/0"), 600));
    EXPECT_EQ(match(table, "fd00::1"), 600);
    EXPECT_EQ(match(table, "::ffff:192.168.60.5"), 600);  // an IPv6 address, not 192.168.60.5
    EXPECT_EQ(match(table, "8.8.8.8"), 0);
}

TEST(PrefixTable, ExactLookups) {
    PrefixTable<int> table;
    EXPECT_TRUE(table.insert(prefix("10.1.0.0/16"), 16));
    EXPECT_TRUE(table.insert(prefix("10.1.0.0/24"), 24));
    ASSERT_NE(table.find_exact(prefix("10.1.0.0/16")), nullptr);
    EXPECT_EQ(*table.find_exact(prefix("10.1.0.0/16")), 16);
    ASSERT_NE(table.find_exact(prefix("10.1.0.0/24")), nullptr);
    EXPECT_EQ(*table.find_exact(prefix("10.1.0.0/24")), 24);
    // Covered but not present.
    EXPECT_EQ(table.find_exact(prefix("10.1.0.0/20")), nullptr);
    EXPECT_EQ(table.find_exact(prefix("10.1.0.0/32")), nullptr);
    EXPECT_EQ(table.find_exact(prefix("10.0.0.0/8")), nullptr);
    EXPECT_EQ(table.find_exact(prefix("10.2.0.0/16")), nullptr);
    // Host bits were cleared on parse, so this is the same /16.
    ASSERT_NE(table.find_exact(prefix("10.1.99.99/16")), nullptr);
    EXPECT_EQ(*table.find_exact(prefix("10.1.99.99/16")), 16);
}

TEST(PrefixTable, DuplicatesAreRejectedAndKeepTheFirstValue) {
    PrefixTable<int> table;
    EXPECT_TRUE(table.insert(prefix("192.168.60.0/24"), 1));
    EXPECT_FALSE(table.insert(prefix("192.168.60.0/24"), 2));
    EXPECT_FALSE(table.insert(prefix("192.168.60.77/24"), 3));  // same block
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(match(table, "192.168.60.5"), 1);
    // Same address, other length: a different prefix.
    EXPECT_TRUE(table.insert(prefix("192.168.60.0/25"), 4));
    EXPECT_EQ(table.size(), 2u);
    EXPECT_TRUE(table.insert(prefix("fd00::/64"), 5));
    EXPECT_FALSE(table.insert(prefix("fd00::/64"), 6));
    EXPECT_EQ(table.size(), 3u);
}

TEST(PrefixTable, EraseKeepsOtherLengthsWorking) {
    PrefixTable<int> table;
    ASSERT_TRUE(table.insert(prefix("10.0.0.0/8"), 8));
    ASSERT_TRUE(table.insert(prefix("10.1.0.0/16"), 16));
    ASSERT_TRUE(table.insert(prefix("10.2.0.0/16"), 162));
    ASSERT_TRUE(table.insert(prefix("10.1.2.0/24"), 24));

    EXPECT_TRUE(table.erase(prefix("10.1.0.0/16")));
    EXPECT_EQ(table.size(), 3u);
    EXPECT_EQ(match(table, "10.1.2.3"), 24);
    EXPECT_EQ(match(table, "10.1.3.3"), 8);    // the /16 is gone...
    EXPECT_EQ(match(table, "10.2.3.3"), 162);  // ...but not the other /16

    EXPECT_FALSE(table.erase(prefix("10.1.0.0/16")));  // already gone
    EXPECT_FALSE(table.erase(prefix("10.3.0.0/16")));  // never there
    EXPECT_FALSE(table.erase(prefix("10.0.0.0/9")));   // length not in use
    EXPECT_EQ(table.size(), 3u);

    EXPECT_TRUE(table.erase(prefix("10.2.0.0/16")));  // last /16: the length leaves the table
    EXPECT_EQ(match(table, "10.2.3.3"), 8);
    EXPECT_EQ(match(table, "10.1.2.3"), 24);

    EXPECT_TRUE(table.erase(prefix("10.1.2.0/24")));
    EXPECT_EQ(match(table, "10.1.2.3"), 8);
    EXPECT_TRUE(table.erase(prefix("10.0.0.0/8")));
    EXPECT_EQ(match(table, "10.1.2.3"), -1);
    EXPECT_EQ(table.size(), 0u);

    // Usable again after being emptied.
    EXPECT_TRUE(table.insert(prefix("10.1.0.0/16"), 7));
    EXPECT_EQ(match(table, "10.1.2.3"), 7);
}

TEST(PrefixTable, FamiliesDoNotMix) {
    PrefixTable<int> table;
    // The same leading bytes and the same length in both families.
    ASSERT_TRUE(table.insert(prefix("10.0.0.0/8"), 4));
    ASSERT_TRUE(table.insert(prefix("a00::/8"), 6));
    EXPECT_EQ(match(table, "10.1.2.3"), 4);
    EXPECT_EQ(match(table, "a01::1"), 6);
    EXPECT_EQ(match(table, "::ffff:10.1.2.3"), -1);

    // All-zero addresses of each family are different keys.
    ASSERT_TRUE(table.insert(prefix("0.0.0.0/0"), 40));
    ASSERT_TRUE(table.insert(prefix("::/0"), 60));
    EXPECT_EQ(table.size(), 4u);
    EXPECT_EQ(*table.find_exact(prefix("0.0.0.0/0")), 40);
    EXPECT_EQ(*table.find_exact(prefix("::/0")), 60);

    EXPECT_TRUE(table.erase(prefix("::/0")));
    EXPECT_EQ(match(table, "fe80::1"), -1);
    EXPECT_EQ(match(table, "1.1.1.1"), 40);
    EXPECT_TRUE(table.erase(prefix("a00::/8")));
    EXPECT_EQ(match(table, "10.1.2.3"), 4);
}

TEST(PrefixTable, ValuesCanBeReadThroughThePointer) {
    PrefixTable<std::string> table;
    ASSERT_TRUE(table.insert(prefix("192.168.60.0/24"), "lan"));
    const std::string* found = table.longest_match(ip("192.168.60.5"));
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(*found, "lan");
    EXPECT_EQ(found, table.find_exact(prefix("192.168.60.0/24")));
}

// Random prefixes that nest and overlap, checked against a linear scan for the longest
// containing prefix.
class RandomPrefixes {
  public:
    RandomPrefixes(uint64_t seed, Family family)
        : random_(seed), family_(family), width_(family == Family::V4 ? 32u : 128u) {}

    // Fully random, or (`cluster`) in one of three /8s that the prefixes crowd into.
    IpAddress address(bool cluster) {
        IpAddress result;
        result.family = family_;
        for (unsigned i = 0; i < width_ / 8; ++i) {
            result.bytes[i] = static_cast<uint8_t>(random_());
        }
        if (cluster) {
            result.bytes[0] = static_cast<uint8_t>(0x0a + random_() % 3);
        }
        return result;
    }

    // An address inside `prefix`: its bits, then random ones.
    IpAddress inside(const Prefix& prefix) {
        IpAddress result = address(false);
        for (unsigned bit = 0; bit < prefix.length; ++bit) {
            const auto mask = static_cast<uint8_t>(0x80u >> (bit % 8));
            result.bytes[bit / 8] = static_cast<uint8_t>((result.bytes[bit / 8] & ~mask) |
                                                         (prefix.address.bytes[bit / 8] & mask));
        }
        return result;
    }

    // A fresh prefix (/16 or longer) in a cluster, or one 1 to 4 bits longer inside `parent`.
    Prefix prefix(const Prefix* parent) {
        if (parent != nullptr && parent->length < width_) {
            const unsigned room = std::min(4u, width_ - parent->length);
            const auto length = static_cast<uint8_t>(parent->length + 1 + random_() % room);
            return Prefix{inside(*parent).masked(length), length};
        }
        // IPv6: /16 to /72, where the interesting nesting is.
        const auto length = static_cast<uint8_t>(16 + random_() % (std::min(width_, 72u) - 15));
        return Prefix{address(true).masked(length), length};
    }

    uint64_t next() { return random_(); }

  private:
    std::mt19937_64 random_;
    Family family_;
    unsigned width_;
};

TEST(PrefixTable, MatchesALinearScan) {
    for (Family family : {Family::V4, Family::V6}) {
        SCOPED_TRACE(family == Family::V4 ? "IPv4" : "IPv6");
        RandomPrefixes random(20240601, family);
        PrefixTable<size_t> table;
        std::vector<Prefix> prefixes;
        for (size_t i = 0; i < 500; ++i) {
            const Prefix* parent = prefixes.empty() || random.next() % 3 == 0
                                       ? nullptr
                                       : &prefixes[random.next() % prefixes.size()];
            const Prefix candidate = random.prefix(parent);
            bool present = false;
            for (const Prefix& existing : prefixes) {
                present = present || existing == candidate;
            }
            ASSERT_EQ(table.insert(candidate, prefixes.size()), !present) << candidate.to_string();
            if (!present) {
                prefixes.push_back(candidate);
            }
        }
        ASSERT_EQ(table.size(), prefixes.size());

        // Forget every third one and check with the rest.
        std::vector<bool> erased(prefixes.size(), false);
        for (size_t i = 0; i < prefixes.size(); i += 3) {
            ASSERT_TRUE(table.erase(prefixes[i]));
            erased[i] = true;
        }
        ASSERT_EQ(table.size(), prefixes.size() - (prefixes.size() + 2) / 3);

        size_t matched = 0;
        size_t deeper = 0;  // the longest match is longer than the prefix the probe came from
        for (size_t probe = 0; probe < 4500; ++probe) {
            const Prefix* from = nullptr;
            IpAddress address;
            switch (probe % 3) {
                case 0:
                    from = &prefixes[random.next() % prefixes.size()];
                    address = random.inside(*from);
                    break;
                case 1:
                    address = random.address(true);
                    break;
                default:
                    address = random.address(false);
                    break;
            }
            const Prefix* best = nullptr;
            size_t best_index = 0;
            for (size_t i = 0; i < prefixes.size(); ++i) {
                if (!erased[i] && prefixes[i].contains(address) &&
                    (best == nullptr || prefixes[i].length > best->length)) {
                    best = &prefixes[i];
                    best_index = i;
                }
            }
            const size_t* found = table.longest_match(address);
            if (best == nullptr) {
                EXPECT_EQ(found, nullptr)
                    << address.to_string() << " matched " << prefixes[*found].to_string();
                continue;
            }
            ++matched;
            if (from != nullptr && best->length > from->length) {
                ++deeper;
            }
            ASSERT_NE(found, nullptr) << address.to_string();
            EXPECT_EQ(*found, best_index)
                << address.to_string() << " expected " << best->to_string() << " got "
                << prefixes[*found].to_string();
        }
        // The comparison means something only if each case happens often.
        EXPECT_GT(matched, 1000u);
        EXPECT_GT(4500u - matched, 1000u);
        EXPECT_GT(deeper, 100u);

        for (size_t i = 0; i < prefixes.size(); ++i) {
            const size_t* exact = table.find_exact(prefixes[i]);
            if (erased[i]) {
                EXPECT_EQ(exact, nullptr) << prefixes[i].to_string();
            } else {
                ASSERT_NE(exact, nullptr) << prefixes[i].to_string();
                EXPECT_EQ(*exact, i);
            }
        }
    }
}

}  // namespace
}  // namespace tunlab
