#include "protocols/wireguard/keypairs.hpp"

#include <utility>

namespace tunlab::wireguard {

RetiredIndices Keypairs::install(std::unique_ptr<Keypair> keypair) {
    RetiredIndices retired;
    if (!keypair) {
        return retired;
    }
    if (keypair->is_initiator) {
        // An unconfirmed `next` was newer than `current`: it becomes `previous` (the peer may
        // already send with it) and `current` goes.
        if (next_) {
            retired.add(previous_.get());
            retired.add(current_.get());
            previous_ = std::move(next_);
            current_.reset();
        } else {
            retired.add(previous_.get());
            previous_ = std::move(current_);
        }
        current_ = std::move(keypair);
    } else {
        // `current` keeps sending until the initiator uses the new keypair.
        retired.add(next_.get());
        retired.add(previous_.get());
        next_ = std::move(keypair);
        previous_.reset();
    }
    return retired;
}

bool Keypairs::received_with(const Keypair* keypair, RetiredIndices& retired) {
    if (keypair == nullptr || keypair != next_.get()) {
        return false;
    }
    retired.add(previous_.get());
    previous_ = std::move(current_);
    current_ = std::move(next_);
    return true;
}

RetiredIndices Keypairs::clear() {
    RetiredIndices retired;
    retired.add(previous_.get());
    retired.add(current_.get());
    retired.add(next_.get());
    previous_.reset();
    current_.reset();
    next_.reset();
    return retired;
}

Keypair* Keypairs::find(uint32_t local_index) const {
    for (Keypair* keypair : {current_.get(), previous_.get(), next_.get()}) {
        if (keypair != nullptr && keypair->local_index == local_index) {
            return keypair;
        }
    }
    return nullptr;
}

}  // namespace tunlab::wireguard
