// The received-update check (node/engine/ingest_check.h) as a pure function:
// every rule of PROTOCOL.md "Receiving updates", one case each.
#include <gtest/gtest.h>

#include "node/engine/ingest_check.h"

namespace replog::engine {
namespace {

constexpr uint64_t kCeiling = 1'000'000;
const std::string kBody = "body-bytes";

HeldOrigin held_up_to(uint64_t seq, uint64_t last_hlc) {
  HeldOrigin h;
  h.seq = seq;
  h.last_hlc = last_hlc;
  return h;
}

UpdateView view(uint64_t hlc, OriginId origin, uint64_t seq, std::string_view body = kBody) {
  return UpdateView{UpdateId{hlc, origin}, seq, "set", "", body};
}

TEST(IngestCheck, TheNextSeqInOrderIsAccepted) {
  EXPECT_EQ(check_received(view(10, 7, 1), HeldOrigin{}, kCeiling), Verdict::kAccept);
  EXPECT_EQ(check_received(view(11, 7, 2), held_up_to(1, 10), kCeiling), Verdict::kAccept);
}

TEST(IngestCheck, SeqOneNeedsAnHlcAboveZero) {
  EXPECT_EQ(check_received(view(0, 7, 1), HeldOrigin{}, kCeiling), Verdict::kHlcNotRising);
}

TEST(IngestCheck, HlcMustRiseWithSeq) {
  EXPECT_EQ(check_received(view(10, 7, 2), held_up_to(1, 10), kCeiling), Verdict::kHlcNotRising);
  EXPECT_EQ(check_received(view(9, 7, 2), held_up_to(1, 10), kCeiling), Verdict::kHlcNotRising);
}

TEST(IngestCheck, BeyondTheNextSeqIsAGap) {
  EXPECT_EQ(check_received(view(20, 7, 3), held_up_to(1, 10), kCeiling), Verdict::kGap);
}

TEST(IngestCheck, AHeldSeqIsADuplicateOnlyWithTheSameIdAndBytes) {
  HeldOrigin held{2, 11, false, UpdateId{10, 7}, std::string_view(kBody)};
  EXPECT_EQ(check_received(view(10, 7, 1), held, kCeiling), Verdict::kDuplicate);
  EXPECT_EQ(check_received(view(10, 7, 1, "other"), held, kCeiling), Verdict::kFork);
  EXPECT_EQ(check_received(view(9, 7, 1), held, kCeiling), Verdict::kFork) << "same seq, another id";
  HeldOrigin unknown{2, 11, false, std::nullopt, std::nullopt};
  EXPECT_EQ(check_received(view(10, 7, 1), unknown, kCeiling), Verdict::kFork) << "nothing held there to compare";
}

TEST(IngestCheck, TooFarAheadOfTheClockWaits) {
  EXPECT_EQ(check_received(view(kCeiling + 1, 7, 1), HeldOrigin{}, kCeiling), Verdict::kTooFarAhead);
  EXPECT_EQ(check_received(view(kCeiling, 7, 1), HeldOrigin{}, kCeiling), Verdict::kAccept);
}

TEST(IngestCheck, ReservedOriginsAndQuarantinedOnesAreRefusedFirst) {
  EXPECT_EQ(check_received(view(10, 0, 1), HeldOrigin{}, kCeiling), Verdict::kReservedOrigin);
  EXPECT_EQ(check_received(view(10, ~OriginId{0}, 1), HeldOrigin{}, kCeiling), Verdict::kReservedOrigin);
  HeldOrigin quarantined{1, 10, true, std::nullopt, std::nullopt};
  EXPECT_EQ(check_received(view(11, 7, 2), quarantined, kCeiling), Verdict::kQuarantined);
}

TEST(IngestCheck, RefusalsAreDescribedInOneLine) {
  std::string gap = describe_refusal(view(20, 7, 3), held_up_to(1, 10), Verdict::kGap);
  EXPECT_NE(gap.find("seq 3"), std::string::npos) << gap;
  EXPECT_NE(gap.find("gap"), std::string::npos) << gap;
  EXPECT_EQ(gap.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace replog::engine
