// The archive's objects (protocol/archive_format.h) and the Archiver
// (node/archive/archiver.h) over real signing nodes and an in-memory bucket:
// names, deterministic sealing and what it refuses, segments that end at
// heads, the grace period for other origins, resuming, and damage named by key.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "node/archive/archive_check.h"
#include "node/archive/archive_keys.h"
#include "node/archive/archiver.h"
#include "node/archive/compact.h"
#include "node/archive/merge.h"
#include "node/archive/snapshots.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "node/core/clock.h"
#include "node/core/state.h"
#include "node/core/hlc.h"
#include "node/core/checkpoint.h"
#include "node/engine/node.h"
#include "protocol/archive_format.h"
#include "protocol/bytes.h"
#include "signed_node.h"
#include "temp_dir.h"

namespace replog {
namespace {

using archive::ArchiveKey;
using archive::Keyring;
using archive::SegmentName;
using engine::Node;
using testing::TempDir;

ArchiveKey test_key(char fill) { return ArchiveKey::from_bytes(std::string(32, fill)).value(); }

// An archiver that never merges (to see segments as they were put).
ArchiveOptions NoMerges() {
  ArchiveOptions o;
  o.merge.fan_in = 0;
  return o;
}

// ---- names ------------------------------------------------------------------

TEST(ArchiveNames, SegmentKeysSortByLastSeqAndParseBack) {
  const SegmentName n{0x0123456789abcdefULL, 7, 42};
  const std::string key = archive::segment_key(n);
  EXPECT_EQ(key, "log/0123456789abcdef/00000000000000000042-00000000000000000007.seg");
  EXPECT_EQ(archive::parse_segment_key(key).value(), n);
  EXPECT_LT(archive::segment_key({1, 1, 9}), archive::segment_key({1, 1, 10})) << "numbers sort as names";
  // What a node holding 1..42 lacks comes after the start-after, what it holds before.
  EXPECT_LT(key, archive::segments_after(n.origin, 42));
  EXPECT_GT(archive::segment_key({n.origin, 40, 43}), archive::segments_after(n.origin, 42));
}

TEST(ArchiveNames, MalformedSegmentKeysAreRefused) {
  for (std::string bad : {"log/0123456789ABCDEF/00000000000000000042-00000000000000000007.seg",
                          "log/0123456789abcdef/00000000000000000007-00000000000000000042.seg",
                          "log/0123456789abcdef/00000000000000000042-00000000000000000000.seg",
                          "log/0123456789abcdef/0000000000000000004x-00000000000000000007.seg",
                          "log/0123456789abcdef/00000000000000000042-00000000000000000007.sex",
                          "log/0123456789abcdef/99999999999999999999-00000000000000000007.seg", ""})
    EXPECT_FALSE(archive::parse_segment_key(bad)) << bad;
}

TEST(ArchiveNames, FeedEntriesSortByTimeAndParseBack) {
  const archive::FeedEntry e{1'733'000'000'123, 0xfeedULL, 12};
  const std::string key = archive::feed_key(e);
  EXPECT_EQ(key, "changes/1733000000123-000000000000feed-00000000000000000012");
  EXPECT_EQ(archive::parse_feed_key(key).value(), e);
  EXPECT_LT(archive::feed_after(e.uploader_ms), key) << "an entry at the start time is listed";
  EXPECT_GT(archive::feed_after(e.uploader_ms + 1), key);
  EXPECT_FALSE(archive::parse_feed_key("changes/1733000000123-000000000000feed-0000000000000000001"));
}

// ---- sealing ------------------------------------------------------------------

TEST(ArchiveSeal, EqualPlaintextGivesEqualBytesAndOpensAgain) {
  const ArchiveKey k = test_key('k');
  std::string plain(200'000, 'x');
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<char>(i * 7);
  const std::string a = archive::seal(k, archive::Kind::kSegment, "ctx", plain);
  EXPECT_EQ(a, archive::seal(k, archive::Kind::kSegment, "ctx", plain)) << "deterministic: any writer, same object";
  EXPECT_EQ(a.size(), archive::kHeaderBytes + plain.size() + 4 * (archive::kNonceBytes + archive::kTagBytes));
  EXPECT_EQ(archive::open({k}, archive::Kind::kSegment, "ctx", a).value(), plain);
  EXPECT_EQ(archive::open({k}, archive::Kind::kSegment, "ctx", archive::seal(k, archive::Kind::kSegment, "ctx", ""))
                .value(),
            "");
  EXPECT_EQ(a.find(plain.substr(1000, 64)), std::string::npos) << "no plaintext in the sealed bytes";
}

TEST(ArchiveSeal, OtherPlaintextNeverReusesANonce) {
  const ArchiveKey k = test_key('k');
  std::string p1(100, 'a'), p2 = p1;
  p2[99] = 'b';  // same name, same length: a forked update
  const std::string a = archive::seal(k, archive::Kind::kSegment, "ctx", p1);
  const std::string b = archive::seal(k, archive::Kind::kSegment, "ctx", p2);
  EXPECT_NE(a.substr(archive::kHeaderBytes, archive::kNonceBytes), b.substr(archive::kHeaderBytes, archive::kNonceBytes));
}

TEST(ArchiveSeal, AlteredTruncatedRenamedOrForeignObjectsDoNotOpen) {
  const ArchiveKey k = test_key('k');
  const std::string plain(70'000, 'p');
  const std::string sealed = archive::seal(k, archive::Kind::kSegment, "ctx", plain);
  std::string altered = sealed;
  altered[archive::kHeaderBytes + archive::kNonceBytes + 70'000 - 65'536 + 40] ^= 1;
  auto r = archive::open({k}, archive::Kind::kSegment, "ctx", altered);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("fails authentication"), std::string::npos) << r.status().message();
  EXPECT_FALSE(archive::open({k}, archive::Kind::kSegment, "ctx", sealed.substr(0, sealed.size() - 1)));
  EXPECT_FALSE(archive::open({k}, archive::Kind::kSegment, "ctx", sealed + "x"));
  EXPECT_FALSE(archive::open({k}, archive::Kind::kSegment, "other", sealed)) << "bound to its name";
  EXPECT_FALSE(archive::open({k}, archive::Kind::kSnapshot, "ctx", sealed)) << "bound to its kind";
  auto foreign = archive::open({test_key('z')}, archive::Kind::kSegment, "ctx", sealed);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.status().code(), Status::Code::kNotFound) << "no key with that id";
  EXPECT_TRUE(archive::open({test_key('z'), k}, archive::Kind::kSegment, "ctx", sealed)) << "a keyring finds its key";
  // A header that claims more than the limit is refused before anything is allocated.
  std::string huge = sealed.substr(0, archive::kHeaderBytes);
  put_u64_be(huge.data() + 20, uint64_t{1} << 40);
  EXPECT_FALSE(archive::open({k}, archive::Kind::kSegment, "ctx", huge));
}

// ---- the archiver over real nodes ------------------------------------------

class ArchiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Node::init({tmp_.sub("a"), std::string("c1"), std::nullopt, nullptr}));
    ASSERT_TRUE(Node::init({tmp_.sub("b"), std::string("c1"), std::nullopt, nullptr}));
    a_ = testing::open_signed_node(tmp_.sub("a"));
    b_ = testing::open_signed_node(tmp_.sub("b"));
    ASSERT_TRUE(a_ && b_);
  }

  void Calls(Node& n, int count, const std::string& tag) {
    for (int i = 0; i < count; ++i)
      ASSERT_TRUE(n.call("set", testing::set_string_arg(tag + std::to_string(i), "v" + std::to_string(i))));
  }

  Archiver ArchiverOf(Node& n, ArchiveOptions o = {}) { return Archiver(n, bucket_, keys_, clock_, o); }

  size_t Segments() const {
    size_t n = 0;
    for (auto& [key, _] : bucket_.objects()) n += archive::parse_segment_key(key) ? 1 : 0;
    return n;
  }

  TempDir tmp_;
  std::unique_ptr<Node> a_, b_;
  MemoryObjectStore bucket_;
  Keyring keys_{test_key('k')};
  ManualClock clock_{1'800'000'000'000};
};

