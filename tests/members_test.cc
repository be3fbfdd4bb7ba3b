// Membership that spreads (PROTOCOL.md §7 "Membership"): the merge rules of
// TrustStore::merge (newer wins, the tie order, the refusals against a stolen
// device, the bound), what version 1 files become, and the Members frame's
// bounded decoding.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/wire.h"
#include "storage/trust.h"
#include "temp_dir.h"

namespace replog {
namespace {

using testing::TempDir;

std::string key(unsigned char b) { return std::string(32, static_cast<char>(b)); }
const std::string kSelf = key(1), kA = key(2), kB = key(3), kD = key(4), kE = key(5);
constexpr int64_t kNow = 1'800'000'000'000;

MemberEntry member(const std::string& k, int64_t ms, const std::string& author, std::string name = "") {
  return MemberEntry{k, false, ms, author, std::move(name)};
}
MemberEntry removal(const std::string& k, int64_t ms, const std::string& author) {
  return MemberEntry{k, true, ms, author, ""};
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<TrustStore> store = std::move(TrustStore::open(dir.sub("trust.json"), Env::posix())).value();
  MergeResult merge(const std::vector<MemberEntry>& entries, const std::string& sender = kA) {
    auto r = store->merge(entries, MergeRules{sender, kSelf, kNow, 3'600'000});
    EXPECT_TRUE(r) << r.status().message();
    return r ? std::move(r).value() : MergeResult{};
  }
  std::vector<std::string> refusals(const MergeResult& r) {
    std::vector<std::string> out;
    for (const auto& [why, _] : r.refused) out.push_back(member_refusal_name(why));
    return out;
  }
};

TEST(Members, ANewerEntryWinsAndAnOlderOneChangesNothing) {
  Fixture f;
  auto r = f.merge({member(kD, 100, kA, "phone")});
  EXPECT_EQ(r.added, std::vector<std::string>{kD});
  auto d = f.store->find(kD);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->how, "introducer");
  EXPECT_EQ(d->added_ms, kNow);
  EXPECT_EQ(d->changed_by, kA);
  const uint64_t g = f.store->generation();
  r = f.merge({removal(kD, 99, kA)});  // older: ignored, not refused
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_TRUE(r.refused.empty());
  EXPECT_EQ(f.store->generation(), g) << "nothing changed, nothing written";
  r = f.merge({removal(kD, 101, kB)}, kB);
  EXPECT_EQ(r.removed, std::vector<std::string>{kD});
  EXPECT_FALSE(f.store->contains(kD));
  ASSERT_EQ(f.store->removed().size(), 1u);
  EXPECT_EQ(f.store->removed()[0].removed_by, kB);
  r = f.merge({member(kD, 100, kA, "phone")});  // the old add travels on: the tombstone wins
  EXPECT_FALSE(f.store->contains(kD));
  r = f.merge({member(kD, 102, kA, "phone 2")});
  EXPECT_EQ(r.added, std::vector<std::string>{kD});
  EXPECT_TRUE(f.store->removed().empty());
}

TEST(Members, TiesAreBrokenByRemovalThenAuthorThenName) {
  EXPECT_TRUE(supersedes(removal(kD, 5, kA), member(kD, 5, kB)));
  EXPECT_FALSE(supersedes(member(kD, 5, kB), removal(kD, 5, kA)));
  EXPECT_TRUE(supersedes(member(kD, 5, kB), member(kD, 5, kA)));
  EXPECT_TRUE(supersedes(member(kD, 5, kA, "b"), member(kD, 5, kA, "a")));
  EXPECT_FALSE(supersedes(member(kD, 5, kA, "a"), member(kD, 5, kA, "a")));
  EXPECT_TRUE(supersedes(member(kD, 6, kA), removal(kD, 5, kB)));
  // Two nodes that take the same entries in either order end alike.
  Fixture one, two;
  std::vector<MemberEntry> entries = {member(kD, 5, kB), removal(kD, 5, kA), member(kE, 7, kA, "x"),
                                      member(kE, 7, kA, "y")};
  one.merge(entries);
  two.merge({entries.rbegin(), entries.rend()});
  EXPECT_EQ(one.store->contains(kD), two.store->contains(kD));
  EXPECT_FALSE(one.store->contains(kD));
  EXPECT_EQ(one.store->find(kE)->name, "y");
  EXPECT_EQ(two.store->find(kE)->name, "y");
}

TEST(Members, EntriesAboutTheSenderOrAuthoredByTheirSubjectAreRefused) {
  Fixture f;
  auto r = f.merge({member(kD, 100, kA), removal(kA, 100, kB)}, kA);
  EXPECT_EQ(f.refusals(r), std::vector<std::string>{"about_sender"});
  r = f.merge({member(kE, 100, kE)}, kA);
  EXPECT_EQ(f.refusals(r), std::vector<std::string>{"self_authored"});
  EXPECT_FALSE(f.store->contains(kE));
  EXPECT_TRUE(f.store->contains(kD));
}

TEST(Members, EntriesAboutThisNodeAreSkippedNotCounted) {
  Fixture f;
  auto r = f.merge({removal(kSelf, 100, kB), member(kSelf, 200, kB)});
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_TRUE(r.refused.empty());
  EXPECT_TRUE(f.store->entries().empty());
}

TEST(Members, ARemovedAuthorsLaterEntriesAreRefusedItsEarlierOnesStand) {
  Fixture f;
  f.merge({member(kB, 10, kA), removal(kB, 100, kA)});
  auto r = f.merge({member(kD, 100, kB), removal(kE, 150, kB), member(key(6), 99, kB)});
  EXPECT_EQ(f.refusals(r), (std::vector<std::string>{"author_removed", "author_removed"}));
  EXPECT_FALSE(f.store->contains(kD));
  EXPECT_TRUE(f.store->contains(key(6))) << "made before the removal";
  // Trusted again by a newer entry, its new entries count again.
  f.merge({member(kB, 200, kA)});
  r = f.merge({member(kD, 201, kB)});
  EXPECT_TRUE(r.refused.empty());
  EXPECT_TRUE(f.store->contains(kD));
}

TEST(Members, EntriesFromTheFarFutureAndInvalidOnesAreRefused) {
  Fixture f;
  auto r = f.merge({member(kD, kNow + 3'600'001, kA), member(kE, kNow + 3'600'000, kA),
                    member(key(6), 5, kA, "a\x07" "b"), member(key(7), 5, "short"), member("short", 5, kA)});
  EXPECT_EQ(f.refusals(r), (std::vector<std::string>{"future", "invalid", "invalid", "invalid"}));
  EXPECT_TRUE(f.store->contains(kE));
  EXPECT_EQ(f.store->entries().size(), 1u);
}

TEST(Members, TheListIsBoundedTombstonesIncluded) {
  Fixture f;
  std::vector<MemberEntry> many;
  for (size_t i = 0; i < kMaxTrustEntries + 3; ++i) {
    std::string k(32, '\x40');
    k[0] = static_cast<char>(i >> 8);
    k[1] = static_cast<char>(i & 0xff);
    many.push_back(i % 2 ? removal(k, 5, kA) : member(k, 5, kA));
  }
  auto r = f.merge(many);
  EXPECT_EQ(r.accepted, kMaxTrustEntries);
  EXPECT_EQ(f.refusals(r), (std::vector<std::string>{"full", "full", "full"}));
  EXPECT_FALSE(f.store->add(TrustedDevice{key(0xfe), "", kNow, "manual", 0, kSelf}));
  EXPECT_FALSE(f.store->remove(key(0xfe), kSelf, kNow));
  // Replacing an entry held is no growth.
  EXPECT_TRUE(f.store->add(TrustedDevice{many[1].public_key, "", kNow, "manual", 0, kSelf}));
}

TEST(Members, LocalChangesAreNewerThanWhatTheyReplaceAndSpreadAsEntries) {
  Fixture f;
  f.merge({member(kD, kNow + 1000, kA)});  // a peer's clock runs ahead
  ASSERT_TRUE(f.store->remove(kD, kSelf, kNow));
  auto entries = f.store->entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].removed);
  EXPECT_EQ(entries[0].ms, kNow + 1001) << "a removal must win over the entry it replaces";
  EXPECT_EQ(entries[0].author, kSelf);
  ASSERT_TRUE(f.store->add(TrustedDevice{kD, "again", kNow, "manual", 0, kSelf}));
  EXPECT_EQ(f.store->entries()[0].ms, kNow + 1002);
  EXPECT_EQ(f.store->find(kD)->how, "manual");
}

