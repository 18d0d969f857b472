#include "crypto/secret_key.hpp"

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <ostream>

namespace tunlab::crypto {
namespace {

// Fixed-size slots carved from locked chunks; a free slot holds the pointer to the next free
// one (the rest of it stays zero). Chunks are never returned: a peer's keys come and go with
// every handshake, so the high-water mark is what the process needs anyway.
class LockedSlotPool {
  public:
    uint8_t* allocate() {
        std::lock_guard lock(mutex_);
        if (free_ == nullptr) {
            add_chunk();
        }
        uint8_t* slot = free_;
        std::memcpy(&free_, slot, sizeof free_);
        sodium_memzero(slot, kKeySize);
        return slot;
    }

    void release(uint8_t* slot) noexcept {
        sodium_memzero(slot, kKeySize);
        std::lock_guard lock(mutex_);
        std::memcpy(slot, &free_, sizeof free_);
        free_ = slot;
    }

    bool fully_locked() const noexcept { return fully_locked_.load(std::memory_order_relaxed); }

  private:
    void add_chunk() {
        const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        const size_t size = page * kPagesPerChunk;
        void* chunk =
            mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunk == MAP_FAILED) {
            throw std::bad_alloc();
        }
        if (sodium_mlock(chunk, size) != 0) {
            fully_locked_.store(false, std::memory_order_relaxed);
        }
        auto* bytes = static_cast<uint8_t*>(chunk);
        for (size_t offset = 0; offset + kKeySize <= size; offset += kKeySize) {
            uint8_t* slot = bytes + offset;
            std::memcpy(slot, &free_, sizeof free_);
            free_ = slot;
        }
    }

    static constexpr size_t kPagesPerChunk = 4;  // 512 keys per chunk with 4 KiB pages

    std::mutex mutex_;
    uint8_t* free_ = nullptr;
    std::atomic<bool> fully_locked_{true};
};

LockedSlotPool& pool() {
    // Never destroyed: keys in static objects may outlive any destruction order.
    static auto* const instance = new LockedSlotPool;
    return *instance;
}

}  // namespace

void secure_wipe(std::span<uint8_t> bytes) noexcept {
    if (!bytes.empty()) {
        sodium_memzero(bytes.data(), bytes.size());
    }
}

bool secure_memory_fully_locked() noexcept {
    return pool().fully_locked();
}

SecretKey::SecretKey() : slot_(pool().allocate()) {}

SecretKey::SecretKey(std::span<const uint8_t, kKeySize> bytes) : SecretKey() {
    assign(bytes);
}

SecretKey::SecretKey(SecretKey&& other) noexcept : slot_(other.slot_) {
    other.slot_ = nullptr;
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
    if (this != &other) {
        if (slot_ != nullptr) {
            pool().release(slot_);
        }
        slot_ = other.slot_;
        other.slot_ = nullptr;
    }
    return *this;
}

SecretKey::~SecretKey() {
    if (slot_ != nullptr) {
        pool().release(slot_);
    }
}

SecretKey SecretKey::clone() const {
    return SecretKey(bytes());
}

void SecretKey::assign(std::span<const uint8_t, kKeySize> bytes) noexcept {
    std::memmove(slot_, bytes.data(), kKeySize);
}

void SecretKey::wipe() noexcept {
    sodium_memzero(slot_, kKeySize);
}

bool SecretKey::is_zero() const noexcept {
    return sodium_is_zero(slot_, kKeySize) == 1;
}

void PrintTo(const SecretKey&, std::ostream* out) {
    *out << "SecretKey(redacted)";
}

}  // namespace tunlab::crypto