TEST_F(ArchiverTest, AnOriginsSegmentsEndAtHeadsAndAnotherNodeRestoresTheSameState) {
  Archiver up = ArchiverOf(*a_);
  Calls(*a_, 5, "x");
  ASSERT_TRUE(up.push());
  Calls(*a_, 7, "y");
  ASSERT_TRUE(up.push());
  EXPECT_GE(Segments(), 2u);
  EXPECT_EQ(up.status().archived.at(a_->node_id()), 12u);
  EXPECT_EQ(up.status().lag_updates, 0u);
  for (auto& [key, bytes] : bucket_.objects())
    if (auto name = archive::parse_segment_key(key)) {
      auto seg = archive::open_segment(keys_, key, bytes);
      ASSERT_TRUE(seg) << seg.status().message();
      EXPECT_EQ(seg->head.seq, name->last);
      EXPECT_EQ(seg->head.key.empty(), name->first != 1) << "the key rides with seq 1";
    }

  Archiver down = ArchiverOf(*b_);
  ASSERT_TRUE(down.pull());
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 12u);
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
  EXPECT_EQ(down.status().counters.updates_stored, 12u);
}

TEST_F(ArchiverTest, PushingAgainOrAfterARestartWritesNothingNew) {
  Calls(*a_, 6, "x");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  const auto before = bucket_.objects();
  Archiver again = ArchiverOf(*a_);  // a restart: knows nothing until it lists
  ASSERT_TRUE(again.push());
  ASSERT_TRUE(again.push());
  EXPECT_EQ(bucket_.objects(), before);
  EXPECT_EQ(again.status().counters.segments_put, 0u);
}

