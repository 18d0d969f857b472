#pragma once

// A 32-byte secret (private key, preshared key, chaining key, session key) that lives only in
// locked memory and is wiped when it goes away: never swapped out, never in a core dump, never
// left behind in freed heap. It has no way to be printed or formatted (gtest prints
// "SecretKey(redacted)").
//
// Slots come from a process-wide pool of mlock'ed pages (sodium_mlock: also excluded from core
// dumps), not one sodium_malloc() each: that would cost four pages and an mprotect per key, and
// a daemon with 10k peers holds tens of thousands of keys. If the memory-lock limit
// (RLIMIT_MEMLOCK) is reached, later pages are used unlocked rather than failing the handshake;
// secure_memory_fully_locked() tells.
//
// Allocation takes a mutex: create keys on setup and handshake paths, not per packet (reading a
// key's bytes is free).

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <span>

namespace tunlab::crypto {

inline constexpr size_t kKeySize = 32;

// Zeroes memory in a way the compiler may not remove (sodium_memzero).
void secure_wipe(std::span<uint8_t> bytes) noexcept;

// Whether every pool page so far could be locked into memory.
bool secure_memory_fully_locked() noexcept;

class SecretKey {
  public:
    // All zeros. Throws std::bad_alloc when no memory is left for the pool.
    SecretKey();
    explicit SecretKey(std::span<const uint8_t, kKeySize> bytes);
    SecretKey(SecretKey&& other) noexcept;
    SecretKey& operator=(SecretKey&& other) noexcept;
    // Copies are explicit (clone()) so that a secret is never duplicated by accident.
    SecretKey(const SecretKey&) = delete;
    SecretKey& operator=(const SecretKey&) = delete;
    ~SecretKey();

    SecretKey clone() const;
    void assign(std::span<const uint8_t, kKeySize> bytes) noexcept;
    void wipe() noexcept;
    bool is_zero() const noexcept;  // constant time

    // A moved-from key has no storage: only assignment, destruction and empty() are valid.
    bool empty() const noexcept { return slot_ == nullptr; }
    std::span<uint8_t, kKeySize> bytes() noexcept {
        return std::span<uint8_t, kKeySize>(slot_, kKeySize);
    }
    std::span<const uint8_t, kKeySize> bytes() const noexcept {
        return std::span<const uint8_t, kKeySize>(slot_, kKeySize);
    }
    uint8_t* data() noexcept { return slot_; }
    const uint8_t* data() const noexcept { return slot_; }

    friend void PrintTo(const SecretKey& key, std::ostream* out);

  private:
    uint8_t* slot_;
};

}  // namespace tunlab::crypto
