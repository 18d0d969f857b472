// The timer rules, one test each, on an injected clock (plain microsecond numbers) and an
// injected random source (jitter at its minimum or maximum).

#include "protocols/wireguard/timers.hpp"

#include <gtest/gtest.h>

#include "protocols/wireguard/constants.hpp"
#include "test_support.hpp"

namespace tunlab::wireguard {
namespace {

using test_support::ConstantRandom;

constexpr uint64_t kStart = 1'000 * kSecond;
constexpr uint64_t kMaxJitter = kRekeyTimeoutJitterMax - 1;  // what 0xff random bytes give

class Timers : public ::testing::Test {
  protected:
    ConstantRandom no_jitter{0x00};
    ConstantRandom full_jitter{0xff};
    PeerTimers timers{no_jitter};
};

TEST_F(Timers, NothingPendingAtFirst) {
    EXPECT_FALSE(timers.next_deadline().has_value());
    EXPECT_FALSE(timers.tick(kStart).any());
}

TEST_F(Timers, RetransmitsAnInitiationAfterRekeyTimeoutPlusJitter) {
    PeerTimers jittery(full_jitter);
    jittery.initiation_sent(kStart);
    EXPECT_EQ(jittery.next_deadline(), kStart + kRekeyTimeout + kMaxJitter);
    EXPECT_FALSE(jittery.tick(kStart + kRekeyTimeout + kMaxJitter - 1).any());
    const auto actions = jittery.tick(kStart + kRekeyTimeout + kMaxJitter);
    EXPECT_TRUE(actions.send_initiation);
    EXPECT_EQ(jittery.handshake_attempts(), 1u);

    timers.initiation_sent(kStart);
    EXPECT_EQ(timers.next_deadline(), kStart + kRekeyTimeout);
}

TEST_F(Timers, GivesUpAfterTwentyInitiationsAndZeroesKeysLater) {
    uint64_t now = kStart;
    int initiations = 1;
    timers.initiation_sent(now);
    for (;;) {
        now = *timers.next_deadline();
        const auto actions = timers.tick(now);
        if (actions.gave_up) {
            EXPECT_FALSE(actions.send_initiation);
            break;
        }
        ASSERT_TRUE(actions.send_initiation) << "at " << (now - kStart) / kSecond << " s";
        ++initiations;
        timers.initiation_sent(now);
        ASSERT_LT(initiations, 100);
    }
    EXPECT_EQ(initiations, 20);  // the first, then MAX_TIMER_HANDSHAKES + 1 retries
    EXPECT_EQ(now - kStart, 20 * kRekeyTimeout);
    EXPECT_GE(now - kStart, kRekeyAttemptTime);
    // What is left of the attempt is wiped 3 × REJECT_AFTER_TIME later.
    EXPECT_EQ(timers.next_deadline(), now + 3 * kRejectAfterTime);
    EXPECT_TRUE(timers.tick(now + 3 * kRejectAfterTime).zero_keys);
}

TEST_F(Timers, CompletedHandshakeStopsRetransmitting) {
    timers.initiation_sent(kStart);
    timers.tick(kStart + kRekeyTimeout);
    timers.initiation_sent(kStart + kRekeyTimeout);
    EXPECT_EQ(timers.handshake_attempts(), 1u);
    timers.response_received(kStart + kRekeyTimeout + 1000);
    EXPECT_EQ(timers.handshake_attempts(), 0u);
    EXPECT_EQ(timers.last_handshake_us(), kStart + kRekeyTimeout + 1000);
    // Only the key zeroing is pending now.
    EXPECT_EQ(timers.next_deadline(), kStart + kRekeyTimeout + 1000 + 3 * kRejectAfterTime);
}

TEST_F(Timers, FirstMessageUnderTheNextKeypairCompletesTheResponderHandshake) {
    timers.response_sent(kStart);
    EXPECT_FALSE(timers.last_handshake_us().has_value());
    timers.transport_received(kStart + 10, true, true);
    EXPECT_EQ(timers.last_handshake_us(), kStart + 10);
}

TEST_F(Timers, PassiveKeepaliveTenSecondsAfterDataReceivedWithNothingSent) {
    timers.transport_received(kStart, false, false);
    EXPECT_EQ(timers.next_deadline(), kStart + kKeepaliveTimeout);
    EXPECT_TRUE(timers.tick(kStart + kKeepaliveTimeout).send_keepalive);
    EXPECT_FALSE(timers.next_deadline().has_value());

    // Anything sent in between makes the keepalive unnecessary.
    timers.transport_received(kStart + 20 * kSecond, false, false);
    timers.transport_sent(kStart + 21 * kSecond, false);
    EXPECT_FALSE(timers.tick(kStart + 30 * kSecond).send_keepalive);

    // A received keepalive asks for nothing.
    PeerTimers quiet(no_jitter);
    quiet.transport_received(kStart, true, false);
    EXPECT_FALSE(quiet.next_deadline().has_value());
}

TEST_F(Timers, MoreDataDuringThePendingKeepaliveAsksForAnotherOne) {
    timers.transport_received(kStart, false, false);
    timers.transport_received(kStart + kSecond, false, false);
    EXPECT_TRUE(timers.tick(kStart + kKeepaliveTimeout).send_keepalive);
    EXPECT_EQ(timers.next_deadline(), kStart + 2 * kKeepaliveTimeout);
    EXPECT_TRUE(timers.tick(kStart + 2 * kKeepaliveTimeout).send_keepalive);
    EXPECT_FALSE(timers.next_deadline().has_value());
}

TEST_F(Timers, NewHandshakeWhenDataSentGetsNoAnswerForFifteenSeconds) {
    timers.transport_sent(kStart, false);
    const uint64_t deadline = kStart + kKeepaliveTimeout + kRekeyTimeout;
    EXPECT_EQ(timers.next_deadline(), deadline);
    // More data sent does not push it back.
    timers.transport_sent(kStart + 5 * kSecond, false);
    EXPECT_EQ(timers.next_deadline(), deadline);
    EXPECT_TRUE(timers.tick(deadline).send_initiation);

    // Anything authenticated from the peer cancels it.
    PeerTimers answered(no_jitter);
    answered.transport_sent(kStart, false);
    answered.transport_received(kStart + kSecond, true, false);
    EXPECT_FALSE(answered.tick(deadline).send_initiation);
    // Keepalives we send do not arm it.
    PeerTimers idle(no_jitter);
    idle.transport_sent(kStart, true);
    EXPECT_FALSE(idle.next_deadline().has_value());
}

TEST_F(Timers, KeysAreZeroedThreeRejectAfterTimesAfterTheLastSession) {
    timers.response_received(kStart);
    EXPECT_FALSE(timers.tick(kStart + 3 * kRejectAfterTime - 1).zero_keys);
    // A newer session pushes it back.
    timers.response_sent(kStart + 100 * kSecond);
    EXPECT_FALSE(timers.tick(kStart + 3 * kRejectAfterTime).zero_keys);
    EXPECT_TRUE(timers.tick(kStart + 100 * kSecond + 3 * kRejectAfterTime).zero_keys);
}

TEST_F(Timers, PersistentKeepaliveAfterEveryIntervalOfSilence) {
    timers.set_persistent_keepalive(25, kStart);
    EXPECT_TRUE(timers.tick(kStart).send_keepalive);  // at once when turned on
    timers.transport_sent(kStart, true);
    EXPECT_EQ(timers.next_deadline(), kStart + 25 * kSecond);
    // Traffic either way moves it.
    timers.transport_received(kStart + 10 * kSecond, true, false);
    EXPECT_FALSE(timers.tick(kStart + 25 * kSecond).send_keepalive);
    EXPECT_TRUE(timers.tick(kStart + 35 * kSecond).send_keepalive);
    timers.set_persistent_keepalive(0, kStart + 36 * kSecond);
    timers.transport_sent(kStart + 36 * kSecond, true);
    EXPECT_FALSE(timers.next_deadline().has_value());
}

TEST_F(Timers, AtMostOneInitiationPerRekeyTimeout) {
    EXPECT_TRUE(timers.want_initiation(kStart));
    EXPECT_FALSE(timers.want_initiation(kStart + kRekeyTimeout - 1));
    EXPECT_TRUE(timers.want_initiation(kStart + kRekeyTimeout));
    // A response counts as a handshake message sent.
    timers.response_sent(kStart + 20 * kSecond);
    EXPECT_FALSE(timers.want_initiation(kStart + 21 * kSecond));
}

TEST_F(Timers, RekeyAfterSendingOnAnOldOrWornKeypairWeInitiated) {
    Keypair keypair;
    keypair.created_us = kStart;
    keypair.is_initiator = true;
    EXPECT_FALSE(PeerTimers::needs_rekey_after_send(&keypair, kStart + kRekeyAfterTime));
    EXPECT_TRUE(PeerTimers::needs_rekey_after_send(&keypair, kStart + kRekeyAfterTime + 1));
    keypair.is_initiator = false;  // the responder leaves time-based rekeying to the initiator
    EXPECT_FALSE(PeerTimers::needs_rekey_after_send(&keypair, kStart + kRekeyAfterTime + 1));
    keypair.send_counter = kRekeyAfterMessages + 1;
    EXPECT_TRUE(PeerTimers::needs_rekey_after_send(&keypair, kStart));
    EXPECT_FALSE(PeerTimers::needs_rekey_after_send(nullptr, kStart));
}

TEST_F(Timers, RekeyOnceWhenReceivingOnAKeypairAboutToExpire) {
    Keypair keypair;
    keypair.created_us = kStart;
    keypair.is_initiator = true;
    const uint64_t last_minute = kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout;  // 165 s
    EXPECT_FALSE(timers.needs_rekey_after_receive(&keypair, kStart + last_minute));
    EXPECT_TRUE(timers.needs_rekey_after_receive(&keypair, kStart + last_minute + 1));
    EXPECT_FALSE(timers.needs_rekey_after_receive(&keypair, kStart + last_minute + 2));
    timers.response_received(kStart + last_minute + 3);  // a new session resets it
    EXPECT_TRUE(timers.needs_rekey_after_receive(&keypair, kStart + last_minute + 4));
    keypair.is_initiator = false;
    PeerTimers responder(no_jitter);
    EXPECT_FALSE(responder.needs_rekey_after_receive(&keypair, kStart + last_minute + 1));
}

TEST_F(Timers, KeypairUsableForSendingUntilRejectAfterTimeOrMessages) {
    Keypair keypair;
    keypair.created_us = kStart;
    EXPECT_TRUE(PeerTimers::usable_for_sending(&keypair, kStart + kRejectAfterTime - 1));
    EXPECT_FALSE(PeerTimers::usable_for_sending(&keypair, kStart + kRejectAfterTime));
    keypair.send_counter = kRejectAfterMessages;
    EXPECT_FALSE(PeerTimers::usable_for_sending(&keypair, kStart));
    EXPECT_FALSE(PeerTimers::usable_for_sending(nullptr, kStart));
}

TEST_F(Timers, StopCancelsEverything) {
    timers.set_persistent_keepalive(25, kStart);
    timers.initiation_sent(kStart);
    timers.transport_received(kStart, false, false);
    timers.response_received(kStart);
    timers.transport_sent(kStart, false);
    ASSERT_TRUE(timers.next_deadline().has_value());
    timers.stop();
    EXPECT_FALSE(timers.next_deadline().has_value());
    EXPECT_FALSE(timers.tick(kStart + 1000 * kSecond).any());
}

}  // namespace
}  // namespace tunlab::wireguard