TEST_F(ArchiverTest, AnotherOriginIsUploadedOnlyAfterTheGracePeriod) {
  Calls(*a_, 4, "x");
  auto r = a_->read_range(a_->node_id(), 1, 100, 1 << 20);
  ASSERT_TRUE(r && r->head);
  ASSERT_TRUE(b_->ingest(r->updates, {*r->head}));  // B got A's updates by gossip; A never reaches the bucket
  ArchiveOptions o;
  o.grace_ms = 60'000;
  Archiver bs = ArchiverOf(*b_, o);
  ASSERT_TRUE(bs.push());
  EXPECT_EQ(Segments(), 0u) << "A's origin is A's to upload first";
  clock_.advance(59'000);
  ASSERT_TRUE(bs.push());
  EXPECT_EQ(Segments(), 0u);
  clock_.advance(2'000);
  ASSERT_TRUE(bs.push());
  EXPECT_EQ(Segments(), 1u);
  EXPECT_EQ(bs.status().archived.at(a_->node_id()), 4u);
  // A's own archiver, arriving later, finds it there and writes nothing.
  Archiver as = ArchiverOf(*a_);
  ASSERT_TRUE(as.push());
  EXPECT_EQ(as.status().counters.segments_put, 0u);
}

TEST_F(ArchiverTest, AnAlteredSegmentIsNamedAndNothingOfItApplied) {
  Archiver up = ArchiverOf(*a_);
  Calls(*a_, 3, "x");
  ASSERT_TRUE(up.push());
  Calls(*a_, 3, "y");
  ASSERT_TRUE(up.push());
  std::string second;
  for (auto& [key, bytes] : bucket_.objects())
    if (auto n = archive::parse_segment_key(key); n && n->first > 1) second = key;
  ASSERT_FALSE(second.empty());
  std::string bytes = bucket_.objects().at(second);
  bytes[bytes.size() - 20] ^= 0x40;
  bucket_.overwrite(second, bytes);

  Archiver down = ArchiverOf(*b_);
  Status pulled = down.pull();
  EXPECT_FALSE(pulled.is_ok()) << pulled.message() << " objects " << bucket_.objects().size();
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 3u) << "the segment before the damage is applied";
  ASSERT_TRUE(down.status().damaged.count(second)) << "named by key";
}

TEST_F(ArchiverTest, ADeletedMiddleSegmentIsAHoleNeverSkipped) {
  Archiver up = ArchiverOf(*a_);
  for (int round = 0; round < 3; ++round) {
    Calls(*a_, 2, "r" + std::to_string(round));
    ASSERT_TRUE(up.push());
  }
  std::string middle;
  for (auto& [key, _] : bucket_.objects())
    if (auto n = archive::parse_segment_key(key); n && n->first == 3) middle = key;
  ASSERT_FALSE(middle.empty());
  ASSERT_TRUE(bucket_.del(middle));
  Archiver down = ArchiverOf(*b_);
  ASSERT_TRUE(down.pull());
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 2u);
  const auto damaged = down.status().damaged;
  ASSERT_TRUE(damaged.count(archive::origin_prefix(a_->node_id())));
  EXPECT_NE(damaged.begin()->second.find("lacks #3"), std::string::npos) << damaged.begin()->second;
}

TEST_F(ArchiverTest, ASegmentWrittenUnderAnotherOriginsNameIsRefused) {
  Calls(*a_, 2, "x");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  // The bucket's owner copies A's segment under B's origin: the name is bound in.
  const auto objects = bucket_.objects();
  for (auto& [key, bytes] : objects)
    if (auto n = archive::parse_segment_key(key))
      bucket_.overwrite(archive::segment_key({b_->node_id() ^ 1, n->first, n->last}), bytes);
  Archiver down = ArchiverOf(*b_);
  (void)down.pull(true);
  EXPECT_EQ(seq_of(b_->vector(), b_->node_id() ^ 1), 0u);
  EXPECT_EQ(down.status().damaged.size(), 1u);
}

TEST_F(ArchiverTest, OneCallPerPushKeepsTheObjectCountLogarithmicAndTheLogWhole) {
  Archiver up = ArchiverOf(*a_);
  for (int i = 0; i < 100; ++i) {
    Calls(*a_, 1, "c" + std::to_string(i) + "-");
    ASSERT_TRUE(up.push());
  }
  EXPECT_EQ(up.status().counters.segments_put, 100u) << "one PUT (and a feed entry) per call";
  EXPECT_LE(Segments(), 12u) << "levels of four: O(log n) objects";
  EXPECT_GT(up.status().counters.segments_merged, 0u);
  CheckOptions co;
  co.cluster = a_->cluster_id();
  auto check = check_archive(bucket_, keys_, co);
  ASSERT_TRUE(check);
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems.front());
  EXPECT_EQ(check->origins.at(a_->node_id()).verified, 100u);
  Archiver down = ArchiverOf(*b_);
  ASSERT_TRUE(down.pull(true));
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
}