TEST(Members, AVersionOneFileBecomesEntriesOfThisNode) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  ASSERT_TRUE(Env::posix().write_file(
      path,
      "{\"version\": 1, \"devices\": [{\"id\": \"AAAQEAY-EAUDAO5-CAJBIFQ-YDIOB4T-IBCEQTC-QKRMFYR-YDENBWH-A5DYPQE\", "
      "\"name\": \"laptop\", \"added_ms\": 1700000000000, \"how\": \"manual\"}]}",
      0600));
  auto store = TrustStore::open(path, Env::posix());
  ASSERT_TRUE(store) << store.status().message();
  auto entries = (*store)->entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].ms, 1'700'000'000'000);
  EXPECT_EQ(entries[0].author, "") << "made here: the engine sends it under this node's key";
  EXPECT_FALSE(entries[0].removed);
}

// --- the Members frame ---------------------------------------------------------------

TEST(MembersFrame, RoundTripsEveryField) {
  wire::Members m{{wire::MemberEntry{kD, false, 123, kA, "phone ☎", "tcp://10.0.0.4:7000"},
                   wire::MemberEntry{kE, true, 456, kB, "", ""}}};
  auto frame = wire::encode(m);
  EXPECT_EQ(*wire::type_of(frame), wire::Type::kMembers);
  EXPECT_EQ(static_cast<int>(wire::Type::kMembers), 9);
  auto back = wire::decode(frame);
  ASSERT_TRUE(back) << back.status().message();
  auto* got = std::get_if<wire::Members>(&*back);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->entries.size(), 2u);
  EXPECT_EQ(got->entries[0].key, kD);
  EXPECT_EQ(got->entries[0].name, "phone ☎");
  EXPECT_EQ(got->entries[0].endpoint, "tcp://10.0.0.4:7000");
  EXPECT_TRUE(got->entries[1].removed);
  EXPECT_EQ(got->entries[1].ms, 456u);
  EXPECT_STREQ(wire::type_name(*back), "members");
}

