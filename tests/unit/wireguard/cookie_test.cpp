// mac2 and cookies: a responder under load demands a cookie, the initiator proves its address
// with it, and cookies and secrets age out after two minutes.

#include "protocols/wireguard/cookie.hpp"

#include <gtest/gtest.h>

#include "handshake_fixture.hpp"
#include "protocols/wireguard/constants.hpp"

namespace tunlab::wireguard {
namespace {

using Admission = CookieChecker::Admission;
using test_support::HandshakeTest;
using test_support::Side;

const std::array<uint8_t, 4> kAliceAddress{10, 9, 0, 5};

class Cookies : public HandshakeTest {
  protected:
    Cookies() : checker(bob.identity), source(CookieSource::from(kAliceAddress, 51820)) {}

    // Bob answers `initiation` with a cookie reply and alice takes it.
    HandshakeError hand_out_cookie(std::span<const uint8_t> initiation) {
        std::array<uint8_t, kCookieReplySize> reply{};
        EXPECT_TRUE(checker.create_reply(initiation, source, now_us, bob.random, reply));
        EXPECT_EQ(receiver_index(reply), 0x11111111u);  // the initiation's sender index
        return alice.state_for(bob).consume_cookie_reply(reply, now_us);
    }

    CookieChecker checker;
    CookieSource source;
};

TEST_F(Cookies, SourceIsAddressThenBigEndianPort) {
    const auto v4 = CookieSource::from(kAliceAddress, 0x1234);
    EXPECT_EQ(v4.size, 6u);
    EXPECT_EQ(v4.bytes[0], 10);
    EXPECT_EQ(v4.bytes[4], 0x12);
    EXPECT_EQ(v4.bytes[5], 0x34);
    std::array<uint8_t, 16> v6{};
    v6[15] = 1;
    EXPECT_EQ(CookieSource::from(v6, 1).size, 18u);
}

TEST_F(Cookies, WithoutLoadOnlyMac1Counts) {
    auto initiation = initiation_from(alice, bob, 1);
    EXPECT_EQ(checker.admit(initiation, source, false, now_us), Admission::Accept);
    initiation[120] ^= 1;
    EXPECT_EQ(checker.admit(initiation, source, false, now_us), Admission::BadMac1);
    EXPECT_EQ(checker.admit(initiation, source, true, now_us), Admission::BadMac1);
}

TEST_F(Cookies, UnderLoadTheInitiatorMustComeBackWithTheCookie) {
    const auto first = initiation_from(alice, bob, 1);
    ASSERT_EQ(checker.admit(first, source, true, now_us), Admission::SendCookie);
    ASSERT_EQ(hand_out_cookie(first), HandshakeError::Ok);
    EXPECT_TRUE(alice.state_for(bob).cookies().has_fresh_cookie(now_us));

    now_us += kSecond;
    const auto second = initiation_from(alice, bob, 2);
    EXPECT_FALSE(std::all_of(second.end() - 16, second.end(), [](uint8_t b) { return b == 0; }));
    EXPECT_EQ(checker.admit(second, source, true, now_us), Admission::Accept);
    EXPECT_EQ(consume_initiation(bob.identity, second, bob.lookup(), now_us).error,
              HandshakeError::Ok);

    // The cookie is bound to the address and port it was given to.
    const auto elsewhere = CookieSource::from(kAliceAddress, 51821);
    EXPECT_EQ(checker.admit(second, elsewhere, true, now_us), Admission::SendCookie);
    // mac2 covers the message: a changed mac2 fails.
    auto forged = second;
    forged[140] ^= 1;
    EXPECT_EQ(checker.admit(forged, source, true, now_us), Admission::SendCookie);
}

TEST_F(Cookies, ResponsesCarryMac2Too) {
    // Bob, now the initiator, gets a cookie from alice; then his response to alice carries it.
    const auto initiation = initiation_from(bob, alice, 1);
    CookieChecker alice_checker(alice.identity);
    const auto bob_source = CookieSource::from(std::array<uint8_t, 4>{10, 9, 0, 11}, 9090);
    std::array<uint8_t, kCookieReplySize> reply{};
    ASSERT_TRUE(alice_checker.create_reply(initiation, bob_source, now_us, alice.random, reply));
    ASSERT_EQ(bob.state_for(alice).consume_cookie_reply(reply, now_us), HandshakeError::Ok);

    const auto from_alice = initiation_from(alice, bob, 2);
    const auto consumed = consume_initiation(bob.identity, from_alice, bob.lookup(), now_us);
    ASSERT_EQ(consumed.error, HandshakeError::Ok);
    std::array<uint8_t, kResponseSize> response{};
    ASSERT_EQ(consumed.peer->create_response(5, now_us, bob.random, response), HandshakeError::Ok);
    EXPECT_EQ(alice_checker.admit(response, bob_source, true, now_us), Admission::Accept);
}

TEST_F(Cookies, ReplyMustAnswerOurLastMac1) {
    std::array<uint8_t, kCookieReplySize> reply{};
    const auto first = initiation_from(alice, bob, 1);
    ASSERT_TRUE(checker.create_reply(first, source, now_us, bob.random, reply));
    // Alice sent another initiation since: the reply's AD (the first mac1) no longer matches.
    initiation_from(alice, bob, 2);
    EXPECT_EQ(alice.state_for(bob).consume_cookie_reply(reply, now_us),
              HandshakeError::DecryptFailed);
    auto truncated = std::vector<uint8_t>(reply.begin(), reply.end() - 1);
    EXPECT_EQ(alice.state_for(bob).consume_cookie_reply(truncated, now_us),
              HandshakeError::BadMessage);
    // Someone who never sent anything to bob takes no cookie.
    Side erin(5);
    erin.know(bob);
    EXPECT_EQ(erin.state_for(bob).consume_cookie_reply(reply, now_us), HandshakeError::WrongState);
}

TEST_F(Cookies, CookieIsForgottenAfterTwoMinutes) {
    const auto first = initiation_from(alice, bob, 1);
    ASSERT_EQ(hand_out_cookie(first), HandshakeError::Ok);
    now_us += kCookieRefreshTime + 1;
    EXPECT_FALSE(alice.state_for(bob).cookies().has_fresh_cookie(now_us));
    const auto later = initiation_from(alice, bob, 200);
    EXPECT_TRUE(std::all_of(later.end() - 16, later.end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(Cookies, SecretIsRenewedEveryTwoMinutes) {
    const auto first = initiation_from(alice, bob, 1);
    ASSERT_EQ(hand_out_cookie(first), HandshakeError::Ok);
    now_us += kCookieRefreshTime / 2;
    const auto second = initiation_from(alice, bob, 2);
    EXPECT_TRUE(checker.check_mac2(second, source, now_us));
    ASSERT_EQ(hand_out_cookie(second), HandshakeError::Ok);  // the same secret, a younger cookie
    // Bob's secret is now older than two minutes, although alice's cookie is not: refused, and
    // the next cookie reply comes from a new secret.
    now_us += kCookieRefreshTime / 2 + 1;
    EXPECT_TRUE(alice.state_for(bob).cookies().has_fresh_cookie(now_us));
    const auto third = initiation_from(alice, bob, 3);
    EXPECT_FALSE(checker.check_mac2(third, source, now_us));
    ASSERT_EQ(hand_out_cookie(third), HandshakeError::Ok);
    const auto fourth = initiation_from(alice, bob, 4);
    EXPECT_TRUE(checker.check_mac2(fourth, source, now_us));
}

TEST_F(Cookies, NoSecretYetMeansNoValidMac2) {
    const auto initiation = initiation_from(alice, bob, 1);
    EXPECT_FALSE(checker.check_mac2(initiation, source, now_us));
    std::array<uint8_t, 10> too_short{};
    EXPECT_FALSE(checker.check_mac1(too_short));
    std::array<uint8_t, kCookieReplySize> reply{};
    EXPECT_FALSE(checker.create_reply(too_short, source, now_us, bob.random, reply));
}

}  // namespace
}  // namespace tunlab::wireguard