TEST_F(ArchiverTest, ASegmentMergedAwayBetweenListingAndGetIsListedAgain) {
  Archiver up = ArchiverOf(*a_, NoMerges());
  for (int i = 0; i < 4; ++i) {
    Calls(*a_, 1, "c" + std::to_string(i) + "-");
    ASSERT_TRUE(up.push());
  }
  // The first GET of a small segment finds it merged away by another member.
  bool merged = false;
  bucket_.set_fault([&](std::string_view op, const std::string&) {
    if (op == "get" && !merged) {
      merged = true;
      MergeReport r;
      bucket_.set_fault(nullptr);  // the merge itself runs unfaulted
      EXPECT_TRUE(merge_segments(bucket_, keys_, a_->node_id(), a_->own_origin_key().key, {}, r));
      EXPECT_EQ(r.merged, 1u);
      return Status::not_found("merged away");
    }
    return Status::ok();
  });
  Archiver down = ArchiverOf(*b_);
  ASSERT_TRUE(down.pull(true));
  EXPECT_TRUE(merged);
  EXPECT_EQ(seq_of(b_->vector(), a_->node_id()), 4u);
  EXPECT_EQ(Segments(), 1u);
}

// ---- snapshots and the roll-up ----------------------------------------------

class SnapshotTest : public ArchiverTest {
 protected:
  std::string SecretOf(const std::string& dir) {
    auto id = load_identity(DataDir(dir).identity_file(), Env::posix());
    EXPECT_TRUE(id) << id.status().message();
    return id ? std::string(id->secret_key()) : std::string();
  }
  std::string PublicOf(const std::string& dir) { return SecretOf(dir).substr(32); }
};

TEST_F(SnapshotTest, ACompactMergesWritesASignedSnapshotOfTheStateAndKeepsTheLogWhole) {
  Archiver up = ArchiverOf(*a_, NoMerges());
  for (int i = 0; i < 8; ++i) {
    Calls(*a_, 1, "c" + std::to_string(i) + "-");
    ASSERT_TRUE(up.push());
  }
  CompactReport r;
  ASSERT_TRUE(compact_archive(*b_, bucket_, keys_, SecretOf(tmp_.sub("b")), clock_, {}, r));
  EXPECT_EQ(r.pulled.updates_stored, 8u);
  EXPECT_GT(r.merged.merged, 0u);
  EXPECT_LE(Segments(), 2u);
  auto names = list_snapshots(bucket_);
  ASSERT_TRUE(names && names->size() == 1u);
  const std::string b_key = PublicOf(tmp_.sub("b"));
  auto snap = read_snapshot(bucket_, keys_, names->front(), a_->cluster_id(),
                            [&](std::string_view k) { return k == b_key; });
  ASSERT_TRUE(snap) << snap.status().message();
  EXPECT_EQ(to_hex(snap->state_hash), a_->state_hash());
  EXPECT_EQ(snap->vector, a_->vector());
  EXPECT_EQ(snap->heads.size(), 1u);
  // A second run at once finds nothing to do and writes the same snapshot.
  CompactReport again;
  ASSERT_TRUE(compact_archive(*b_, bucket_, keys_, SecretOf(tmp_.sub("b")), clock_, {}, again));
  EXPECT_EQ(again.snapshot, r.snapshot);
  EXPECT_EQ(list_snapshots(bucket_)->size(), 1u);
}

TEST_F(SnapshotTest, AnUntrustedTruncatedOrRenamedSnapshotIsRefusedByKey) {
  Calls(*a_, 3, "x");
  auto key = write_snapshot(bucket_, keys_, *a_, SecretOf(tmp_.sub("a")));
  ASSERT_TRUE(key) << key.status().message();
  const auto name = archive::parse_snapshot_key(*key).value();
  const std::string a_key = PublicOf(tmp_.sub("a"));
  auto trusted = [&](std::string_view k) { return k == a_key; };
  ASSERT_TRUE(read_snapshot(bucket_, keys_, name, a_->cluster_id(), trusted));
  auto untrusted = read_snapshot(bucket_, keys_, name, a_->cluster_id(), [](std::string_view) { return false; });
  ASSERT_FALSE(untrusted);
  EXPECT_NE(untrusted.status().message().find(*key), std::string::npos) << "named by key";
  EXPECT_NE(untrusted.status().message().find("no member's"), std::string::npos);
  const std::string sealed = bucket_.objects().at(*key);
  bucket_.overwrite(*key, sealed.substr(0, sealed.size() - 7));
  auto truncated = read_snapshot(bucket_, keys_, name, a_->cluster_id(), trusted);
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.status().message().find(*key), std::string::npos);
  // The same object under another cut's name does not open.
  archive::SnapshotName other = name;
  other.cut[15] ^= 1;
  bucket_.overwrite(archive::snapshot_key(other), sealed);
  EXPECT_FALSE(read_snapshot(bucket_, keys_, other, a_->cluster_id(), trusted));
}

TEST_F(SnapshotTest, RetentionKeepsTheNewestPerMethodsDigestAndDropsOldFeedEntries) {
  for (int i = 0; i < 4; ++i) {
    Calls(*a_, 1, "s" + std::to_string(i) + "-");
    ASSERT_TRUE(write_snapshot(bucket_, keys_, *a_, SecretOf(tmp_.sub("a"))));
  }
  ASSERT_TRUE(bucket_.put_new(archive::feed_key({clock_.now_millis() - 10, 1, 1}), ""));
  ASSERT_TRUE(bucket_.put_new(archive::feed_key({clock_.now_millis() + 10, 1, 2}), ""));
  RetentionReport r;
  ASSERT_TRUE(apply_retention(bucket_, 2, clock_.now_millis(), r));
  EXPECT_EQ(r.snapshots_deleted, 2u);
  EXPECT_EQ(r.feed_deleted, 1u);
  auto left = list_snapshots(bucket_);
  ASSERT_EQ(left->size(), 2u);
  const auto newest = a_->head_checkpoint().cut.key();
  EXPECT_EQ(left->back().cut, std::string(newest.data(), newest.size())) << "the newest is kept";
}