TEST(MembersFrame, HostileFramesAreMalformedNotCrashes) {
  auto refused = [](wire::Members m) {
    auto r = wire::decode(wire::encode(m));
    return !r && r.status().code() == Status::Code::kCorruption;
  };
  wire::MemberEntry good{kD, false, 1, kA, "", ""};
  std::vector<wire::MemberEntry> too_many(wire::kMaxMemberEntries + 1, good);
  EXPECT_TRUE(refused(wire::Members{too_many}));
  too_many.pop_back();
  EXPECT_FALSE(refused(wire::Members{too_many})) << "exactly the bound is fine";
  auto with = [&](auto change) {
    wire::MemberEntry e = good;
    change(e);
    return wire::Members{{e}};
  };
  EXPECT_TRUE(refused(with([](auto& e) { e.key = "short"; })));
  EXPECT_TRUE(refused(with([](auto& e) { e.author = std::string(33, 'x'); })));
  EXPECT_TRUE(refused(with([](auto& e) { e.ms = uint64_t{1} << 63; })));
  EXPECT_TRUE(refused(with([](auto& e) { e.name = std::string(65, 'x'); })));
  EXPECT_TRUE(refused(with([](auto& e) { e.endpoint = std::string(266, 'x'); })));
  // A state other than 0 or 1, and a body of another shape, by hand.
  std::string frame = wire::encode(wire::Members{{good}});
  const size_t state_at = frame.find(kD) + kD.size();
  ASSERT_EQ(frame[state_at], '\0');
  frame[state_at] = 2;
  EXPECT_FALSE(wire::decode(frame));
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x09\x90", 4)));      // [1, 9, []]
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x09\x91\x05", 5)));  // [1, 9, [5]]
  EXPECT_FALSE(wire::type_of(std::string("\x93\x01\x0c\x90", 4)));      // type 12 is unknown
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x0b\x90", 4)));      // [1, 11, []]: a Tree is 4 lists
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x0a\x90", 4)));      // [1, 10, []]: no evidence
  EXPECT_FALSE(wire::decode(std::string("\x93\x01\x0a\x91\x05", 5)));  // [1, 10, [5]]
}

}  // namespace
}  // namespace replog
