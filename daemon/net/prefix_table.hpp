#pragma once

#include <bitset>
#include <optional>
#include <unordered_map>
#include <vector>

#include "net/ip_address.hpp"

namespace tunlab {

// Longest-prefix match over IPv4 and IPv6 prefixes. One hash map per prefix length in use;
// a lookup probes the lengths in use from longest to shortest, so it costs at most 33 (IPv4)
// or 129 (IPv6) hash probes however many prefixes there are, and usually a handful.
template <typename Value>
class PrefixTable {
  public:
    // Returns false (and changes nothing) if the prefix is already present.
    bool insert(const Prefix& prefix, Value value) {
        auto& family = family_of(prefix.address.family);
        const bool inserted = family.by_length[prefix.length].emplace(prefix.address, value).second;
        if (inserted) {
            family.lengths_in_use.set(prefix.length);
            family.rebuild_order();
        }
        return inserted;
    }

    bool erase(const Prefix& prefix) {
        auto& family = family_of(prefix.address.family);
        auto& map = family.by_length[prefix.length];
        if (map.erase(prefix.address) == 0) {
            return false;
        }
        if (map.empty()) {
            family.lengths_in_use.reset(prefix.length);
            family.rebuild_order();
        }
        return true;
    }

    const Value* find_exact(const Prefix& prefix) const {
        const auto& map = family_of(prefix.address.family).by_length[prefix.length];
        const auto found = map.find(prefix.address);
        return found == map.end() ? nullptr : &found->second;
    }

    const Value* longest_match(const IpAddress& address) const {
        const auto& family = family_of(address.family);
        for (unsigned length : family.order) {
            const auto& map = family.by_length[length];
            const auto found = map.find(address.masked(length));
            if (found != map.end()) {
                return &found->second;
            }
        }
        return nullptr;
    }

    size_t size() const {
        size_t total = 0;
        for (const auto* family : {&v4_, &v6_}) {
            for (const auto& map : family->by_length) {
                total += map.size();
            }
        }
        return total;
    }

  private:
    struct FamilyTable {
        std::vector<std::unordered_map<IpAddress, Value, IpAddressHash>> by_length;
        std::bitset<129> lengths_in_use;
        std::vector<unsigned> order;  // lengths in use, longest first

        explicit FamilyTable(unsigned width) : by_length(width + 1) {}

        void rebuild_order() {
            order.clear();
            for (unsigned length = static_cast<unsigned>(by_length.size()); length-- > 0;) {
                if (lengths_in_use.test(length)) {
                    order.push_back(length);
                }
            }
        }
    };

    FamilyTable& family_of(Family family) { return family == Family::V4 ? v4_ : v6_; }
    const FamilyTable& family_of(Family family) const { return family == Family::V4 ? v4_ : v6_; }

    FamilyTable v4_{32};
    FamilyTable v6_{128};
};

}  // namespace tunlab