TEST_F(SnapshotTest, TwoCompactsAtOnceWhileTheOriginPushesAndMergesLeaveAValidArchive) {
  ASSERT_TRUE(Node::init({tmp_.sub("c"), std::string("c1"), std::nullopt, nullptr}));
  auto c = testing::open_signed_node(tmp_.sub("c"));
  ASSERT_TRUE(c);
  const std::string b_secret = SecretOf(tmp_.sub("b")), c_secret = SecretOf(tmp_.sub("c"));
  std::atomic<bool> done{false};
  std::atomic<int> compacts{0};
  auto compactor = [&](Node& n, const std::string& secret) {
    while (!done) {
      CompactReport r;
      // A compact may lose a race (a part merged away under it): it fails and the next one runs.
      (void)compact_archive(n, bucket_, keys_, secret, clock_, {}, r);
      ++compacts;
    }
  };
  std::thread t1(compactor, std::ref(*b_), b_secret), t2(compactor, std::ref(*c), c_secret);
  Archiver up = ArchiverOf(*a_);
  for (int i = 0; i < 60; ++i) {
    Calls(*a_, 1, "k" + std::to_string(i) + "-");
    Status s = up.push();  // may fail on a race; the next push resumes
    (void)s;
  }
  while (compacts < 6) std::this_thread::yield();
  done = true;
  t1.join();
  t2.join();
  ASSERT_TRUE(up.push());
  CheckOptions co;
  co.cluster = a_->cluster_id();
  auto check = check_archive(bucket_, keys_, co);
  ASSERT_TRUE(check);
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems.front());
  EXPECT_EQ(check->origins.at(a_->node_id()).verified, 60u);
  // A restore from the archive alone gives A's state.
  ASSERT_TRUE(Node::init({tmp_.sub("r"), std::string("c1"), std::nullopt, nullptr}));
  auto r = testing::open_signed_node(tmp_.sub("r"));
  Archiver down(*r, bucket_, keys_, clock_, {});
  ASSERT_TRUE(down.pull(true));
  EXPECT_EQ(r->state_hash(), a_->state_hash());
  EXPECT_TRUE(down.status().damaged.empty());
}

// ---- restore from a snapshot ---------------------------------------------------

class RestoreTest : public SnapshotTest {
 protected:
  // A fresh node that folds once, at the end, as `replog restore` opens one.
  std::unique_ptr<Node> Fresh(const std::string& name) {
    EXPECT_TRUE(Node::init({tmp_.sub(name), std::string("c1"), std::nullopt, nullptr}));
    engine::NodeOptions o;
    o.dir = tmp_.sub(name);
    o.defer_fold = true;
    auto n = Node::open(o);
    EXPECT_TRUE(n) << n.status().message();
    return n ? std::move(n).value() : nullptr;
  }
  std::function<bool(std::string_view)> TrustA() {
    const std::string a_key = PublicOf(tmp_.sub("a"));
    return [a_key](std::string_view k) { return k == a_key; };
  }
  std::string Snapshot(Node& n, const std::string& dir) {
    auto key = write_snapshot(bucket_, keys_, n, SecretOf(tmp_.sub(dir)));
    EXPECT_TRUE(key) << key.status().message();
    return key ? *key : std::string();
  }
  std::optional<std::string> Found(const std::vector<std::string>& lines, const std::string& what) {
    for (const auto& l : lines)
      if (l.find(what) != std::string::npos) return l;
    return std::nullopt;
  }
};

TEST_F(RestoreTest, ARestoreStartsFromTheNewestExactSnapshotAndFoldsOnlyTheTail) {
  Calls(*a_, 20, "x");
  Snapshot(*a_, "a");
  Calls(*a_, 10, "y");
  const std::string newest = Snapshot(*a_, "a");
  Calls(*a_, 5, "z");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  auto c = Fresh("c");
  ASSERT_TRUE(ArchiverOf(*c).pull(true));
  auto adopted = adopt_snapshot(bucket_, keys_, *c, TrustA(), std::nullopt);
  ASSERT_TRUE(adopted) << adopted.status().message();
  EXPECT_EQ(adopted->key, newest);
  EXPECT_EQ(adopted->updates_after, 5u);
  EXPECT_EQ(c->state_hash(), a_->state_hash());
  EXPECT_EQ(c->vector(), a_->vector()) << "the log stays whole below the snapshot";
  ASSERT_TRUE(c->close());
  c.reset();
  engine::NodeOptions o;
  o.dir = tmp_.sub("c");
  auto again = Node::open_read_only(o);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->state_hash(), a_->state_hash()) << "a restart folds the same state";
}

