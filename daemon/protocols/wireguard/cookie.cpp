#include "protocols/wireguard/cookie.hpp"

#include <algorithm>

#include "crypto/aead.hpp"
#include "crypto/constant_time.hpp"
#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {
namespace {

// The parts of a handshake message that its MACs cover.
std::span<const uint8_t> before_mac1(std::span<const uint8_t> message) {
    return message.first(message.size() - kMacsSize);
}

std::span<const uint8_t> before_mac2(std::span<const uint8_t> message) {
    return message.first(message.size() - kMacSize);
}

std::span<const uint8_t> mac1_of(std::span<const uint8_t> message) {
    return message.subspan(message.size() - kMacsSize, kMacSize);
}

std::span<const uint8_t> mac2_of(std::span<const uint8_t> message) {
    return message.last(kMacSize);
}

bool has_macs(std::span<const uint8_t> message) {
    return message.size() >= kMacsSize + 4;
}

}  // namespace

CookieSource CookieSource::from(std::span<const uint8_t> address, uint16_t port) {
    CookieSource source;
    const size_t length = std::min<size_t>(address.size(), 16);
    std::copy_n(address.begin(), length, source.bytes.begin());
    source.bytes[length] = static_cast<uint8_t>(port >> 8);
    source.bytes[length + 1] = static_cast<uint8_t>(port);
    source.size = length + 2;
    return source;
}

bool mac1_valid(std::span<const uint8_t> message, const crypto::Hash& mac1_key) {
    if (!has_macs(message)) {
        return false;
    }
    const crypto::Mac expected = crypto::keyed_blake2s_128(mac1_key, {before_mac1(message)});
    return crypto::equal_constant_time(expected, mac1_of(message));
}

CookieChecker::CookieChecker(const LocalIdentity& identity)
    : mac1_key_(identity.mac1_key()), cookie_key_(identity.cookie_key()) {}

bool CookieChecker::check_mac1(std::span<const uint8_t> message) const {
    return mac1_valid(message, mac1_key_);
}

bool CookieChecker::secret_current(uint64_t now_us) const {
    return has_secret_ && now_us - secret_created_us_ <= kCookieRefreshTime;
}

MacField CookieChecker::cookie_for(const CookieSource& source) const {
    return crypto::keyed_blake2s_128(secret_.bytes(), {source.view()});
}

bool CookieChecker::check_mac2(std::span<const uint8_t> message, const CookieSource& source,
                               uint64_t now_us) const {
    if (!has_macs(message) || !secret_current(now_us)) {
        return false;
    }
    MacField cookie = cookie_for(source);
    const crypto::Mac expected = crypto::keyed_blake2s_128(cookie, {before_mac2(message)});
    crypto::secure_wipe(cookie);
    return crypto::equal_constant_time(expected, mac2_of(message));
}

CookieChecker::Admission CookieChecker::admit(std::span<const uint8_t> message,
                                              const CookieSource& source, bool under_load,
                                              uint64_t now_us) const {
    if (!check_mac1(message)) {
        return Admission::BadMac1;
    }
    if (under_load && !check_mac2(message, source, now_us)) {
        return Admission::SendCookie;
    }
    return Admission::Accept;
}

bool CookieChecker::create_reply(std::span<const uint8_t> message, const CookieSource& source,
                                 uint64_t now_us, crypto::RandomSource& random,
                                 std::span<uint8_t, kCookieReplySize> out) {
    if (!has_macs(message)) {
        return false;
    }
    if (!secret_current(now_us)) {
        random.fill(secret_.bytes());
        secret_created_us_ = now_us;
        has_secret_ = true;
    }
    CookieReplyMessage reply;
    // The reply goes to the index the message's sender chose for itself.
    const uint8_t* sender = message.data() + 4;
    reply.receiver = uint32_t{sender[0]} | (uint32_t{sender[1]} << 8) |
                     (uint32_t{sender[2]} << 16) | (uint32_t{sender[3]} << 24);
    random.fill(reply.nonce);
    MacField cookie = cookie_for(source);
    crypto::xseal(cookie_key_, reply.nonce, cookie, reply.encrypted_cookie, mac1_of(message));
    crypto::secure_wipe(cookie);
    serialize(reply, out);
    return true;
}

CookieGenerator::CookieGenerator(const crypto::PublicKey& remote_static)
    : mac1_key_(mac1_key_for(remote_static)), cookie_key_(cookie_key_for(remote_static)) {}

CookieGenerator::~CookieGenerator() {
    crypto::secure_wipe(cookie_);
}

bool CookieGenerator::has_fresh_cookie(uint64_t now_us) const {
    return has_cookie_ && now_us - cookie_received_us_ <= kCookieRefreshTime;
}

void CookieGenerator::add_macs(std::span<uint8_t> message, uint64_t now_us) {
    const size_t mac1_offset = message.size() - kMacsSize;
    const size_t mac2_offset = message.size() - kMacSize;
    const auto mac1 = message.subspan(mac1_offset).first<kMacSize>();
    const auto mac2 = message.subspan(mac2_offset).first<kMacSize>();
    crypto::keyed_blake2s_128(mac1, mac1_key_, {message.first(mac1_offset)});
    std::copy(mac1.begin(), mac1.end(), last_mac1_.begin());
    has_last_mac1_ = true;
    if (has_fresh_cookie(now_us)) {
        crypto::keyed_blake2s_128(mac2, cookie_, {message.first(mac2_offset)});
    } else {
        std::fill(mac2.begin(), mac2.end(), 0);
    }
}

HandshakeError CookieGenerator::consume_reply(std::span<const uint8_t> message, uint64_t now_us) {
    const auto reply = parse_cookie_reply(message);
    if (!reply) {
        return HandshakeError::BadMessage;
    }
    if (!has_last_mac1_) {
        return HandshakeError::WrongState;
    }
    MacField cookie;
    if (!crypto::xopen(cookie_key_, reply->nonce, reply->encrypted_cookie, cookie, last_mac1_)) {
        return HandshakeError::DecryptFailed;
    }
    cookie_ = cookie;
    crypto::secure_wipe(cookie);
    cookie_received_us_ = now_us;
    has_cookie_ = true;
    return HandshakeError::Ok;
}

}  // namespace tunlab::wireguard