TEST_F(RestoreTest, AtATimeTheNewestSnapshotBeforeItIsTaken) {
  Calls(*a_, 6, "x");
  const std::string older = Snapshot(*a_, "a");
  // A restore at a time takes whole milliseconds: the next calls must come in
  // a later one than the older snapshot's cut, or both cuts lie in one.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  Calls(*a_, 4, "y");
  Snapshot(*a_, "a");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  auto c = Fresh("c");
  ASSERT_TRUE(ArchiverOf(*c).pull(true));
  const auto cut = archive::parse_snapshot_key(older).value().cut;
  auto adopted = adopt_snapshot(bucket_, keys_, *c, TrustA(), hlc::millis(UpdateId::from_key(cut).hlc));
  ASSERT_TRUE(adopted) << adopted.status().message();
  EXPECT_EQ(adopted->key, older);
  EXPECT_EQ(adopted->updates_after, 4u);
  EXPECT_EQ(c->state_hash(), a_->state_hash());
}

TEST_F(RestoreTest, ASnapshotThatLacksAnUpdateBelowItsCutIsPassedOverAndEverythingReplayed) {
  Calls(*b_, 2, "early");  // b writes first: below a's cut, and a never hears of it
  Calls(*a_, 8, "x");
  const std::string snap = Snapshot(*a_, "a");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  ArchiveOptions now;
  now.grace_ms = 0;
  ASSERT_TRUE(ArchiverOf(*b_, now).push());
  auto c = Fresh("c");
  ASSERT_TRUE(ArchiverOf(*c).pull(true));
  auto adopted = adopt_snapshot(bucket_, keys_, *c, TrustA(), std::nullopt);
  ASSERT_TRUE(adopted) << adopted.status().message();
  EXPECT_TRUE(adopted->key.empty());
  ASSERT_EQ(adopted->passed.size(), 1u);
  EXPECT_NE(adopted->passed[0].find(snap), std::string::npos) << adopted->passed[0];
  EXPECT_NE(adopted->passed[0].find("lacks " + hex16(b_->node_id()) + " #1"), std::string::npos) << adopted->passed[0];
  ASSERT_TRUE(ArchiverOf(*a_).pull(true));  // a now holds both origins
  EXPECT_EQ(c->state_hash(), a_->state_hash());
}

TEST_F(RestoreTest, AnUntrustedSnapshotOrOneOfOtherMethodsIsNotTaken) {
  Calls(*a_, 5, "x");
  const std::string snap = Snapshot(*a_, "a");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  auto c = Fresh("c");
  ASSERT_TRUE(ArchiverOf(*c).pull(true));
  auto untrusted = adopt_snapshot(bucket_, keys_, *c, [](std::string_view) { return false; }, std::nullopt);
  ASSERT_TRUE(untrusted);
  EXPECT_TRUE(untrusted->key.empty());
  ASSERT_EQ(untrusted->passed.size(), 1u);
  EXPECT_NE(untrusted->passed[0].find("no member's"), std::string::npos) << untrusted->passed[0];
  // The same checkpoint bytes under other methods: refused by the engine.
  auto name = archive::parse_snapshot_key(snap).value();
  auto opened = read_snapshot(bucket_, keys_, name, a_->cluster_id(), TrustA());
  ASSERT_TRUE(opened);
  auto cp = decode_checkpoint(opened->checkpoint).value();
  auto state = State::decode(cp.state_bytes).value();
  Status other = c->adopt_checkpoint(encode_checkpoint(cp.cut, cp.vector, std::string(64, '0'), state));
  ASSERT_FALSE(other);
  EXPECT_NE(other.message().find("other methods"), std::string::npos) << other.message();
  EXPECT_EQ(c->state_hash(), a_->state_hash());
}

TEST_F(RestoreTest, ACompactOnAnEmptyDirectoryStartsFromTheNewestSnapshot) {
  Calls(*a_, 12, "x");
  Snapshot(*a_, "a");
  Calls(*a_, 3, "y");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  auto c = Fresh("c");
  CompactOptions co;
  co.is_member = TrustA();
  CompactReport r;
  ASSERT_TRUE(compact_archive(*c, bucket_, keys_, SecretOf(tmp_.sub("c")), clock_, co, r));
  EXPECT_FALSE(r.started_from.empty());
  EXPECT_NE(r.snapshot, r.started_from);
  auto name = archive::parse_snapshot_key(r.snapshot).value();
  const std::string c_key = PublicOf(tmp_.sub("c"));
  auto snap = read_snapshot(bucket_, keys_, name, a_->cluster_id(), [&](std::string_view k) { return k == c_key; });
  ASSERT_TRUE(snap) << snap.status().message();
  EXPECT_EQ(to_hex(snap->state_hash), a_->state_hash());
  // The next run holds the log: it folds what is new and reads no snapshot.
  CompactReport again;
  ASSERT_TRUE(compact_archive(*c, bucket_, keys_, SecretOf(tmp_.sub("c")), clock_, co, again));
  EXPECT_TRUE(again.started_from.empty());
}

TEST_F(RestoreTest, TheAdoptedStateIsTheSnapshotsNotAReplay) {
  // A signed snapshot is trusted: what it holds is what the restore starts from.
  // Proven with a checkpoint altered by hand (which no member would sign).
  Calls(*a_, 5, "x");
  const auto head = a_->head_checkpoint();
  Calls(*a_, 2, "y");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  auto c = Fresh("c");
  ASSERT_TRUE(ArchiverOf(*c).pull(true));
  auto cp = decode_checkpoint(head.bytes).value();
  auto state = State::decode(cp.state_bytes).value();
  const std::string plain_hash = state.hash_hex();
  ASSERT_TRUE(state.write(Path{"marker"}, Value("from the checkpoint"), nullptr));
  ASSERT_NE(state.hash_hex(), plain_hash);
  Status s = c->adopt_checkpoint(encode_checkpoint(cp.cut, cp.vector, cp.methods_digest, state));
  ASSERT_TRUE(s) << s.message();
  bool marked = false, tail = false;
  c->read([&](const State& st) {
    marked = st.get(Path{"marker"}) != nullptr;
    tail = st.get(Path{"y1"}) != nullptr;
  });
  EXPECT_TRUE(marked) << "state folded from the checkpoint";
  EXPECT_TRUE(tail) << "and the updates after its cut";
}

TEST_F(RestoreTest, ACheckpointBeyondTheLogOrLeavingOutWhatItFoldedIsRefused) {
  Calls(*b_, 3, "b");
  ASSERT_TRUE(ArchiverOf(*b_).push());
  ASSERT_TRUE(ArchiverOf(*a_).pull(true));
  ASSERT_TRUE(a_->call("revoke", Value(Map{{"origin", Value(hex16(b_->node_id()))}, {"last_seq", Value(int64_t{1})}})));
  Calls(*a_, 2, "a");
  const auto head = a_->head_checkpoint();
  ASSERT_TRUE(ArchiverOf(*a_).push());
  auto c = Fresh("c");
  ASSERT_TRUE(ArchiverOf(*c).pull(true));
  auto cp = decode_checkpoint(head.bytes).value();
  auto state = State::decode(cp.state_bytes).value();
  // The revocation inside its vector leaves out b #2 and #3, which it covers.
  Status revoked = c->adopt_checkpoint(head.bytes);
  ASSERT_FALSE(revoked);
  EXPECT_NE(revoked.message().find("leave out"), std::string::npos) << revoked.message();
  // A vector past what is held.
  VersionVector beyond = cp.vector;
  beyond[a_->node_id()] += 1;
  Status past = c->adopt_checkpoint(encode_checkpoint(cp.cut, beyond, cp.methods_digest, state));
  ASSERT_FALSE(past);
  EXPECT_NE(past.message().find("holds only"), std::string::npos) << past.message();
  EXPECT_EQ(c->state_hash(), a_->state_hash()) << "replayed instead";
}

TEST_F(RestoreTest, ForkEvidenceTravelsThroughTheArchiveAndTheOtherBranchIsNotDamage) {
  Calls(*a_, 4, "x");
  ASSERT_TRUE(ArchiverOf(*a_, NoMerges()).push());  // #1..4, before the fork
  // A copy of a's directory writes as a's origin: two branches from #5.
  ASSERT_TRUE(a_->close());
  a_.reset();
  std::filesystem::copy(tmp_.sub("a"), tmp_.sub("twin"));
  std::filesystem::remove(tmp_.sub("twin") + "/LOCK");
  a_ = testing::open_signed_node(tmp_.sub("a"));
  auto twin = testing::open_signed_node(tmp_.sub("twin"));
  Calls(*a_, 1, "branch-a");
  Calls(*twin, 2, "branch-twin");
  ASSERT_TRUE(ArchiverOf(*a_, NoMerges()).push());  // #5 of one branch
  // The twin's push reads the newest segment of its origin (a's #5): a fork,
  // whose evidence it keeps and archives; its #6 goes up after the #5 it found.
  Archiver twin_up = ArchiverOf(*twin, NoMerges());
  ASSERT_TRUE(twin_up.push());
  EXPECT_EQ(twin_up.status().damaged.size(), 1u);
  EXPECT_EQ(twin_up.status().counters.evidence_put, 1u);
  // b sees both branches and keeps the evidence; its push archives it.
  const OriginId forked = a_->node_id();
  auto ours = a_->read_range(forked, 1, 10, 1 << 20);
  auto theirs = twin->read_range(forked, 5, 10, 1 << 20);
  ASSERT_TRUE(ours && ours->head && theirs && theirs->head);
  ASSERT_TRUE(b_->ingest(ours->updates, {*ours->head}));
  ASSERT_EQ(b_->ingest(theirs->updates, {*theirs->head})->forks, 1u);
  Archiver b_up = ArchiverOf(*b_);
  ASSERT_TRUE(b_up.push());
  EXPECT_EQ(b_up.status().counters.evidence_put, 1u);
  ASSERT_TRUE(b_up.push());
  EXPECT_EQ(b_up.status().counters.evidence_put, 1u) << "put once";

  CheckOptions co;
  co.cluster = a_->cluster_id();
  auto check = check_archive(bucket_, keys_, co);
  ASSERT_TRUE(check);
  EXPECT_TRUE(check->ok()) << check->problems.front();
  EXPECT_GE(check->evidence, 1u);
  EXPECT_EQ(check->origins.at(forked).fork_seq, 5u);
  EXPECT_EQ(check->origins.at(forked).branch_segments, 1u);

  auto c = Fresh("c");
  Archiver down = ArchiverOf(*c);
  ASSERT_TRUE(down.pull(true));
  EXPECT_TRUE(down.status().damaged.empty()) << down.status().damaged.begin()->second;
  EXPECT_GE(down.status().counters.evidence_taken, 1u);
  EXPECT_EQ(down.status().counters.branch_segments, 1u);
  EXPECT_EQ(c->info().fork_evidence.at(forked), 5u);
  EXPECT_EQ(c->state_hash(), b_->state_hash()) << "the restore leaves out what the cluster leaves out";

  // Evidence that does not open or prove anything is named, and nothing of it is taken.
  std::string key;
  for (const auto& [name, bytes] : bucket_.objects())
    if (archive::parse_evidence_key(name)) {
      std::string sealed = bytes;
      sealed[sealed.size() - 3] ^= 1;
      bucket_.overwrite(key = name, sealed);
    }
  auto damaged = check_archive(bucket_, keys_, co);
  ASSERT_TRUE(damaged);
  ASSERT_FALSE(damaged->ok());
  // Each evidence object is named, and without a proof the other branch is named too.
  EXPECT_EQ(std::count_if(damaged->problems.begin(), damaged->problems.end(),
                          [](const std::string& p) { return p.starts_with("evidence/"); }),
            static_cast<long>(check->evidence));
  EXPECT_EQ(std::count_if(damaged->problems.begin(), damaged->problems.end(),
                          [](const std::string& p) { return p.find("another branch") != std::string::npos; }),
            1);
  auto d = Fresh("d");
  Archiver d_down = ArchiverOf(*d);
  (void)d_down.pull(true);
  EXPECT_EQ(d_down.status().damaged.count(key), 1u);
  EXPECT_TRUE(d->evidence().empty());
}

TEST_F(SnapshotTest, ARotatedKeyReachesTheRemainingMembersAloneAndOldObjectsStayReadable) {
  ASSERT_TRUE(Node::init({tmp_.sub("c"), std::string("c1"), std::nullopt, nullptr}));
  const std::string a_secret = SecretOf(tmp_.sub("a")), b_secret = SecretOf(tmp_.sub("b")),
                    c_secret = SecretOf(tmp_.sub("c"));
  Calls(*a_, 2, "old");
  ASSERT_TRUE(ArchiverOf(*a_).push());
  // c is revoked: a rotates for a and b.
  auto rotated = rotate_archive_key(bucket_, keys_, {a_secret.substr(32), b_secret.substr(32)}, Env::posix());
  ASSERT_TRUE(rotated) << rotated.status().message();
  EXPECT_EQ(rotated->generation(), 1u);
  Keyring a_keys = keys_;
  archive::add_key(a_keys, *rotated);
  EXPECT_EQ(a_keys.back().id(), rotated->id()) << "the newest generation writes";
  auto for_b = take_key_grants(bucket_, keys_, b_secret);
  ASSERT_TRUE(for_b);
  ASSERT_EQ(for_b->size(), 1u);
  EXPECT_EQ(for_b->front().bytes(), rotated->bytes());
  auto for_c = take_key_grants(bucket_, keys_, c_secret);
  ASSERT_TRUE(for_c);
  EXPECT_TRUE(for_c->empty()) << "the revoked device gets nothing";
  EXPECT_TRUE(take_key_grants(bucket_, a_keys, a_secret)->empty()) << "a key held is not taken again";
  // New objects are sealed with it: the old keyring cannot open them, and still opens the old ones.
  Calls(*a_, 2, "new");
  Archiver up(*a_, bucket_, a_keys, clock_, NoMerges());
  ASSERT_TRUE(up.push());
  size_t old_readable = 0, new_unreadable = 0;
  for (auto& [key, bytes] : bucket_.objects())
    if (archive::parse_segment_key(key)) {
      auto id = archive::sealed_key_id(bytes);
      ASSERT_TRUE(id);
      if (*id == rotated->id()) new_unreadable += !archive::open_segment(keys_, key, bytes) ? 1 : 0;
      else old_readable += archive::open_segment(keys_, key, bytes) ? 1 : 0;
    }
  EXPECT_GE(old_readable, 1u);
  EXPECT_GE(new_unreadable, 1u);
  Keyring b_keys = keys_;
  archive::add_key(b_keys, for_b->front());
  Archiver down(*b_, bucket_, b_keys, clock_, {});
  ASSERT_TRUE(down.pull(true));
  EXPECT_EQ(b_->state_hash(), a_->state_hash());
}

}  // namespace
}  // namespace replog
